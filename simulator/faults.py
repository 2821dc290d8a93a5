"""Faults injected on command, so a client's error handling can be exercised against Binance-like failures.

Tests use the Python methods (through ``BinanceSimulator``); a trader uses the HTTP control endpoint
``POST /_sim/fault`` with the same names. One-shot faults (a rejected order, a throttled request) are consumed
by the requests they hit; timed faults (silence, a ban window, a latency spike) end by themselves.

Rejections can target one kind of order request, so a test can refuse an exit without refusing the entry
before it:

- ``entry``: a new order that is not reduce-only (``POST /fapi/v1/order``);
- ``exit``: a new reduce-only order, or a new conditional (algo) order that is reduce-only or closes the
  position (a stop or a take-profit);
- ``stop``: a new conditional stop (``STOP_MARKET`` / ``STOP``) on ``POST /fapi/v1/algoOrder``;
- ``target``: a new reduce-only order that is no market order (a take-profit ``LIMIT``) or a conditional
  take-profit (``TAKE_PROFIT`` / ``TAKE_PROFIT_MARKET``);
- ``stop_cancel``: the cancel of a conditional order (``DELETE /fapi/v1/algoOrder``): Binance's stops cannot
  be amended, so a client moves a stop by cancel and replace, and this rejects the move;
- ``any``: any new order, regular or conditional.
"""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from simulator import errors
from simulator.errors import BinanceApiError


def _server_busy() -> BinanceApiError:
    return BinanceApiError(503, -1008, "Server is currently overloaded with other requests. Please try again later.")


REJECT_CODES: dict[int, Callable[[], BinanceApiError]] = {
    -2019: errors.margin_insufficient,
    -1111: errors.precision_over_max,
    -2021: errors.immediately_trigger,
    -1008: _server_busy,
}
REJECT_TARGETS = ("any", "entry", "exit", "stop", "target", "stop_cancel")
ORDER_PATHS = frozenset({"/fapi/v1/order", "/fapi/v1/algoOrder"})
STOP_TYPES = frozenset({"STOP_MARKET", "STOP"})
TAKE_PROFIT_TYPES = frozenset({"TAKE_PROFIT", "TAKE_PROFIT_MARKET"})


def request_target(method: str, path: str, params: Mapping[str, str]) -> set[str]:
    """Which rejection targets an order request matches (empty for any other request)."""
    if method == "DELETE" and path == "/fapi/v1/algoOrder":
        return {"stop_cancel"}
    if method != "POST" or path not in ORDER_PATHS:
        return set()
    reduces = params.get("reduceOnly", "false").lower() == "true" or params.get("closePosition", "").lower() == "true"
    targets = {"any", "exit" if reduces else "entry"}
    kind = params.get("type", "")
    if path == "/fapi/v1/algoOrder":
        targets.add("exit")
        targets.discard("entry")
        if kind in STOP_TYPES:
            targets.add("stop")
        elif kind in TAKE_PROFIT_TYPES:
            targets.add("target")
    elif reduces and kind != "MARKET":
        targets.add("target")
    return targets


