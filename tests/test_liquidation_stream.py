"""The liquidation stream (``nodes/live/liquidations.py``) in the real live node, against the loopback simulator.

- A forced order injected with ``sim.force_order`` reaches a subscriber as a ``LiquidationUpdate`` with the
  event's side, quantity and price, and the strategy's factor book turns it into Q with the right sign.
- A malformed message is skipped without harm; a dropped connection is reported lost (Q "not available"),
  then reconnected, and liquidations flow again.
- The node config points the actor at the configured ``base_url_ws`` or Binance's stream for the mode.
"""

import json
import math
from pathlib import Path
from typing import Any

import pytest
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import InstrumentId

from factors.book import FactorBook
from factors.config import FactorConfig
from factors.inputs import LiquidationFeedStatus, LiquidationUpdate
from nodes.live.config import build_node_config, load_live_settings
from nodes.live.liquidations import LiquidationStream, parse_force_order, stream_url, ws_base_url
from simulator import BinanceSimulator
from tests.live_support import RALLY_START_MS, SIM_ENV, LiveNode, live_node, wait_for, write_configs
from tests.simulator_support import btc_data, running_simulator

BTC_ID = "BTCUSDT-PERP.BINANCE"


class LiquidationRecorder(Actor):
    """A subscriber beside the strategy: what the stream publishes, in order."""

    def __init__(self, config: ActorConfig) -> None:
        super().__init__(config)
        self.updates: list[LiquidationUpdate] = []
        self.statuses: list[bool] = []

    def on_start(self) -> None:
        self.subscribe_data(DataType(LiquidationUpdate))
        self.subscribe_data(DataType(LiquidationFeedStatus))

    def on_data(self, data: Data) -> None:
        if isinstance(data, LiquidationUpdate):
            self.updates.append(data)
        elif isinstance(data, LiquidationFeedStatus):
            self.statuses.append(data.connected)


def _config_with_recorder(tmp_path: Path, sim: BinanceSimulator, strategy: dict[str, Any] | None = None) -> Path:
    config = write_configs(tmp_path, sim, ["BTCUSDT"], strategy=strategy)
    with config.open("a") as f:
        f.write(
            '\n[[actors]]\nactor_path = "tests.test_liquidation_stream:LiquidationRecorder"\n'
            'config_path = "nautilus_trader.common.config:ActorConfig"\n'
            'config.component_id = "LiquidationRecorder"\n'
        )
    return config


def _actor(node: LiveNode, kind: type) -> Any:
    return next(a for a in node.node.trader.actors() if isinstance(a, kind))


def _q(node: LiveNode) -> Any:
    return node.strategy.book._symbol(node.strategy.config.instrument_ids[0]).q


def _wait_subscribed(node: LiveNode, sim: BinanceSimulator) -> None:
    """The stream said it is connected, the strategy heard it, and the simulator has the subscription."""
    wait_for(lambda: node.call(lambda: _q(node).live), 30, "the strategy to hear the feed is live")
    wait_for(lambda: sim.call(lambda: sim.hub.wants("BTCUSDT", "forceOrder")), 10, "the forceOrder subscription")


def _publish_raw(sim: BinanceSimulator, payload: Any) -> None:
    # The simulator only injects well-formed events; a broken one goes through its own hub, as a server bug would.
    sim._call_async(lambda: sim.hub.publish("BTCUSDT", "forceOrder", payload))


