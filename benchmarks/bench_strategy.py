"""The trading strategy's speed against the EMA-cross baseline, and how its cost grows with the positions.

The first rows run ``ats backtest`` in fresh processes: the default config (``nodes/configs/backtest.toml``, its
16 symbols x 25 days on 1-hour bars) and the no-order EMA cross on the same data (the same catalog, symbols, window,
bar size and log level; ``trade = false``: indicators only), then both again on 1-minute bars (``--bar 1m``), and
print the default strategy's CPU time over the EMA run's (the target: <= 1.2). CPU time (user + sys of the process),
because the machine is shared; both with ``--one-process`` (``backtest_command``), so the figure does not depend on
the load. ``strategy --default-only`` runs just these.

The rows after them run an in-process ``BacktestEngine`` on the real 16-symbol 1m set (``../shared/data``) with the
speed measures the backtest runner applies (HEDGING OMS, buffered portfolio analyzer, GC survivors frozen), funding
settled for the strategy, log level ERROR.
"""

import argparse
import os
import re
import statistics
import tempfile
import time
import tomllib
from decimal import Decimal
from pathlib import Path

import pandas as pd
from nautilus_trader.model.enums import OmsType

from benchmarks.bench_process import ATS, run_timed
from benchmarks.ema_cross import EMACrossNotional, EMACrossNotionalConfig
from benchmarks.table import Row
from catalog.convert import convert_file
from catalog.files import identify
from nodes.backtest.funding import FundingSettlementModule
from nodes.backtest.speed import prepare_engine, survivors_frozen
from strategies.ats import AtsStrategy
from tests.strategy_support import ats_config, bar_type, make_engine, perp

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance" / "ohlcv_2025-03_2025-06"
PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = PROJECT / "nodes" / "configs" / "backtest.toml"
SYMBOLS = "BTC ETH SOL XRP BNB ADA AVAX BCH ENA ETC LAYER LINK LTC SUI XLM XMR".split()
DAY_NS = 86_400 * 10**9


def _load(days: float) -> tuple[list, list, list]:
    instruments = [perp(f"{s}USDT") for s in SYMBOLS]
    per = {i.id: convert_file(identify(DATA / f"{i.id.symbol.value[:-5]}-1m.csv.gz"), i) for i in instruments}
    start = max(b[0].ts_event for b in per.values())
    end = start + int(days * DAY_NS)
    bars = [b for i in instruments for b in per[i.id] if start <= b.ts_event < end]
    funding = []
    for i in instruments:
        rates = convert_file(identify(DATA / f"{i.id.symbol.value[:-5]}-funding_rate.csv.gz"), i)
        funding.extend(f for f in rates if start <= f.ts_event < end)
    return instruments, bars, funding


def _run_ats(data: tuple[list, list, list], cfg: dict[str, object], cpu: bool = False) -> tuple[float, int]:
    instruments, bars, funding = data
    engine = make_engine(instruments, oms=OmsType.HEDGING, modules=[FundingSettlementModule()])
    prepare_engine(engine)  # the same speed measures `ats backtest` applies (buffered analyzer)
    engine.add_data(bars)
    engine.add_data(funding)
    strategy = AtsStrategy(ats_config(instruments, {"oms_type": "HEDGING", **cfg}))
    engine.add_strategy(strategy)
    clock = time.process_time if cpu else time.perf_counter
    started = clock()
    with survivors_frozen():  # as `ats backtest` runs it
        engine.run()
    elapsed = clock() - started
    trades = len(strategy.ledger())
    engine.dispose()
    return elapsed, trades


def _run_ema(data: tuple[list, list, list], trade: bool = True) -> tuple[float, int]:
    instruments, bars, _ = data
    engine = make_engine(instruments, oms=OmsType.HEDGING)
    prepare_engine(engine)
    engine.add_data(bars)
    for i in instruments:
        engine.add_strategy(
            EMACrossNotional(
                EMACrossNotionalConfig(
                    instrument_id=i.id,
                    bar_type=bar_type(i),
                    notional_usdt=Decimal(1000),
                    oms_type="HEDGING",
                    strategy_id=f"EMA-{i.id.symbol.value}",
                    trade=trade,
                )
            )
        )
    started = time.perf_counter()
    with survivors_frozen():  # as `ats backtest` runs it
        engine.run()
    elapsed = time.perf_counter() - started
    positions = len(engine.cache.positions())
    engine.dispose()
    return elapsed, positions


def _set(text: str, key: str, value: str) -> str:
    """``key = value`` in place of the config line that sets ``key`` (the first one, in [backtest])."""
    changed, count = re.subn(rf"(?m)^{key} = .*$", lambda _: f"{key} = {value}", text, count=1)
    if count != 1:
        raise RuntimeError(f"{DEFAULT_CONFIG} has no line setting {key!r}")
    return changed


