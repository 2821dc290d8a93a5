"""The notifier in a live TradingNode (no exchange clients needed) against the fake Telegram Bot API.

Here the node's own asyncio loop runs: commands must hop from the Telegram thread onto it, and the loop's
responsiveness is measured directly with a heartbeat while Telegram is down and messages pile up.
"""

import asyncio
import threading
import time

import pytest
from nautilus_trader.config import LoggingConfig, StrategyConfig, TradingNodeConfig
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import DataType
from nautilus_trader.trading.strategy import Strategy

from nodes.telegram import TelegramNotifier, TelegramNotifierConfig
from strategies.control import CONTROL_ENDPOINT, ControlRequest
from strategies.events import NodeEvent
from tests.fake_telegram import FakeTelegram

TOKEN = "5550001:AAE-live-node-secret"
TRADER, STRANGER = 31337, 999
BURST = 150  # messages produced while Telegram is down (within the queue bound of 200)


class ControlledStrategy(Strategy):
    """Answers pause/resume on the control endpoint and remembers which thread it was called on."""

    def __init__(self) -> None:
        super().__init__(StrategyConfig())
        self.paused = False
        self.control_threads: list[int] = []

    def on_start(self) -> None:
        self.msgbus.register(endpoint=CONTROL_ENDPOINT, handler=self._on_control)
        self.publish(NodeEvent(kind="STARTED", mode="live"))

    def on_stop(self) -> None:
        self.msgbus.deregister(endpoint=CONTROL_ENDPOINT, handler=self._on_control)

    def publish(self, event: NodeEvent) -> None:
        now = self.clock.timestamp_ns()
        event._ts_event = event._ts_init = now
        self.publish_data(DataType(NodeEvent), event)

    def _on_control(self, request: ControlRequest) -> None:
        self.control_threads.append(threading.get_ident())
        if request.command in ("pause", "resume"):
            self.paused = request.command == "pause"
            request.reply({"paused": self.paused})
        else:
            request.reply({"error": f"{request.command} not supported here"})


async def until(predicate, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_live_node_commands_on_the_loop_thread_and_loop_never_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", str(TRADER))
    lags: list[float] = []
    # A fresh current loop: an earlier test's asyncio.run may have left none set in this thread.
    asyncio.set_event_loop(asyncio.new_event_loop())
    with FakeTelegram(TOKEN) as tg:
        node = TradingNode(TradingNodeConfig(
            trader_id="LIVE-001", logging=LoggingConfig(log_level="ERROR"),
            timeout_disconnection=0.5, timeout_post_stop=0.5, timeout_shutdown=0.5,
        ))
        strategy = ControlledStrategy()
        notifier = TelegramNotifier(TelegramNotifierConfig(
            mode="live", language="en", base_url=tg.base_url, poll_timeout_s=1,
            backoff_initial_s=0.05, backoff_max_s=0.2, request_timeout_s=2.0,
        ))
        node.trader.add_strategy(strategy)
        node.trader.add_actor(notifier)
        node.build()
        loop = node.get_event_loop()
        loop_thread: list[int] = []

        async def heartbeat(stop: asyncio.Event) -> None:
            while not stop.is_set():
                started = loop.time()
                await asyncio.sleep(0.005)
                lags.append(loop.time() - started - 0.005)

        async def scenario() -> None:
            loop_thread.append(threading.get_ident())
            await until(lambda: tg.texts(TRADER) == ["🚀 Node started (live)"])
            tg.push_message(STRANGER, "/pause")
            tg.push_message(TRADER, "/pause")
            await until(lambda: strategy.paused)
            await until(lambda: len(tg.texts(TRADER)) == 2)

            tg.go_down()
            stop = asyncio.Event()
            beat = asyncio.create_task(heartbeat(stop))
            for n in range(BURST):
                strategy.publish(NodeEvent(kind="ERROR", mode="live", message=f"burst {n}"))
                await asyncio.sleep(0.002)
            await asyncio.sleep(0.5)  # the sender keeps failing meanwhile
            stop.set()
            await beat
            tg.come_back()
            await until(lambda: len(tg.texts(TRADER)) == 2 + BURST)
            await node.stop_async()

        loop.run_until_complete(asyncio.gather(node.run_async(), scenario()))
        leftovers = [t for t in asyncio.all_tasks(loop) if not t.done()]  # Nautilus's executor workers
        for task in leftovers:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        node.dispose()
        texts = tg.texts(TRADER)
        stranger_texts = tg.texts(STRANGER)

    assert strategy.control_threads == loop_thread  # one command (the trader's), run on the node's loop thread
    assert stranger_texts == []
    assert texts[1] == "⏸ New entries paused (open positions are still managed)"
    assert texts[2:] == [f"❌ Node error (live): burst {n}" for n in range(BURST)]
    assert len(lags) > 50
    print(f"node loop heartbeat during the outage: {len(lags)} beats, max lag {max(lags) * 1000:.2f} ms")
    assert max(lags) < 0.25, f"the node's loop stalled for {max(lags) * 1000:.1f} ms"  # generous: loaded CI
