"""The live node under chaos, on the simulator, with the exchange-side invariant checker watching every state
change: a rejected stop ends with the position protected; a short seeded soak runs every kind of fault against
a trading node (the long soak is ``uv run python -m benchmarks chaos``)."""

import time
from pathlib import Path

from nautilus_trader.model.data import DataType

from simulator.chaos import FAULT_KINDS, ChaosRunner, chaos_schedule, summarize
from simulator.invariants import InvariantMonitor, check_exchange
from simulator.sources import from_files
from strategies.events import NodeEvent
from tests.live_support import exchange_orders, exchange_position, live_node, play_to_first_bar, wait_for, write_configs
from tests.simulator_support import btc_data, running_simulator
from tests.test_live_node import RALLY_START_MS

VOLATILE_DAY_MS = 1_747_958_400_000  # 2025-05-23 00:00 UTC, the shared 1m data's most volatile day
SOAK_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
TRADING: dict[str, object] = {  # scans every minute, enters easily, exits close: positions turn over fast
    "scan.interval_minutes": 1,
    "scan.entries": "EVERY_SCAN",
    "min_score": 10.0,
    "warmup_bars": 120,
    "exits.stop_pct": 0.003,
    "exits.tp1_pct": 0.003,
    "exits.tp2_pct": 0.006,
}