def same_data_configs(folder: Path) -> tuple[Path, Path]:
    """The default backtest config, and the no-order EMA cross on the same data, copied into ``folder`` with their
    paths absolute and their reports written there."""
    text = DEFAULT_CONFIG.read_text()
    backtest = tomllib.loads(text)["backtest"]
    catalog = (PROJECT / backtest["catalog"]).resolve()
    sources = [str((PROJECT / s).resolve()) for s in backtest.get("sources", [])]
    reports = folder / "reports"
    default = _set(_set(_set(text, "catalog", f'"{catalog}"'), "sources", repr(sources).replace("'", '"')),
                   "report_dir", f'"{reports}"')  # fmt: skip
    symbols = ", ".join(f'"{s}"' for s in backtest["symbols"])
    ema = f"""[backtest]
catalog = "{catalog}"
sources = {repr(sources).replace("'", '"')}
symbols = [{symbols}]
bar = "{backtest["bar"]}"
start = "{backtest["start"]}"
end = "{backtest["end"]}"
report_dir = "{reports}"
log_level = "{backtest.get("log_level", "INFO")}"

[venue]
starting_balance = 100000

[strategy]
path = "benchmarks.ema_cross:EMACrossNotional"
config_path = "benchmarks.ema_cross:EMACrossNotionalConfig"
per_instrument = true

[strategy.config]
trade = false
"""
    paths = folder / "default.toml", folder / "ema_no_orders.toml"
    paths[0].write_text(default)
    paths[1].write_text(ema)
    for path in paths:  # the copies hold what they should
        copied = tomllib.loads(path.read_text())["backtest"]
        if copied["catalog"] != str(catalog) or copied["report_dir"] != str(reports):
            raise RuntimeError(f"{path}: catalog/report_dir not rewritten")
    return paths


def backtest_command(config: Path, extra: list[str]) -> list[str]:
    """``ats backtest`` of a config as the benchmark runs it: with ``--one-process``. By default the command forks a
    second process for the report's tables when the load leaves a core idle, and that child's cpu (its copied pages
    included) is counted too; whether it forks depends on what else the machine runs, so the same two commands gave
    ratios 0.1 apart at loads 1.2-2.2 and 2.3-2.6. In one process each run's cpu is its own work, at any load."""
    return [str(ATS), "backtest", str(config), "--one-process", *extra]


def alternated_pairs(first: list[str], second: list[str], pairs: int) -> list[tuple[tuple, tuple]]:
    """``pairs`` (first, second) measurements of two commands, each a fresh process, run A B B A A B ...: a drift of
    the machine's speed during the pairs reaches both commands alike, and neither always runs first."""
    out = []
    for index in range(pairs):
        if index % 2 == 0:
            a = run_timed(first)
            b = run_timed(second)
        else:
            b = run_timed(second)
            a = run_timed(first)
        out.append((a, b))
    return out


def ratio_summary(pairs: list[tuple[tuple, tuple]]) -> tuple[float, str]:
    """The median of the pairs' cpu ratios, and a note with every ratio, their spread and the best-of ratio."""
    ratios = [a[0] / b[0] for a, b in pairs]
    median = statistics.median(ratios)
    if len(ratios) == 1:
        return median, "one pair, cpu s"
    best = min(a[0] for a, _ in pairs) / min(b[0] for _, b in pairs)
    listed = ", ".join(f"{r:.2f}" for r in ratios)
    return median, (
        f"median of {len(ratios)} alternated pairs ({listed}; spread {max(ratios) - min(ratios):.2f}),"
        f" best cpu over best cpu {best:.2f}"
    )


