"""Faults injected on command, so a client's error handling can be exercised against Binance-like failures.

Tests use the Python methods (through ``BinanceSimulator``); a trader uses the HTTP control endpoint
``POST /_sim/fault`` with the same names. Each one-shot fault is consumed by the first request it hits.
"""

import time
from dataclasses import dataclass

from simulator import errors
from simulator.errors import BinanceApiError

REJECT_CODES = {-2019: errors.margin_insufficient, -1111: errors.precision_over_max}
ORDER_PATHS = frozenset({"/fapi/v1/order", "/fapi/v1/algoOrder"})


@dataclass
class Faults:
    latency_s: float = 0.0
    silence_until: float = 0.0  # monotonic time until which no WebSocket message is sent
    reject_next_order: int | None = None  # a key of REJECT_CODES
    throttle_requests: int = 0  # how many next requests get 429
    ban_requests: int = 0  # how many next requests get 418
    retry_after_s: int = 0
    ban_until_ms: int = 0

    def set_latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        self.latency_s = seconds

    def silence(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("silence duration must be >= 0")
        self.silence_until = time.monotonic() + seconds

    @property
    def silenced(self) -> bool:
        return time.monotonic() < self.silence_until

    def reject_next(self, code: int) -> None:
        if code not in REJECT_CODES:
            raise ValueError(f"can reject orders with {sorted(REJECT_CODES)}, not {code}")
        self.reject_next_order = code

    def throttle(self, status: int, retry_after_s: int, count: int = 1) -> None:
        if status == 429:
            self.throttle_requests = count
        elif status == 418:
            self.ban_requests = count
            self.ban_until_ms = int((time.time() + retry_after_s) * 1000)
        else:
            raise ValueError(f"throttle status must be 429 or 418, not {status}")
        self.retry_after_s = retry_after_s

    def check_request(self, weight_limit: int) -> None:
        """Raise the 429/418 a request should get now, if one was ordered."""
        if self.ban_requests > 0:
            self.ban_requests -= 1
            raise errors.ip_banned(self.ban_until_ms, self.retry_after_s)
        if self.throttle_requests > 0:
            self.throttle_requests -= 1
            raise errors.too_many_requests(weight_limit, self.retry_after_s)

    def check_order(self, method: str, path: str) -> None:
        if method == "POST" and path in ORDER_PATHS and self.reject_next_order is not None:
            code, self.reject_next_order = self.reject_next_order, None
            raise REJECT_CODES[code]()

    def clear(self) -> None:
        self.latency_s = 0.0
        self.silence_until = 0.0
        self.reject_next_order = None
        self.throttle_requests = self.ban_requests = 0


__all__ = ["Faults", "BinanceApiError"]