def test_rejected_stop_placement_ends_with_the_position_protected(shared_data: Path, tmp_path: Path) -> None:
    with running_simulator(btc_data(shared_data, bars=60, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        with live_node(config) as node:
            play_to_first_bar(sim, node)
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


def test_rejected_stop_and_refused_close_still_end_protected(shared_data: Path, tmp_path: Path) -> None:
    """Catches: a close at market the exchange refuses never being sent again. The stop is refused with -2021
    (would trigger at once: placing it again cannot work, so the strategy closes at market), and the next three
    exits are refused (-2019): TP1, TP2 and that close. The position has no stop and no close on its way; it
    must still end closed, by the close tried again after a short wait."""
    with running_simulator(btc_data(shared_data, bars=60, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        with live_node(config) as node:
            play_to_first_bar(sim, node)
            sim.pause()
            sim.reject_next_order(-2021, target="stop")  # the stop is refused: close at market instead ...
            sim.reject_next_order(-2019, target="exit", count=3)  # ... and the next three exits: TP1, TP2, the close
            assert node.control("signal", "BTC", "long")["accepted"]
            wait_for(lambda: len(sim.faults.hits) == 4, 15, "the stop and three exits refused")
            wait_for(lambda: exchange_position(sim)[0] == 0, 10, "the position closed by the close tried again")
            # the node books a close in two steps (the open trade dropped, its record kept): wait for the record
            wait_for(lambda: not node.strategy.trades.open and node.strategy.records, 10, "the trade booked")
            assert not sim.call(lambda: check_exchange(sim.exchange))
            assert node.strategy.errors == 0
            (record,) = node.strategy.ledger()
    assert record["exit_reason"] == "STOP"


def test_user_stream_comes_back_when_the_listen_key_renewal_is_refused(shared_data: Path, tmp_path: Path) -> None:
    """Catches: a listen-key renewal refused once leaving the node without its user stream for good (Nautilus
    1.231 tries once, logs "user data stream is NOT active" and stops). The renewal meets a 3 s IP ban; the
    stream must be back within the retry policy's quick tries."""
    with running_simulator(btc_data(shared_data, bars=60, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        with live_node(config):
            sim.play()
            wait_for(lambda: sim.status()["user_connections"] == 1, 30, "the user stream")
            sim.ban(3.0)  # the renewal meets a 3 s IP ban
            assert sim.expire_listen_key() is not None
            wait_for(lambda: sim.request_log.count("/fapi/v1/listenKey", "POST") >= 2, 10, "a renewal attempt")
            wait_for(lambda: sim.status()["user_connections"] == 1, 12, "the user stream back after the ban")


def test_user_stream_comes_back_when_the_listen_key_expires_unseen(shared_data: Path, tmp_path: Path) -> None:
    """Catches: a listen key that expires while the user stream is silent (its "listenKeyExpired" message lost)
    leaving the node without its user stream for good: the connection is closed, every reconnect with the old
    key is refused, and Nautilus 1.231 asks for a new key only on that message (the one-hour soak, seed 7: the
    stream down for the last 19 minutes, 54 violations as fills went unseen). It must be back within seconds."""
    with running_simulator(btc_data(shared_data, bars=60, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        with live_node(config) as node:
            events: list[NodeEvent] = []
            topic = f"data.{DataType(NodeEvent).topic}"
            node.call(lambda: node.node.kernel.msgbus.subscribe(topic=topic, handler=events.append))
            sim.play()
            wait_for(lambda: sim.status()["user_connections"] == 1, 30, "the user stream")
            keys = sim.request_log.count("/fapi/v1/listenKey", "POST")
            # the key is probed while alive: the keep-alive answered, and no new key asked for
            wait_for(lambda: sim.request_log.count("/fapi/v1/listenKey", "PUT"), 15, "a probe of the live key")
            time.sleep(0.5)
            assert {e.status for e in sim.request_log.entries if e.method == "PUT"} == {200}
            assert sim.request_log.count("/fapi/v1/listenKey", "POST") == keys
            sim.silence(3.0, market=False, user=True)
            assert sim.expire_listen_key() is not None  # its message is lost in the silence
            wait_for(lambda: sim.status()["user_connections"] == 0, 5, "the user stream closed")
            wait_for(lambda: sim.request_log.count("/fapi/v1/listenKey", "POST") > keys, 20, "a new listen key")
            wait_for(lambda: sim.status()["user_connections"] == 1, 10, "the user stream back on the new key")
            # reported once Nautilus's reconciliation of what the stream missed has run
            wait_for(lambda: [e for e in events if e.kind == "RECONNECTED"], 10, "the reconnect reported")


def test_refused_stop_move_is_retried(shared_data: Path, tmp_path: Path) -> None:
    """Catches: a refused cancel of the stop being replaced left alone. After TP1 the stop moves to break-even
    (new stop, then the old one cancelled); the exchange refuses the cancel (-1008). The strategy itself must
    cancel it again at once: the periodic sync (which would also find two stops) is set to an hour here."""
    with running_simulator(btc_data(shared_data, bars=60, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"], strategy={"sync.interval_s": 3600.0})
        with live_node(config) as node:
            play_to_first_bar(sim, node)
            assert node.control("signal", "BTC", "long")["accepted"]
            wait_for(lambda: len(exchange_orders(sim)) == 3, 30, "the entry's stop and targets")
            full = exchange_position(sim)[0]
            sim.reject_next_order(-1008, target="stop_cancel")
            wait_for(lambda: 0 < exchange_position(sim)[0] < full, 60, "TP1")
            sim.pause()
            wait_for(lambda: any("stop_cancel" in what for _, what in sim.faults.hits), 10, "the refused stop move")
            wait_for(lambda: not sim.call(lambda: check_exchange(sim.exchange)), 5, "one stop for what is left")
            (stop,) = [o for o in exchange_orders(sim) if o["type"] == "STOP_MARKET"]
            assert stop["qty"] == exchange_position(sim)[0]


def test_a_refused_position_check_is_no_closed_position(shared_data: Path, tmp_path: Path) -> None:
    """Catches: a position check that Binance refuses (429) read as "no position on the venue". Nautilus 1.231's
    Binance client answers the failed ``positionRisk`` with an empty list; the execution engine then books the
    open position as closed and the strategy cancels its stop and targets while the position is still open (the
    chaos soak, seed 169: no stop for 43 s, then a second entry doubled the position). The position, its trade
    and its three exit orders must all stay."""
    with running_simulator(btc_data(shared_data, bars=60, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])  # a position check every 2 s at this weight budget
        with live_node(config) as node:
            play_to_first_bar(sim, node)
            sim.pause()  # the price holds: nothing fills, nothing is sent but the periodic checks
            assert node.control("signal", "BTC", "long")["accepted"]
            wait_for(lambda: len(exchange_orders(sim)) == 3, 30, "the entry's stop and targets")
            time.sleep(2.5)  # the entry's own activity is past the engine's threshold for a position check
            sent = len(sim.request_log.entries)
            sim.throttle(429, retry_after_s=1, count=2)

            def refused_position_checks() -> int:
                later = sim.request_log.entries[sent:]
                return sum(1 for e in later if e.path.endswith("/positionRisk") and e.status == 429)

            wait_for(refused_position_checks, 15, "a position check refused with 429")
            time.sleep(3.0)
            later = sim.request_log.entries[sent:]
            assert [e.path for e in later if e.method == "DELETE"] == []
            assert len(exchange_orders(sim)) == 3 and exchange_position(sim)[0] > 0
            assert node.strategy.trades.open
            assert node.call(lambda: len(node.node.cache.positions_open())) == 1


def test_refused_cancel_of_a_closed_trades_stop_is_retried_before_the_next_entry(
    shared_data: Path, tmp_path: Path
) -> None:
    """Catches: the stop of a closed trade left resting after its cancel was refused, then a new trade opened
    beside it (the 30-minute soak, seed 7: SUIUSDT's next short had two stops, the old one sized for the earlier
    position, until the periodic sync removed it 5.2 s later). The position is closed (flatten) while the
    exchange refuses the next four cancels of a conditional order: the old stop must go by the strategy's own
    tries (the periodic sync is set to an hour here), and a signal meanwhile must not open a position."""
    with running_simulator(btc_data(shared_data, bars=60, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"], strategy={"sync.interval_s": 3600.0})
        with live_node(config) as node:
            play_to_first_bar(sim, node)
            sim.pause()  # the price holds: nothing fills but what the node sends
            assert node.control("signal", "BTC", "long")["accepted"]
            wait_for(lambda: len(exchange_orders(sim)) == 3, 30, "the entry's stop and targets")
            sim.reject_next_order(-1008, target="stop_cancel", count=4)
            node.control("flatten")
            wait_for(lambda: exchange_position(sim)[0] == 0, 10, "the position closed")

            def refused_cancels() -> int:
                return sum(1 for _, what in sim.faults.hits if "stop_cancel" in what)

            wait_for(lambda: refused_cancels() >= 2, 10, "two refused cancels of the old stop")
            during = node.control("signal", "BTC", "long")  # the old stop still rests: no entry
            assert not during["accepted"] and "cancel" in during["reason"], during
            wait_for(lambda: not exchange_orders(sim), 15, "the old stop cancelled by the strategy's own tries")
            assert refused_cancels() == 4
            # the symbol is clear: trading resumes
            wait_for(lambda: node.control("signal", "BTC", "long")["accepted"], 5, "an entry accepted again")
            wait_for(lambda: len(exchange_orders(sim)) == 3, 30, "the new entry's stop and targets")
            assert not sim.call(lambda: check_exchange(sim.exchange))  # one stop, for the new position
            assert node.strategy.errors == 0


def test_stop_resized_after_tp1_in_a_ban_window(shared_data: Path, tmp_path: Path) -> None:
    """Catches: TP1 filling during a 418 ban window and the position then closed at market instead of
    re-protected (the 30-minute soak, seed 7: ETCUSDT kept the stop for the whole position 15.5 s while half was
    closed, and was then closed at market at the ban's end). Every try to place the break-even stop during the
    ban is refused at once (the two immediate tries, then the close, refused too); the old stop still covers.
    The break-even stop for the rest must be placed once the ban is over, the old one cancelled, and the
    position stay open."""
    strategy = {"exits.tp1_pct": 0.0005, "exits.tp2_pct": 0.05, "exits.stop_pct": 0.02}
    with running_simulator(btc_data(shared_data, bars=60, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"], strategy=strategy)
        with live_node(config) as node:
            play_to_first_bar(sim, node)
            sim.pause()
            assert node.control("signal", "BTC", "long")["accepted"]
            wait_for(lambda: len(exchange_orders(sim)) == 3, 30, "the entry's stop and targets")
            full = exchange_position(sim)[0]
            sent = len(sim.request_log.entries)
            sim.ban(8.0)
            sim.play()  # TP1 is 0.05 % away on a rising market: it fills during the ban
            wait_for(lambda: 0 < exchange_position(sim)[0] < full, 8, "TP1 during the ban")
            sim.pause()

            def stop_refused_by_the_ban() -> bool:  # the node hears of the fill a moment after the exchange
                return any(e.path == "/fapi/v1/algoOrder" and e.status == 418 for e in sim.request_log.entries[sent:])

            wait_for(stop_refused_by_the_ban, 3, "the break-even stop refused in the ban (else TP1 filled after it)")
            rest = exchange_position(sim)[0]

            def one_stop_for_the_rest() -> bool:
                stops = [o for o in exchange_orders(sim) if o["type"] == "STOP_MARKET"]
                return len(stops) == 1 and stops[0]["qty"] == rest

            wait_for(one_stop_for_the_rest, 15, "the break-even stop for the rest, after the ban")
            time.sleep(6.0)  # a periodic sync (every 5 s) in between must not have moved it back
            trade = next(iter(node.strategy.trades.open.values()))
            (stop,) = [o for o in exchange_orders(sim) if o["type"] == "STOP_MARKET"]
            assert trade.stop_kind == "BREAKEVEN" and float(stop["price"]) == trade.stop_price == trade.entry
            assert exchange_position(sim)[0] == rest  # still open: re-protected, not closed at market
            assert not sim.call(lambda: check_exchange(sim.exchange))
            later = sim.request_log.entries[sent:]
            closes = [e for e in later if e.method == "POST" and e.path == "/fapi/v1/order" and e.status == 200]
            assert closes == []  # no close at market went out
            assert node.strategy.trades.open and node.strategy.errors == 0


def test_refused_take_profit_is_placed_again(shared_data: Path, tmp_path: Path) -> None:
    """Catches: a take-profit the exchange refused (-2019) left out for the rest of the trade (it would never
    take its profit; the soak's refused exits met take-profits as often as stops). TP1 is refused; it must be
    placed again after the retry policy's first wait, for its half."""
    with running_simulator(btc_data(shared_data, bars=60, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        with live_node(config) as node:
            play_to_first_bar(sim, node)
            sim.pause()
            sim.reject_next_order(-2019, target="target")  # the first take-profit, TP1
            assert node.control("signal", "BTC", "long")["accepted"]
            wait_for(lambda: any("reject target" in what for _, what in sim.faults.hits), 15, "the refused TP1")
            wait_for(lambda: len(exchange_orders(sim)) == 3, 10, "the stop and both take-profits")
            full = exchange_position(sim)[0]
            limits = sorted(o["qty"] for o in exchange_orders(sim) if o["type"] == "LIMIT")
            assert sum(limits) == full and len(limits) == 2, limits
            assert not sim.call(lambda: check_exchange(sim.exchange)) and node.strategy.errors == 0


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
            # market data and the user stream come back after every fault
            wait_for(lambda: sim.status()["market_connections"] > 0, 30, "the market streams to reconnect")
            wait_for(lambda: sim.status()["user_connections"] > 0, 30, "the user stream to reconnect")
            monitor.stop()
            summary = summarize(sim, runner, monitor)
            assert node.node.trader.is_running
    print(f"chaos soak: injected {summary.injected}, hits {summary.hits}")
    print(f"  violations {summary.violations}, divergences {summary.divergences}, longest {summary.longest_s}")
    assert [i.fault for i in runner.injected] == schedule and not [i for i in runner.injected if i.error]
    assert summary.hits, "faults must have met requests"
    assert summary.orders_sent > 0 and summary.trades > 0 and summary.checks > 100
