"""The live node under chaos, on the simulator, with the exchange-side invariant checker watching every state
change: a rejected stop ends with the position protected; a short seeded soak runs every kind of fault against
a trading node (the long soak is ``uv run python -m benchmarks chaos``)."""

from pathlib import Path

import pytest

from simulator.chaos import FAULT_KINDS, ChaosRunner, chaos_schedule, summarize
from simulator.invariants import InvariantMonitor, check_exchange
from simulator.sources import from_files
from tests.live_support import exchange_orders, exchange_position, live_node, wait_for, write_configs
from tests.simulator_support import btc_data, running_simulator
from tests.test_live_node import RALLY_START_MS

VOLATILE_DAY_MS = 1_747_958_400_000  # 2025-05-23 00:00 UTC, the shared 1m data's most volatile day
SOAK_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
TRADING: dict[str, object] = {  # scans every minute, enters easily, exits close: positions turn over fast
    "scan": {"interval_minutes": 1},
    "min_score": 10.0,
    "warmup_bars": 120,
    "exits": {"stop_pct": 0.003, "tp1_pct": 0.003, "tp2_pct": 0.006},
}


def test_rejected_stop_placement_ends_with_the_position_protected(shared_data: Path, tmp_path: Path) -> None:
    with running_simulator(btc_data(shared_data, bars=60, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        with live_node(config) as node:
            sim.play()
            wait_for(lambda: node.strategy.market.last_close, 30, "the first bar")
            sim.pause()  # the price holds: what follows is the node's doing, not the market's
            monitor = InvariantMonitor(sim, grace_s=5.0).start()
            sim.reject_next_order(-1008, target="stop")  # the exchange refuses the entry's stop (server busy)
            assert node.control("signal", "BTC", "long")["accepted"]
            wait_for(lambda: any("reject stop" in what for _, what in sim.faults.hits), 15, "the rejected stop")

            wait_for(
                lambda: not sim.call(lambda: check_exchange(sim.exchange)), 10, "a stop on the position, or no position"
            )
            amount = exchange_position(sim)[0]
            monitor.stop()
            report = monitor.report()
            assert node.strategy.errors == 0
    assert report.violations == []
    assert amount == 0 or exchange_orders(sim)
    # the moment without a stop was seen and measured: from the entry's fill to the repair
    assert [e.first.kind for e in report.divergences] == ["no_stop"]


@pytest.mark.xfail(
    strict=True,
    reason="On a rejected stop the strategy sends one reduce-only market close and nothing more: when that close is "
    "refused too (here -2019 on the exits; in the soak a 418 ban window or a 429), the order-failed handler "
    "ignores a failed exit, the stop is never re-placed, and the position stays without a stop until the end. "
    "Wanted: retry the stop, then close at market, and retry the close. Remove this mark once it does.",
)
def test_rejected_stop_and_refused_close_still_end_protected(shared_data: Path, tmp_path: Path) -> None:
    with running_simulator(btc_data(shared_data, bars=60, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        with live_node(config) as node:
            sim.play()
            wait_for(lambda: node.strategy.market.last_close, 30, "the first bar")
            sim.pause()
            sim.reject_next_order(-1008, target="stop")  # the stop is refused ...
            sim.reject_next_order(-2019, target="exit", count=3)  # ... and the next three exits: TP1, TP2, the close
            assert node.control("signal", "BTC", "long")["accepted"]
            wait_for(lambda: len(sim.faults.hits) == 4, 15, "the stop and three exits refused")
            wait_for(
                lambda: not sim.call(lambda: check_exchange(sim.exchange)), 10, "a stop on the position, or no position"
            )


@pytest.mark.xfail(
    strict=True,
    reason="Nautilus 1.231's Binance user-stream client makes one attempt at a new listen key after "
    "listenKeyExpired (BinanceUserDataWebSocketAPIClient._resubscribe_locked, REST listen-key path); when that "
    "POST /fapi/v1/listenKey is refused (418 ban, 429, -1008, a timeout) it logs 'Failed to recover REST listenKey "
    "... user data stream is NOT active, disconnecting' and never tries again: the node trades on blind to fills, "
    "cancels and expiries until restarted. Remove this mark once the node retries.",
)
def test_user_stream_comes_back_when_the_listen_key_renewal_is_refused(shared_data: Path, tmp_path: Path) -> None:
    with running_simulator(btc_data(shared_data, bars=60, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        with live_node(config):
            sim.play()
            wait_for(lambda: sim.status()["user_connections"] == 1, 30, "the user stream")
            sim.ban(3.0)  # the renewal meets a 3 s IP ban
            assert sim.expire_listen_key() is not None
            wait_for(lambda: sim.request_log.count("/fapi/v1/listenKey", "POST") >= 2, 10, "a renewal attempt")
            wait_for(lambda: sim.status()["user_connections"] == 1, 12, "the user stream back after the ban")


@pytest.mark.xfail(
    strict=True,
    reason="After TP1 the strategy moves the stop to break-even by cancel + new order; when the exchange refuses "
    "the cancel (-1008 server busy) nothing retries it: the old stop for the full quantity stays beside the "
    "break-even stop (two stops, one for twice the position) until one of them fires. Remove this mark once a "
    "refused cancel is retried.",
)
def test_refused_stop_move_is_retried(shared_data: Path, tmp_path: Path) -> None:
    with running_simulator(btc_data(shared_data, bars=60, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        with live_node(config) as node:
            sim.play()
            wait_for(lambda: node.strategy.market.last_close, 30, "the first bar")
            assert node.control("signal", "BTC", "long")["accepted"]
            wait_for(lambda: len(exchange_orders(sim)) == 3, 30, "the entry's stop and targets")
            full = exchange_position(sim)[0]
            sim.reject_next_order(-1008, target="stop_cancel")
            wait_for(lambda: 0 < exchange_position(sim)[0] < full, 60, "TP1")
            sim.pause()
            wait_for(lambda: any("stop_cancel" in what for _, what in sim.faults.hits), 10, "the refused stop move")
            wait_for(lambda: not sim.call(lambda: check_exchange(sim.exchange)), 10, "one stop for what is left")


def test_short_seeded_chaos_soak(shared_data: Path, tmp_path: Path) -> None:
    files = [shared_data / f"ohlcv_2025-03_2025-06/{s}-1m.csv.gz" for s in SOAK_SYMBOLS]
    data = from_files(files).window(VOLATILE_DAY_MS + 12 * 3_600_000, limit=120, history=130)
    schedule = chaos_schedule(seed=11, duration_s=16, mean_interval_s=0.9)
    assert {f.kind for f in schedule} == set(FAULT_KINDS)  # this seed draws every kind in 16 s
    with running_simulator(data, bar_seconds=0.25) as sim:
        config = write_configs(tmp_path, sim, list(SOAK_SYMBOLS), strategy=TRADING)
        with live_node(config) as node:
            wait_for(lambda: sim.request_log.count("/fapi/v1/klines") >= len(SOAK_SYMBOLS), 30, "the warm-up")
            monitor = InvariantMonitor(sim).start()
            runner = ChaosRunner(sim, schedule, monitor)
            sim.play()
            runner.start()
            wait_for(lambda: runner.done, 40, "the fault schedule")
            runner.stop()
            # market data comes back after every fault (the user stream may not: see the listen-key test above)
            wait_for(lambda: sim.status()["market_connections"] > 0, 30, "the market streams to reconnect")
            monitor.stop()
            summary = summarize(sim, runner, monitor)
            assert node.node.trader.is_running
    print(f"chaos soak: injected {summary.injected}, hits {summary.hits}")
    print(f"  violations {summary.violations}, divergences {summary.divergences}, longest {summary.longest_s}")
    assert [i.fault for i in runner.injected] == schedule and not [i for i in runner.injected if i.error]
    assert summary.hits, "faults must have met requests"
    assert summary.orders_sent > 0 and summary.trades > 0 and summary.checks > 100
