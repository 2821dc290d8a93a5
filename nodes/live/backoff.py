"""Back off when Binance says the request rate is too high (HTTP 429) or bans the IP (HTTP 418).

Nautilus's Binance client reports either as a rejected order (code -1003) and goes on; sending more orders
during a ban makes Binance ban longer. This actor sees the rejection on the message bus, pauses the strategy's
new entries through its control endpoint until the limit resets (a 418 names the time; a 429 waits
``pause_after_429_s``), publishes a ``NodeEvent`` so the trader hears about it, then resumes. Open positions
stay managed meanwhile: their stops are already on the exchange.
"""

import re

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.model.data import DataType
from nautilus_trader.model.events import OrderRejected

from strategies.control import CONTROL_ENDPOINT, ControlRequest
from strategies.events import NodeEvent

RATE_LIMIT_CODE = "-1003"
_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")
_TIMER = "ats-rate-limit-resume"


class RateLimitBackoffConfig(ActorConfig, frozen=True):
    pause_after_429_s: float = 60.0  # Binance counts weight per minute: a minute clears any 429
    mode: str = "live"


def backoff_until_ms(reason: str, now_ms: int, pause_after_429_s: float) -> int | None:
    """When new orders may be sent again after a rejection with ``reason``; None if it is no rate limit."""
    if RATE_LIMIT_CODE not in reason:
        return None
    banned = _BANNED_UNTIL.search(reason)
    if banned:
        return max(int(banned.group(1)), now_ms)
    return now_ms + int(pause_after_429_s * 1000)


class RateLimitBackoff(Actor):
    def __init__(self, config: RateLimitBackoffConfig) -> None:
        super().__init__(config)
        self._pause_after_429_s = config.pause_after_429_s
        self._mode = config.mode
        self.until_ms = 0
        self.backoffs = 0
        self._we_paused = False  # resume only a pause we made, never the trader's own /pause

    def on_start(self) -> None:
        self.msgbus.subscribe(topic="events.order.*", handler=self._on_order_event)

    def on_stop(self) -> None:
        self.msgbus.unsubscribe(topic="events.order.*", handler=self._on_order_event)

    def _on_order_event(self, event: object) -> None:
        try:
            if isinstance(event, OrderRejected):
                self._on_rejected(event)
        except Exception as e:  # an exception here would stop the live node
            self.log.exception("rate-limit backoff failed", e)

    def _on_rejected(self, event: OrderRejected) -> None:
        now_ms = self.clock.timestamp_ns() // 1_000_000
        until = backoff_until_ms(str(event.reason), now_ms, self._pause_after_429_s)
        if until is None or until <= self.until_ms:
            return
        self.until_ms = until
        self.backoffs += 1
        wait_s = (until - now_ms) / 1000
        message = f"Binance rate limit ({event.reason}); new entries paused for {wait_s:.0f} s"
        self.log.warning(message)
        now = self.clock.timestamp_ns()
        event = NodeEvent(kind="ERROR", mode=self._mode, message=message, ts_event=now, ts_init=now)
        self.publish_data(DataType(NodeEvent), event)
        if not self._we_paused and self._control("status").get("paused") is False:
            self._we_paused = bool(self._control("pause").get("paused"))
        if _TIMER in self.clock.timer_names:
            self.clock.cancel_timer(_TIMER)
        self.clock.set_time_alert_ns(name=_TIMER, alert_time_ns=until * 1_000_000, callback=self._resume)

    def _resume(self, _event: TimeEvent) -> None:
        try:
            if self._we_paused:
                self._control("resume")
                self._we_paused = False
                self.log.info("rate-limit backoff over: new entries allowed again")
        except Exception as e:
            self.log.exception("rate-limit resume failed", e)

    def _control(self, command: str) -> dict:
        answers: list[dict] = []
        if CONTROL_ENDPOINT in self.msgbus.endpoints():
            self.msgbus.send(
                endpoint=CONTROL_ENDPOINT,
                msg=ControlRequest(command, reply=answers.append, source="rate-limit-backoff"),
            )
        return answers[0] if answers else {}
