"""Request weights, the per-minute weight counter behind ``X-MBX-USED-WEIGHT-1M``, and the request log.

Weights follow Binance's USDT-M futures documentation; endpoints whose weight depends on a parameter
(``limit`` of depth and klines, with or without ``symbol``) are computed from it.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass

_FIXED: dict[tuple[str, str], int] = {
    ("GET", "/fapi/v1/ping"): 1,
    ("GET", "/fapi/v1/time"): 1,
    ("GET", "/fapi/v1/exchangeInfo"): 1,
    ("GET", "/fapi/v2/account"): 5,
    ("GET", "/fapi/v3/account"): 5,
    ("GET", "/fapi/v2/balance"): 5,
    ("GET", "/fapi/v3/balance"): 5,
    ("GET", "/fapi/v2/positionRisk"): 5,
    ("GET", "/fapi/v3/positionRisk"): 5,
    ("POST", "/fapi/v1/leverage"): 1,
    ("POST", "/fapi/v1/marginType"): 1,
    ("GET", "/fapi/v1/symbolConfig"): 5,
    ("GET", "/fapi/v1/positionSide/dual"): 30,
    ("POST", "/fapi/v1/positionSide/dual"): 1,
    ("POST", "/fapi/v1/listenKey"): 1,
    ("PUT", "/fapi/v1/listenKey"): 1,
    ("DELETE", "/fapi/v1/listenKey"): 1,
    ("POST", "/fapi/v1/order"): 0,
    ("PUT", "/fapi/v1/order"): 1,
    ("GET", "/fapi/v1/order"): 1,
    ("DELETE", "/fapi/v1/order"): 1,
    ("DELETE", "/fapi/v1/allOpenOrders"): 1,
    ("DELETE", "/fapi/v1/batchOrders"): 1,
    ("GET", "/fapi/v1/allOrders"): 5,
    ("GET", "/fapi/v1/userTrades"): 5,
    ("GET", "/fapi/v1/income"): 30,
    ("POST", "/fapi/v1/algoOrder"): 0,
    ("GET", "/fapi/v1/algoOrder"): 1,
    ("DELETE", "/fapi/v1/algoOrder"): 1,
    ("DELETE", "/fapi/v1/algoOpenOrders"): 1,
    ("GET", "/fapi/v1/allAlgoOrders"): 5,
    ("GET", "/fapi/v1/openInterest"): 1,
    ("GET", "/fapi/v1/commissionRate"): 20,
    ("GET", "/fapi/v1/aggTrades"): 20,
}


def request_weight(method: str, path: str, params: Mapping[str, str]) -> int:
    fixed = _FIXED.get((method, path))
    if fixed is not None:
        return fixed
    has_symbol = bool(params.get("symbol"))
    if path in ("/fapi/v1/openOrders", "/fapi/v1/openAlgoOrders"):
        return 1 if has_symbol else 40
    if path == "/fapi/v1/premiumIndex":
        return 1 if has_symbol else 10
    limit = int(params.get("limit") or 0) if (params.get("limit") or "0").isdigit() else 0
    if path == "/fapi/v1/depth":
        limit = limit or 500
        return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20
    if path == "/fapi/v1/klines":
        limit = limit or 500
        return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
    return 1


class WeightCounter:
    """Weight used in the current wall-clock minute, reset at each minute boundary like Binance's."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._minute = -1
        self.used = 0

    def _roll(self, now: float) -> None:
        minute = int(now // 60)
        if minute != self._minute:
            self._minute = minute
            self.used = 0

    def add(self, weight: int, now: float | None = None) -> int:
        now = time.time() if now is None else now
        self._roll(now)
        self.used += weight
        return self.used

    def current(self, now: float | None = None) -> int:
        self._roll(time.time() if now is None else now)
        return self.used

    def seconds_to_reset(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        return max(1, int(60 - now % 60))


class OrderCounter:
    """New orders per 10 s and per minute (Binance's ORDERS limits: 300 / 10 s and 1200 / min by default)."""

    def __init__(self, per_10s: int = 300, per_minute: int = 1200) -> None:
        self.per_10s = per_10s
        self.per_minute = per_minute
        self._windows: dict[int, tuple[int, int]] = {10: (-1, 0), 60: (-1, 0)}

    def add(self, now: float | None = None) -> tuple[int, int]:
        """Count one new order; returns (count in this 10 s window, count in this minute)."""
        now = time.time() if now is None else now
        counts = []
        for seconds in (10, 60):
            window, count = self._windows[seconds]
            current = int(now // seconds)
            count = count + 1 if current == window else 1
            self._windows[seconds] = (current, count)
            counts.append(count)
        return counts[0], counts[1]


@dataclass(frozen=True)
class LoggedRequest:
    time_ms: int
    method: str
    path: str
    weight: int
    status: int
    used_weight_1m: int
    code: int | None = None  # Binance error code for error answers
    symbol: str = ""  # the request's symbol parameter, if any
    order: str = ""  # for new orders: side, type, quantity, "reduce-only" (what a post-mortem needs)


class RequestLog:
    """Every REST request the simulator answered, so tests and benchmarks can count what a client spent."""

    def __init__(self) -> None:
        self.entries: list[LoggedRequest] = []

    def add(self, entry: LoggedRequest) -> None:
        self.entries.append(entry)

    def total_weight(self) -> int:
        return sum(e.weight for e in self.entries)

    def count(self, path: str | None = None, method: str | None = None) -> int:
        return sum(
            1 for e in self.entries if (path is None or e.path == path) and (method is None or e.method == method)
        )

    def as_dicts(self) -> list[dict[str, object]]:
        return [e.__dict__.copy() for e in self.entries]
