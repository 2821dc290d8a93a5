"""Stream gaps: noticed, reported, and followed by a check of the account against the exchange.

Binance's mark-price stream sends every symbol's mark every 3 seconds (the pace the node subscribes), so market data
that stops for several seconds is a gap: the connection hangs or messages are lost (a silence), and user-stream
messages (fills) may be lost with them, which no reconnect would reveal. ``StreamGapWatch`` watches the node's
market data on the bus; when data comes back after a gap it publishes ``NodeEvent("RECONNECTED")`` and asks the
execution client for an immediate resync (the mass status Nautilus itself runs after a user-stream reconnect),
instead of waiting for the next periodic position check. A user-stream reconnect or a new listen key (drop, expiry)
is reported the same way by ``watch_user_stream``, after Nautilus's own resync. Repairs that follow are the
strategy's ``NodeEvent("RECONCILED")``.

The live node (``nodes/live/config.py``) has the watch read its data client's count of the market-stream messages
(``nodes/live/market_streams.py``) at each second's tick instead of a handler on every mark and bar: 400 handler
calls fewer in each minute's close burst of 200 symbols, for an end of a gap seen up to a second later. (Not the
data engine's count: it also counts REST replies, such as the warm-up bars, which are no sign of the streams.)

Nautilus 1.231's Binance client makes one attempt at a new listen key after ``listenKeyExpired`` (or after the
keep-alive fails); when that request is refused (a 418 ban window, a 429, -1008, a timeout) it logs "user data
stream is NOT active" and never tries again: the node would trade on, blind to fills, cancels and expiries.
``watch_user_stream`` tries again with the waits of ``strategies.retry``, quickly at first and then every 30 s for
as long as it takes, and publishes ``NodeEvent("ERROR")`` once the quick tries are spent (and every few minutes
after) so the trader knows the node no longer sees the account. A key that expired unseen (its
``listenKeyExpired`` lost) is found by ``ListenKeyProbe`` (``nodes/live/listen_key_probe.py``), which
``watch_user_stream`` runs while the client is connected; its renewal takes the same path.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig, PositiveFloat
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.model.data import DataType

from nodes.live.listen_key_probe import ListenKeyProbe
from strategies.events import NodeEvent
from strategies.retry import DEFAULT_RETRY, RetryPolicy

RESYNC_ENDPOINT = "ats.exchange.resync"
_TOPICS = ("data.BinanceFuturesMarkPriceUpdate.*", "data.mark_prices.*", "data.bars.*")
_TIMER = "ats-stream-gap-watch"


def publish_node_event(msgbus: Any, clock: Any, kind: str, mode: str, message: str) -> None:
    now = clock.timestamp_ns()
    event = NodeEvent(kind=kind, mode=mode, message=message, ts_event=now, ts_init=now)
    msgbus.publish(topic=f"data.{DataType(NodeEvent).topic}", msg=event)


@dataclass
class GapDetector:
    """Market data seen at times (seconds); a pause longer than ``gap_s`` followed by data again is a gap."""

    gap_s: float
    last_seen: float | None = None
    in_gap_since: float | None = None
    last_count: int | None = None

    def counted(self, now: float, count: int) -> tuple[bool, float | None]:
        """A clock tick with a counter of the data handled so far: (a gap begins, the length of the gap that ended).
        The first call only takes the count."""
        last, self.last_count = self.last_count, count
        if last is None:
            return False, None
        if count != last:
            return False, self.seen(now)
        return self.tick(now), None

    def seen(self, now: float) -> float | None:
        """Data arrived at ``now``: the length of the gap it ends, if it ends one."""
        ended = None
        if self.in_gap_since is not None or (self.last_seen is not None and now - self.last_seen > self.gap_s):
            ended = now - (self.last_seen if self.last_seen is not None else now)
        self.last_seen, self.in_gap_since = now, None
        return ended

    def tick(self, now: float) -> bool:
        """A clock tick: True the first time the data has been quiet for longer than ``gap_s``."""
        if self.last_seen is None or self.in_gap_since is not None or now - self.last_seen <= self.gap_s:
            return False
        self.in_gap_since = now
        return True


class StreamGapWatchConfig(ActorConfig, frozen=True):
    gap_s: PositiveFloat = 10.0  # marks come every 3 s: ten quiet seconds are a gap (a busy start is not)
    mode: str = "live"


class StreamGapWatch(Actor):
    def __init__(self, config: StreamGapWatchConfig) -> None:
        super().__init__(config)
        self._mode = config.mode
        self.gaps = GapDetector(config.gap_s)
        self.gaps_seen = 0
        self._count: Callable[[], int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def count_from(self, count: Callable[[], int]) -> None:
        """Before start: tell data from a counter of the data handled, read at each tick, instead of a handler on
        every market message."""
        self._count = count

    def on_start(self) -> None:
        if self._count is None:
            for topic in _TOPICS:
                self.msgbus.subscribe(topic=topic, handler=self._on_market_data)
        else:
            self.gaps.counted(time.monotonic(), self._count())
            self._loop = asyncio.get_running_loop()
        self.clock.set_timer(_TIMER, timedelta(seconds=1), callback=self._on_tick)

    def on_stop(self) -> None:
        if self._count is None:
            for topic in _TOPICS:
                self.msgbus.unsubscribe(topic=topic, handler=self._on_market_data)
        if _TIMER in self.clock.timer_names:
            self.clock.cancel_timer(_TIMER)

    def _on_tick(self, _event: TimeEvent) -> None:
        # Live timers fire on Nautilus's timer thread: what may publish on the bus runs on the event loop.
        if self._loop is None:
            self._check()
        else:
            self._loop.call_soon_threadsafe(self._check)

    def _check(self) -> None:
        if not self.is_running:
            return
        now = time.monotonic()
        if self._count is None:
            began, ended = self.gaps.tick(now), None
        else:
            began, ended = self.gaps.counted(now, self._count())
        if began:
            self.log.warning(f"no market data for {self.gaps.gap_s:.0f} s: a stream gap")
        if ended is not None:
            self._gap_ended(ended)

    def _on_market_data(self, _data: object) -> None:
        gap = self.gaps.seen(time.monotonic())
        if gap is not None:
            self._gap_ended(gap)

    def _gap_ended(self, gap: float) -> None:
        try:
            self.gaps_seen += 1
            message = f"market data back after {gap:.0f} s without any; checking the account against the exchange"
            self.log.warning(message)
            publish_node_event(self.msgbus, self.clock, "RECONNECTED", self._mode, message)
            if RESYNC_ENDPOINT in self.msgbus.endpoints():
                self.msgbus.send(endpoint=RESYNC_ENDPOINT, msg=f"market data gap of {gap:.0f} s")
        except Exception as e:  # an exception here would stop the live node
            self.log.exception("stream gap handling failed", e)


def watch_user_stream(client: Any, mode: str, min_interval_s: float = 30.0, retry: RetryPolicy = DEFAULT_RETRY) -> None:
    """On a Binance execution client: report each user-stream reconnect after Nautilus's resync, serve
    ``RESYNC_ENDPOINT`` (at most one resync per ``min_interval_s``; its weight is that of a start-up
    reconciliation), try a refused listen-key renewal again until the stream is back, and probe the listen key
    while connected."""
    ws = client._ws_client
    resync_after_resubscribe = ws._on_resubscribe
    resubscribe_once = ws._resubscribe_locked
    last = [0.0]
    failures = [0]

    async def resubscribe() -> bool:
        done = await resubscribe_once()
        if done:
            failures[0] = 0
        if done or not ws._is_recovery_failed:
            return done  # back, or left to the client's own reconnect
        ws._is_recovery_failed = False  # the client's "gave up for good": not ours
        if not client.is_connected:
            return False  # the node is stopping
        failures[0] += 1
        delay = retry.delay_s(failures[0])
        client._log.warning(f"user data stream not back ({failures[0]} tries); trying again in {delay:.1f} s")
        if retry.alert_due(failures[0]):
            message = (
                f"the user data stream is down ({failures[0]} tries to renew the listen key refused): the node does "
                "not see fills, cancels or expiries; the exits stay on the exchange. Still trying every "
                f"{retry.slow_s:.0f} s; if it persists, check the API key and the network and restart `ats live`."
            )
            client._log.error(message)
            publish_node_event(client._msgbus, client._clock, "ERROR", mode, message)
        client._loop.call_later(delay, lambda: client._loop.create_task(ws._resubscribe()))
        return False

    async def resubscribed() -> None:
        await resync_after_resubscribe()
        last[0] = time.monotonic()
        message = "user data stream resubscribed; the account was checked against the exchange"
        publish_node_event(client._msgbus, client._clock, "RECONNECTED", mode, message)

    async def resync(reason: str) -> None:
        client._log.warning(f"resync with the exchange: {reason}")
        await resync_after_resubscribe()

    def on_request(reason: object) -> None:
        if time.monotonic() - last[0] < min_interval_s:
            return
        last[0] = time.monotonic()
        asyncio.ensure_future(resync(str(reason)), loop=client._loop)

    probe = ListenKeyProbe(client)
    connect, disconnect = client._connect, client._disconnect

    async def connect_and_probe() -> None:
        await connect()
        probe.start()

    async def stop_probe_and_disconnect() -> None:
        probe.stop()
        await disconnect()

    ws._on_resubscribe = resubscribed
    ws._resubscribe_locked = resubscribe
    client._connect = connect_and_probe
    client._disconnect = stop_probe_and_disconnect
    client._msgbus.register(endpoint=RESYNC_ENDPOINT, handler=on_request)
