"""What a scan's candidate costs before it is refused: the scan walks up to every symbol of the universe while
slots are free, between the minute's last bar and its orders (``benchmarks live-load``)."""

import pytest

from factors.book import FactorBook
from tests.strategy_support import at, perp
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