@dataclass
class Faults:
    latency_s: float = 0.0
    latency_until: float = 0.0  # monotonic end of a latency spike; 0: ``latency_s`` holds until cleared
    silence_market_until: float = 0.0  # monotonic time until which no market-stream message is sent
    silence_user_until: float = 0.0  # the same for the user data stream
    rejections: dict[str, list[int]] = field(default_factory=dict)  # target -> codes of the next requests
    throttle_requests: int = 0  # how many next requests get 429
    ban_requests: int = 0  # how many next requests get 418
    retry_after_s: int = 0
    ban_until_ms: int = 0  # the ban's end as the 418 states it
    ban_window_until: float = 0.0  # monotonic end of a ban window: every request until then gets 418
    hits: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, what) per request a fault hit

    def set_latency(self, seconds: float, duration_s: float | None = None) -> None:
        """Delay every REST answer by ``seconds``; for ``duration_s`` only (a spike), or until cleared."""
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        if duration_s is not None and duration_s <= 0:
            raise ValueError("a latency spike's duration must be > 0")
        self.latency_s = seconds
        self.latency_until = time.monotonic() + duration_s if duration_s is not None else 0.0

    def current_latency(self) -> float:
        if self.latency_until and time.monotonic() >= self.latency_until:
            self.latency_s, self.latency_until = 0.0, 0.0
        return self.latency_s

    def silence(self, seconds: float, market: bool = True, user: bool = True) -> None:
        """Send nothing on the chosen streams for ``seconds``: what would have been sent is lost."""
        if seconds < 0:
            raise ValueError("silence duration must be >= 0")
        if not market and not user:
            raise ValueError("silence needs the market streams, the user stream, or both")
        until = time.monotonic() + seconds
        if market:
            self.silence_market_until = until
        if user:
            self.silence_user_until = until

    def silenced(self, user: bool) -> bool:
        return time.monotonic() < (self.silence_user_until if user else self.silence_market_until)

    def reject_next(self, code: int, target: str = "any", count: int = 1) -> None:
        if code not in REJECT_CODES:
            raise ValueError(f"can reject orders with {sorted(REJECT_CODES)}, not {code}")
        if target not in REJECT_TARGETS:
            raise ValueError(f"rejection target must be one of {', '.join(REJECT_TARGETS)}, not {target!r}")
        if count < 1:
            raise ValueError("count must be >= 1")
        self.rejections.setdefault(target, []).extend([code] * count)

    def throttle(self, status: int, retry_after_s: int, count: int = 1) -> None:
        if status == 429:
            self.throttle_requests = count
        elif status == 418:
            self.ban_requests = count
            self.ban_until_ms = int((time.time() + retry_after_s) * 1000)
        else:
            raise ValueError(f"throttle status must be 429 or 418, not {status}")
        self.retry_after_s = retry_after_s

    def ban(self, seconds: float) -> None:
        """An IP ban window: every request for ``seconds`` gets 418 with the ban's end, as Binance does after
        repeated 429s."""
        if seconds <= 0:
            raise ValueError("a ban lasts > 0 seconds")
        self.ban_window_until = time.monotonic() + seconds
        self.ban_until_ms = int((time.time() + seconds) * 1000)

    def check_request(self, weight_limit: int) -> None:
        """Raise the 429/418 a request should get now, if one was ordered."""
        now = time.monotonic()
        left = self.ban_window_until - now
        if left > 0:
            self.hits.append((now, "418"))
            raise errors.ip_banned(self.ban_until_ms, max(1, round(left)))
        if self.ban_requests > 0:
            self.ban_requests -= 1
            self.hits.append((now, "418"))
            raise errors.ip_banned(self.ban_until_ms, self.retry_after_s)
        if self.throttle_requests > 0:
            self.throttle_requests -= 1
            self.hits.append((now, "429"))
            raise errors.too_many_requests(weight_limit, self.retry_after_s)

    def check_order(self, method: str, path: str, params: Mapping[str, str] | None = None) -> None:
        """Raise the rejection ordered for this kind of order request, if any (the most specific target first)."""
        targets = request_target(method, path, params or {})
        for target in ("stop_cancel", "stop", "target", "entry", "exit", "any"):
            codes = self.rejections.get(target)
            if target in targets and codes:
                code = codes.pop(0)
                self.hits.append((time.monotonic(), f"reject {target} {code}"))
                raise REJECT_CODES[code]()

    def clear(self) -> None:
        self.latency_s = self.latency_until = 0.0
        self.silence_market_until = self.silence_user_until = 0.0
        self.rejections.clear()
        self.throttle_requests = self.ban_requests = 0
        self.ban_window_until = 0.0


__all__ = ["Faults", "BinanceApiError", "REJECT_CODES", "REJECT_TARGETS", "request_target"]
