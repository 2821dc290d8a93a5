"""An order's way out of the live node (``nodes/live/order_path.py``) and the first close's first-use costs paid at
start (``nodes/live/warm_start.py``); on a real node against the simulator over loopback."""

import gc
import time
from pathlib import Path
from typing import Any

import numpy as np
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.model.identifiers import InstrumentId, TraderId

from nodes.backtest.speed import BufferedPortfolioAnalyzer
from nodes.live.market_streams import market_streams_of
from nodes.live.order_path import DirectCommands
from nodes.live.stream_watch import StreamGapWatch
from nodes.live.warm_start import market_data_topics, prime_topics
from tests.live_support import (
    RALLY_START_MS,
    exchange_orders,
    live_node,
    order_posts,
    play_to_first_bar,
    wait_for,
    write_configs,
)
from tests.simulator_support import btc_data, running_simulator

BTC = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")


def _known_topics(msgbus: MessageBus) -> set[str]:
    """The topics the bus has matched against its subscriptions (its private topic -> subscribers table, found
    among the objects it holds: the dict whose values are the subscriber arrays)."""
    for referent in gc.get_referents(msgbus):
        values = referent.values() if isinstance(referent, dict) else ()
        # arrays of subscriptions, as numpy arrays or Cython's memoryviews of them
        if values and all(isinstance(v, np.ndarray) or type(v).__name__ == "_memoryviewslice" for v in values):
            return set(referent)
    return set()


def test_an_entry_reaches_the_exchange_before_the_strategys_handler_returns(shared_data: Path, tmp_path: Path) -> None:
    with running_simulator(btc_data(shared_data, bars=300, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        with live_node(config) as node:
            play_to_first_bar(sim, node)
            kernel = node.node.kernel
            engines = [kernel.risk_engine.ats_direct_commands, kernel.exec_engine.ats_direct_commands]
            assert all(isinstance(e, DirectCommands) for e in engines)
            before = order_posts(sim)

            def handler() -> tuple[dict[str, Any], bool, list[int]]:
                # As a scan does: the order is submitted from a handler on the node's loop, which then goes on
                # (held here until the exchange has the order, 5 s at the most).
                reply = node.strategy.manual_signal("BTCUSDT", "long")
                deadline = time.monotonic() + 5.0
                while order_posts(sim) == before and time.monotonic() < deadline:
                    time.sleep(0.01)
                queued = [kernel.risk_engine.cmd_qsize(), kernel.exec_engine.cmd_qsize()]
                return reply, order_posts(sim) > before, queued

            reply, arrived, queued = node.call(handler)
            assert reply["accepted"], reply
            assert queued == [0, 0]  # no engine's queue holds it
            assert arrived  # sent while the handler still ran: before, no order left before it returned
            assert [e.direct for e in engines] >= [1, 1]
            # and the trade goes on as before: filled, its stop and both targets on the exchange
            wait_for(lambda: len(exchange_orders(sim)) == 3, 30, "the entry's stop and targets")
            assert node.strategy.counters()["total"]["entries"] == 1


def test_the_universes_market_topics_are_known_to_the_bus_before_the_first_message(
    shared_data: Path, tmp_path: Path
) -> None:
    with running_simulator(btc_data(shared_data, bars=300, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"], strategy={"warmup_bars": 5})
        with live_node(config) as node:
            msgbus = node.node.kernel.msgbus
            topics = set(market_data_topics([BTC], "1-MINUTE"))
            assert topics <= node.call(lambda: _known_topics(msgbus))  # before any bar, quote or mark came
            [streams] = market_streams_of(node.node)
            assert streams._instrument_ids == {"BTCUSDT": BTC}  # looked up at start
            # a closed position's PnL is buffered, not concatenated into pandas series inside the fill's handler
            assert isinstance(node.node.kernel.portfolio.analyzer, BufferedPortfolioAnalyzer)
            # the stream gap watch counts the engine's data at its ticks: no handler of its own on marks and bars
            watch = next(a for a in node.node.trader.actors() if isinstance(a, StreamGapWatch))
            handlers = [s.handler for s in msgbus.subscriptions()]
            assert watch._on_market_data not in handlers and watch.gaps.last_count == 0
            # the warm-up's bars (a REST reply) are no sign of the streams: nothing seen before the replay plays
            wait_for(lambda: node.node.kernel.data_engine.data_count > 0, 30, "the warm-up bars")
            time.sleep(1.5)  # a tick of the watch
            assert streams.received == 0 and watch.gaps.last_seen is None
            play_to_first_bar(sim, node)  # the strategy receives its bars through the primed topics
            wait_for(lambda: node.strategy.book.is_warm(BTC), 30, "the warm book")
            wait_for(lambda: watch.gaps.last_seen is not None, 5, "the streams seen at a tick")


def test_priming_delivers_nothing_and_keeps_the_subscriptions_and_their_order() -> None:
    msgbus = MessageBus(TraderId("TESTER-001"), LiveClock())
    received: list[tuple[str, Any]] = []
    msgbus.subscribe("data.quotes.*", lambda m: received.append(("portfolio", m)), priority=10)
    msgbus.subscribe("data.quotes.*", lambda m: received.append(("second", m)), priority=10)
    msgbus.subscribe("events.order.*", lambda m: received.append(("orders", m)))
    topics = market_data_topics([BTC], "1-MINUTE")
    assert prime_topics(msgbus, topics) == topics
    assert received == []  # nothing delivered
    assert set(topics) <= _known_topics(msgbus)
    assert [(s.topic, s.priority) for s in msgbus.subscriptions()] == [
        ("events.order.*", 0),
        ("data.quotes.*", 10),
        ("data.quotes.*", 10),
    ]
    msgbus.subscribe(topics[1], lambda m: received.append(("strategy", m)))  # after priming, as at start
    msgbus.publish(topics[1], "quote")
    assert received == [("portfolio", "quote"), ("second", "quote"), ("strategy", "quote")]