def test_injected_liquidations_reach_a_subscriber_and_the_q_factor(shared_data: Path, tmp_path: Path) -> None:
    with running_simulator(btc_data(shared_data, bars=200, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        with live_node(_config_with_recorder(tmp_path, sim)) as node:
            sim.play()
            recorder = _actor(node, LiquidationRecorder)
            _wait_subscribed(node, sim)
            assert node.call(lambda: recorder.statuses) == [True]

            sent = sim.force_order("BTCUSDT", "SELL", "0.014")  # a long liquidated
            wait_for(lambda: node.call(lambda: len(recorder.updates)) == 1, 10, "the first liquidation")
            first = node.call(lambda: recorder.updates[0])
            q_after_long = wait_for(lambda: node.call(lambda: _q(node).value), 10, "Q after the first liquidation")

            big = sim.force_order("BTCUSDT", "BUY", "0.05")  # a larger short liquidated
            wait_for(lambda: node.call(lambda: len(recorder.updates)) == 2, 10, "the second liquidation")
            q_after_short = node.call(lambda: _q(node).value)
            assert node.node.trader.is_running and node.strategy.errors == 0
    assert (str(first.instrument_id), first.side) == (BTC_ID, "SELL")
    assert first.quantity == float(sent["o"]["q"]) == 0.014 and first.price == float(sent["o"]["ap"]) > 0
    assert first.ts_event == sent["o"]["T"] * 1_000_000
    assert q_after_long == 100.0  # only longs liquidated in the window
    long_n = 0.014 * float(sent["o"]["ap"])
    short_n = 0.05 * float(big["o"]["ap"])
    assert q_after_short is not None and q_after_short < 0
    assert math.isclose(q_after_short, 100 * (long_n - short_n) / (long_n + short_n), rel_tol=1e-9)


def test_malformed_message_is_skipped_and_a_dropped_stream_reconnects(shared_data: Path, tmp_path: Path) -> None:
    with running_simulator(btc_data(shared_data, bars=200, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        with live_node(_config_with_recorder(tmp_path, sim)) as node:
            sim.play()
            recorder = _actor(node, LiquidationRecorder)
            stream = _actor(node, LiquidationStream)
            _wait_subscribed(node, sim)

            _publish_raw(sim, {"e": "forceOrder", "E": 1, "o": {"s": "BTCUSDT", "S": "SIDEWAYS", "q": "1"}})
            _publish_raw(sim, {"e": "forceOrder", "E": 1, "o": {"s": "BTCUSDT", "S": "SELL", "q": "x", "ap": "1"}})
            sim.force_order("BTCUSDT", "SELL", "0.01")
            wait_for(lambda: node.call(lambda: len(recorder.updates)) == 1, 10, "the good liquidation")
            assert node.call(lambda: stream.skipped) == 2

            assert sim.drop_connections(market=True, user=False) >= 1
            wait_for(lambda: node.call(lambda: recorder.statuses) == [True, False, True], 30, "lost, then back")
            lost_then_back = node.call(lambda: stream.connects)
            _wait_subscribed(node, sim)
            sim.force_order("BTCUSDT", "BUY", "0.02")
            wait_for(lambda: node.call(lambda: len(recorder.updates)) == 2, 10, "a liquidation after reconnecting")
            q_value = node.call(lambda: _q(node).value)
            assert node.node.trader.is_running and node.strategy.errors == 0
    assert lost_then_back == 2
    assert [u.side for u in recorder.updates] == ["SELL", "BUY"]
    assert q_value is not None and q_value < 0  # the window still holds the SELL; the bigger BUY outweighs it


def test_without_live_market_streams_the_strategy_ignores_the_feed(shared_data: Path, tmp_path: Path) -> None:
    # As the backtest has no liquidations, the parity config turns the live-only inputs off: Q stays missing.
    with running_simulator(btc_data(shared_data, bars=200, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = _config_with_recorder(tmp_path, sim, strategy={"live_market_streams": False})
        with live_node(config) as node:
            sim.play()
            recorder = _actor(node, LiquidationRecorder)
            wait_for(lambda: sim.call(lambda: sim.hub.wants("BTCUSDT", "forceOrder")), 30, "the stream")
            sim.force_order("BTCUSDT", "SELL", "0.014")
            wait_for(lambda: node.call(lambda: len(recorder.updates)) == 1, 10, "the liquidation")
            q_live, q_value = node.call(lambda: (_q(node).live, _q(node).value))
    assert not q_live and q_value is None


def test_a_lost_feed_makes_q_not_available_and_a_quiet_live_one_zero() -> None:
    btc = InstrumentId.from_str(BTC_ID)
    book = FactorBook(FactorConfig(), [btc])
    q = book._symbol(btc).q
    book.set_liquidation_feed(True)
    q.advance(1)  # what every bar does
    assert q.value == 0.0
    book.set_liquidation_feed(False)
    assert q.value is None and q.reason


def test_parse_force_order_reads_raw_and_combined_frames_and_refuses_junk() -> None:
    event = {"e": "forceOrder", "E": 5, "o": {"s": "ethusdt", "S": "BUY", "q": "2.5", "p": "99", "ap": "100.5", "T": 4}}
    for text in (json.dumps(event), json.dumps({"stream": "ethusdt@forceOrder", "data": event})):
        order = parse_force_order(text)
        assert (order.symbol, order.side, order.quantity, order.price, order.ts_ms) == ("ETHUSDT", "BUY", 2.5, 100.5, 4)
    unfilled = {**event, "o": {**event["o"], "ap": "0"}}
    assert parse_force_order(json.dumps(unfilled)).price == 99.0  # no average yet: the order's price
    junk = [
        "not json",
        "[]",
        json.dumps({"result": None, "id": 1}),
        json.dumps({**event, "e": "aggTrade"}),
        json.dumps({**event, "o": {**event["o"], "S": "LONG"}}),
        json.dumps({**event, "o": {**event["o"], "q": "-1"}}),
        json.dumps({**event, "o": {**event["o"], "ap": "nan", "p": "nan"}}),
        json.dumps({"e": "forceOrder", "E": 5}),
    ]
    for text in junk:
        with pytest.raises((ValueError, KeyError, TypeError, AttributeError)):
            parse_force_order(text)


def test_node_config_points_the_stream_at_the_simulator_or_binance(shared_data: Path, tmp_path: Path) -> None:
    with running_simulator(btc_data(shared_data, bars=5)) as sim:
        settings = load_live_settings(write_configs(tmp_path, sim, ["BTCUSDT"]))
    actor = next(a for a in build_node_config(settings, SIM_ENV).actors if "LiquidationStream" in a.actor_path)
    assert actor.config == {"instrument_ids": [BTC_ID], "base_url_ws": sim.ws_url}
    assert stream_url(sim.ws_url, (BTC_ID,)) == f"{sim.ws_url}/stream?streams=btcusdt@forceOrder"
    assert ws_base_url("live", None) == ws_base_url("paper", None) == "wss://fstream.binance.com/market"
    assert ws_base_url("testnet", None) == "wss://stream.binancefuture.com"
