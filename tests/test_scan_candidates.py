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
