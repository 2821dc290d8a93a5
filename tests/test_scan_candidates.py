"""What a scan's candidate costs before it is refused: the scan walks up to every symbol of the universe while
slots are free, between the minute's last bar and its orders (``benchmarks live-load``); and what of the scan itself
is left for that last bar."""

import pytest

from factors.book import FactorBook
from tests.strategy_support import T0, at, path_bars, perp
from tests.strategy_support import run_scenario as run

BTC = perp("BTCUSDT")
ETH = perp("ETHUSDT")


def test_a_refused_candidate_lists_no_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    # ETH follows BTC's returns exactly: a long ETH is refused while the long BTC is open
    base = [50_000.0 * (1 + 0.002 * ((i * 7) % 5 - 2)) for i in range(20)]
    wide = {"exits.stop_pct": 0.05, "exits.tp1_pct": 0.2, "exits.tp2_pct": 0.4}
    r = run({BTC: base, ETH: [p / 25 for p in base]}, [(at(10), "signal", ("BTCUSDT", "long"))], settings=wide)
    assert r.replies()[0]["accepted"] and BTC.id in r.strategy.trades.open

    def listed(book: FactorBook) -> dict:
        raise AssertionError("every symbol's close listed for one candidate")

    monkeypatch.setattr(FactorBook, "last_closes", listed)
    reason = r.strategy._try_entry(ETH.id, "LONG", None, manual=False)
    assert "correlate 1.00 > 0.8" in reason


def test_equity_funding_and_the_scan_read_one_close_per_open_trade(monkeypatch: pytest.MonkeyPatch) -> None:
    """The equity (each scan, each new day), a funding rate and a scan's dynamic check of an open trade read the
    closes of the open trades only, the same closes ``last_closes`` lists."""
    from decimal import Decimal

    from nautilus_trader.model.data import FundingRateUpdate

    base = [50_000.0 * (1 + 0.002 * ((i * 7) % 5 - 2)) for i in range(20)]
    r = run({BTC: base, ETH: [p / 25 for p in base]}, [(at(10), "signal", ("BTCUSDT", "long"))])
    strategy = r.strategy
    trade = strategy.trades.open[BTC.id]
    listed = strategy.market.last_close
    equity = strategy.equity()
    position = strategy.orders.open_position(trade)
    funding_before = trade.funding

    def listing(book: FactorBook) -> dict:
        raise AssertionError("every symbol's close listed for one symbol's")

    monkeypatch.setattr(FactorBook, "last_closes", listing)
    assert strategy.market.close_of(BTC.id) == listed[BTC.id] and strategy.market.close_of(ETH.id) == listed[ETH.id]
    assert strategy.market.close_of(perp("SOLUSDT").id) is None  # outside the universe: as ``.get``
    assert strategy.market.close_of(perp("SOLUSDT").id, 1.5) == 1.5
    assert strategy.equity() == equity
    strategy.on_funding_rate(FundingRateUpdate(BTC.id, Decimal("0.0001"), at(19), at(19)))
    assert trade.funding == funding_before - position.signed_qty * listed[BTC.id] * 0.0001
    strategy.keeper.adjust(trade, float(strategy.book.score(BTC.id).score))
    assert strategy.errors == 0


def test_live_a_scan_bar_computes_its_values_and_the_last_one_scans() -> None:
    """Live (an eager book), each bar of a scan time but the one that completes it leaves its symbol's bar factor
    values computed, so the scan after the minute's last bar computes only that symbol's; the scan is the one the
    book gives without it."""
    from strategies.scan import NANOS_PER_MINUTE

    base = [50_000.0 * (1 + 0.002 * ((i * 7) % 5 - 2) + 0.0001 * i) for i in range(81)]
    bars = {inst: path_bars(inst, [p * k for p in base], T0) for inst, k in ((BTC, 1.0), (ETH, 1 / 25))}
    r = run({inst: [b.close.as_double() for b in series[:80]] for inst, series in bars.items()}, [],
            settings={"scan.interval_minutes": 1})  # fmt: skip
    strategy = r.strategy
    scans = strategy.scans
    strategy.book.eager = True  # what the live node's strategy sets at its start
    bar_factors = strategy.book._syms[BTC.id].bar_factors
    strategy.on_bar(bars[BTC][80])
    assert bars[BTC][80].ts_event % NANOS_PER_MINUTE == 0 and strategy.scans == scans  # ETH's bar completes it
    assert not any(f._outdated for f in bar_factors) and strategy.book._syms[BTC.id].t._value is not None
    eth = strategy.book._syms[ETH.id].bar_factors
    strategy.on_bar(bars[ETH][80])
    assert strategy.scans == scans + 1 and all(not f._outdated for f in eth)
    plain = FactorBook(strategy.config.factors, [BTC.id, ETH.id], BTC.id, ETH.id)
    for k in range(81):
        plain.handle_bar(bars[BTC][k])
        plain.handle_bar(bars[ETH][k])
    assert [(s.instrument_id, s.score, s.strength, s.values) for s in plain.scan()] == [
        (s.instrument_id, s.score, s.strength, s.values) for s in strategy.book.scan()
    ]
    assert strategy.errors == 0
