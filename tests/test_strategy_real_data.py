"""Invariants of the strategy on real Binance data, through a real BacktestEngine with funding settled.

Two runs: all 16 symbols of the 1m set (3 days, real scores, 15-minute scans, NETTING as live), and the 1h
set over 2023-2024 (hourly scans, HEDGING as the backtest runner, ATR exits). Limits are set tight on purpose
(low min_score, small daily loss limit) so the runs open, manage and close many positions and hit the daily limit.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nautilus_trader.model.enums import OmsType

from catalog.convert import convert_file
from catalog.files import identify
from factors.inputs import bar_type_for
from nodes.backtest.funding import FundingSettlementModule
from strategies.ats import AtsStrategy
from strategies.events import RiskEvent, SignalEvent
from strategies.risk import utc_day
from tests.strategy_support import (
    EventRecorder,
    InvariantChecker,
    InvariantCheckerConfig,
    ats_config,
    make_engine,
    perp,
)

SYMBOLS_1M = "BTC ETH SOL XRP BNB ADA AVAX BCH ENA ETC LAYER LINK LTC SUI XLM XMR".split()
SYMBOLS_1H = "BTC ETH LTC SUI 1000PEPE".split()
DAY_NS = 86_400 * 10**9


@dataclass
class RealRun:
    strategy: AtsStrategy
    checker: InvariantChecker
    events: EventRecorder
    module: FundingSettlementModule
    bars: int


def load(folder: Path, symbols: list[str], interval: str, days: float | None) -> tuple[list, list, list]:
    instruments, bars, funding = [], [], []
    per_symbol = {}
    for s in symbols:
        instrument = perp(f"{s}USDT")
        instruments.append(instrument)
        per_symbol[instrument.id] = convert_file(identify(folder / f"{s}USDT-{interval}.csv.gz"), instrument)
    start = max(b[0].ts_event for b in per_symbol.values())  # every symbol trading
    end = start + int(days * DAY_NS) if days else 2**63
    for instrument in instruments:
        bars.extend(b for b in per_symbol[instrument.id] if start <= b.ts_event < end)
        rates = convert_file(identify(folder / f"{instrument.id.symbol.value[:-5]}-funding_rate.csv.gz"), instrument)
        funding.extend(f for f in rates if start <= f.ts_event < end)
    return instruments, bars, funding


def run_real(data: tuple[list, list, list], bar_spec: str, settings: dict[str, Any]) -> RealRun:
    instruments, bars, funding = data
    module = FundingSettlementModule()
    engine = make_engine(instruments, modules=[module], oms=OmsType[settings.get("oms_type", "NETTING")])
    engine.add_data(bars)
    engine.add_data(funding)
    config = ats_config(instruments, {"bar_spec": bar_spec, **settings})
    strategy = AtsStrategy(config)
    checker = InvariantChecker(
        InvariantCheckerConfig(
            bar_types=tuple(str(bar_type_for(i.id, bar_spec)) for i in instruments),
            max_notional=config.sizing.max_position_size_usdt,
            max_leverage=config.sizing.max_leverage,
        )
    )
    events = EventRecorder()
    engine.add_actor(checker)
    engine.add_actor(events)
    engine.add_strategy(strategy)
    engine.run()
    return RealRun(strategy, checker, events, module, len(bars))


CFG_1M: dict[str, Any] = {"min_score": 40.0, "scan.interval_minutes": 15, "risk.daily_loss_limit_usdt": 300.0}
# The 1h run also covers what the 1m run does not: HEDGING (the backtest runner's speed setting) and ATR exits.
CFG_1H: dict[str, Any] = {
    "min_score": 40.0,
    "scan.interval_minutes": 60,
    "risk.daily_loss_limit_usdt": 300.0,
    "oms_type": "HEDGING",
    "exits.mode": "ATR",
}


@pytest.fixture(scope="module")
def data_1m(shared_data: Path) -> tuple[list, list, list]:
    return load(shared_data / "ohlcv_2025-03_2025-06", SYMBOLS_1M, "1m", days=3)


@pytest.fixture(scope="module")
def data_1h(shared_data: Path) -> tuple[list, list, list]:
    instruments, bars, funding = load(shared_data / "ohlcv_2023-01_2024-05", SYMBOLS_1H, "1h", days=None)
    return instruments, [b for b in bars if b.ts_event < 1_735_689_600 * 10**9], funding  # up to 2024-12-31


@pytest.fixture(scope="module")
def run_1m(data_1m: tuple[list, list, list]) -> RealRun:
    return run_real(data_1m, "1-MINUTE", CFG_1M)


@pytest.fixture(scope="module")
def run_1h(data_1h: tuple[list, list, list]) -> RealRun:
    return run_real(data_1h, "1-HOUR", CFG_1H)


def check_invariants(r: RealRun, min_trades: int) -> None:
    ledger = r.strategy.ledger()
    assert r.strategy.errors == 0
    assert len(ledger) >= min_trades, f"only {len(ledger)} trades: the run does not exercise the exits"
    assert r.checker.bars_checked == r.bars
    assert r.checker.position_bars > 0
    assert r.checker.violations == [], r.checker.violations[:10]
    config = r.strategy.config
    assert r.checker.max_open <= config.risk.max_positions
    for rec in ledger:
        assert rec["leverage"] <= config.sizing.max_leverage
        assert rec["quantity"] * rec["entry_price"] <= config.sizing.max_position_size_usdt + 1e-6


def check_no_entry_after_daily_limit(r: RealRun) -> int:
    hits = [e.ts_event for e in r.events.of(RiskEvent, kind="DAILY_LOSS_LIMIT")]
    signals = [e.ts_event for e in r.events.of(SignalEvent)]
    for hit in hits:
        late = [s for s in signals if s >= hit and utc_day(s) == utc_day(hit)]
        assert late == [], f"entries after the daily limit hit at {hit}: {late}"
    return len(hits)


def test_1m_all_symbols_invariants(run_1m: RealRun) -> None:
    check_invariants(run_1m, min_trades=5)
    assert check_no_entry_after_daily_limit(run_1m) >= 1  # the tight limit was really hit
    assert run_1m.module.settlements > 0  # funding was settled on open positions


def test_1h_2023_2024_invariants(run_1h: RealRun) -> None:
    check_invariants(run_1h, min_trades=20)
    check_no_entry_after_daily_limit(run_1h)
    reasons = {rec["exit_reason"] for rec in run_1h.strategy.ledger()}
    assert len(reasons) >= 2, reasons


def test_second_run_identical(data_1m: tuple[list, list, list], run_1m: RealRun) -> None:
    again = run_real(data_1m, "1-MINUTE", CFG_1M)
    assert again.strategy.ledger() == run_1m.strategy.ledger()
    assert again.strategy.counters() == run_1m.strategy.counters()
    assert again.module.totals == run_1m.module.totals