def default_strategy_rows(quick: bool, pairs: int = 5) -> list[Row]:
    """``ats backtest`` with the default config against the no-order EMA cross on the same data, per bar size.

    Whole processes, cpu time (user + sys), each writing its report in one process. At the defaults'
    1-hour bars both processes take a few seconds, most of it the same imports, catalog check and report, so a
    single pair moves by 0.1-0.3 with the machine: the ratio is the median of ``pairs`` alternated pairs, printed
    with each pair's ratio. The 1-minute pair (minutes long, its ratio steadier) runs once."""
    backtest = tomllib.loads(DEFAULT_CONFIG.read_text())["backtest"]
    narrow: list[str] = []
    what = f"{len(backtest['symbols'])} symbols x 25 d"
    if quick:
        start = backtest["start"]
        end = (pd.Timestamp(start) + pd.Timedelta(days=5)).strftime("%Y-%m-%d")
        narrow = ["--symbols", *backtest["symbols"][:4], "--start", start, "--end", end]
        what = "4 symbols x 5 d"
    out: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench_strategy_") as tmp:
        default, ema = same_data_configs(Path(tmp))
        for bar, label, repeats in ((None, backtest["bar"], pairs), ("1m", "1-MINUTE", 1)):
            extra = [*narrow, *(["--bar", bar] if bar else [])]
            load_before = os.getloadavg()[0]
            measured = alternated_pairs(backtest_command(default, extra), backtest_command(ema, extra), repeats)
            load_after = os.getloadavg()[0]
            ats_cpu, ats_wall, ats_rss = min(a for a, _ in measured)
            ema_cpu, ema_wall, ema_rss = min(b for _, b in measured)
            ratio, how = ratio_summary(measured)
            name = f"{what}, {label} bars" + (" (the defaults)" if bar is None else " (the default config, --bar 1m)")
            best = f"best of {repeats}, " if repeats > 1 else ""
            out += [
                Row(f"ats backtest, default strategy, {name}", "cpu s", ats_cpu, "", "",
                    f"{best}wall {ats_wall:.1f} s, peak RSS {ats_rss:,.0f} MB"),
                Row(f"ats backtest, no-order EMA cross, {name}", "cpu s", ema_cpu, "", "",
                    f"{best}wall {ema_wall:.1f} s, peak RSS {ema_rss:,.0f} MB; same catalog, symbols, window, logs"),
                Row(f"default strategy / no-order EMA cross, {name}", "ratio", ratio, "<= 1.2", "",
                    f"whole process, cpu s; {how}; 1-min load {load_before:.1f} -> {load_after:.1f}"),
            ]  # fmt: skip
    return out


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--default-only",
        action="store_true",
        help="strategy: only the rows of `ats backtest` with the default config against the no-order EMA cross",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=5,
        help="strategy: alternated (default, EMA) process pairs at the defaults' bar size (default 5)",
    )


def rows(quick: bool = False, options: argparse.Namespace | None = None) -> list[Row]:
    out = default_strategy_rows(quick, options.pairs if options is not None else 5)
    if options is not None and options.default_only:
        return out
    return out + engine_rows(quick)


def engine_rows(quick: bool = False) -> list[Row]:
    days = 0.5 if quick else 2.0
    data = _load(days)
    n = len(data[1])
    cfg = {"min_score": 40.0, "scan.interval_minutes": 15}
    ats_s, ats_trades = _run_ats(data, cfg)
    ema_s, ema_positions = _run_ema(data)
    idle_s, _ = _run_ema(data, trade=False)
    ats_bps, ema_bps, idle_bps = n / ats_s, n / ema_s, n / idle_s
    name = f"16 symbols x {days:g} d of 1m ({n:,} bars)"
    out = [
        Row(f"AtsStrategy, {name}", "bars/s", ats_bps, note=f"{ats_trades} trades, 15-min scans"),
        Row(f"EMA cross baseline, {name}", "bars/s", ema_bps, note=f"{ema_positions} positions"),
        Row(f"EMA cross, indicators only, {name}", "bars/s", idle_bps, note="no orders"),
        Row("AtsStrategy / EMA cross", "ratio", ats_bps / ema_bps, target=">= 0.5"),
        Row("AtsStrategy / EMA cross without orders", "ratio", ats_bps / idle_bps, note="informative"),
    ]
    # "10x the positions costs <= 12x the time": the cost of the positions themselves (a run minus the same run
    # that never trades) over a window and over ten times that window, so history grows tenfold. CPU time,
    # because the machine is shared and wall time would measure the neighbours. Quadratic per-trade work would
    # show as a cost per position that grows with the window.
    busy = {
        **cfg,
        "min_score": 15.0,
        "scan.interval_minutes": 5,
        "risk.max_positions": 16,
        "exits.stop_pct": 0.004,
        "exits.tp1_pct": 0.006,
        "exits.tp2_pct": 0.01,
        "risk.correlation_bound": 1.01,
    }
    idle = {**busy, "scan.entries": "NONE"}
    # Windows long enough that the factors' warm-up (the first hours trade nothing) is a small share.
    per_position: list[tuple[float, int, float]] = []
    for window_days in (0.2, 2.0) if quick else (0.5, 5.0):
        window = _load(window_days)
        busy_s, trades = _run_ats(window, busy, cpu=True)
        idle_s, _ = _run_ats(window, idle, cpu=True)
        per_position.append((window_days, trades, (busy_s - idle_s) / max(trades, 1)))
    (short_days, short_trades, short_cost), (long_days, long_trades, long_cost) = per_position
    out.append(
        Row(
            f"AtsStrategy, cost per position, {long_days:g} d ({long_trades} trades) vs {short_days:g} d "
            f"({short_trades})",
            "ratio",
            long_cost / short_cost if short_cost > 0 else float("nan"),
            target="<= 1.2 (10x positions <= 12x time)",
            note=f"cpu per position {long_cost * 1e3:.2f} ms vs {short_cost * 1e3:.2f} ms (run minus no-trade run)",
        )
    )
    return out
