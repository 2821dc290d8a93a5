"""``--paper``: live market data from the exchange (here the simulator's streams), fills from Nautilus's sandbox
execution. The real strategy trades a whole lifecycle on sandbox fills, with no key in the environment, and no
request ever reaches the exchange's order or account endpoints."""

from pathlib import Path

from tests.live_support import RALLY_START_MS, exchange_position, live_node, wait_for, write_configs
from tests.simulator_support import btc_data, running_simulator

# What a paper node may ask the exchange: public market data only (instruments, past klines, depth snapshots,
# open interest).
PUBLIC_PATHS = {
    "/fapi/v1/exchangeInfo",
    "/fapi/v1/klines",
    "/fapi/v1/depth",
    "/fapi/v1/time",
    "/fapi/v1/ping",
    "/fapi/v1/openInterest",
}


def test_paper_mode_trades_on_sandbox_fills_and_sends_nothing_to_the_exchange(
    shared_data: Path, tmp_path: Path
) -> None:
    data = btc_data(shared_data, bars=40, start_ms=RALLY_START_MS)
    with running_simulator(data, bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        with live_node(config, mode="paper", environ={}) as node:  # no key anywhere
            sim.play()
            wait_for(lambda: node.strategy.market.last_close, 30, "the first bar from the simulator's streams")
            assert node.control("signal", "BTC", "long")["accepted"]
            wait_for(lambda: node.call(lambda: node.strategy.ledger(include_open=False)), 60, "the paper trade")
            ledger = node.call(lambda: node.strategy.ledger(include_open=False))
            orders = node.call(lambda: [(o.order_type.name, o.status.name, o.tags) for o in node.node.cache.orders()])
            balance = node.control("balance")
            assert node.strategy.errors == 0
        paths = {e.path for e in sim.request_log.entries}
    assert [r["exit_reason"] for r in ledger] == ["TP1+TP2"] and ledger[0]["realized_pnl"] > 0
    # entry, stop, TP1, TP2, break-even stop: the whole exit logic ran on the sandbox
    assert [(t, s) for t, s, _ in orders] == [
        ("MARKET", "FILLED"),
        ("STOP_MARKET", "CANCELED"),
        ("LIMIT", "FILLED"),
        ("LIMIT", "FILLED"),
        ("STOP_MARKET", "CANCELED"),
    ]
    assert balance["total"] > 10_000  # the sandbox account, not the exchange's
    assert paths <= PUBLIC_PATHS, paths - PUBLIC_PATHS
    assert exchange_position(sim) == (0, 0)
