"""Binance's request-weight limit, kept by the whole live process: every REST request waits for room first.

Binance counts the weight of every REST request per IP and per minute (2,400 on USDT-M futures, published in
``exchangeInfo``); past it, requests are refused with HTTP 429 and a ``Retry-After``, and a client that keeps
sending gets its IP banned (HTTP 418) for minutes to days. A node's start-up is a burst: Nautilus's connect
(leverage and margin type per symbol, account, positions, reconciliation), our checks and the warm-up klines
of every symbol. ``WeightBudget`` spends at most ``share`` (80 %) of the limit in any rolling minute, counting
what each request weighs (``simulator.limits.request_weight``, Binance's published table) and what Binance
says was used (the ``X-MBX-USED-WEIGHT-1M`` header of each answer, which also counts other processes on the
IP). A 429 makes every request wait for its ``Retry-After`` (or the end of the minute when the answer does not
say: Nautilus 1.231's HTTP client hands no response headers up, so for its requests the budget counts on its
own); a 418 stops every request until the ban's end (``IpBanned``, raised instead of sending). Orders and their
cancels are the exception: they go at once, out of the 20 % the budget keeps free, and only a ban stops them.

The budget is one per exchange address per process (``budget_for``): Binance counts per IP, and the
preflight, the recovery, the data and execution clients and the open-interest poller share it. Nautilus's
HTTP clients are metered per instance (``meter``), the installed package is left as it is.
"""

import asyncio
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from nautilus_trader.adapters.binance.http.error import BinanceClientError

from simulator.limits import klines_weight, request_weight

BINANCE_WEIGHT_LIMIT = 2400  # USDT-M futures, per IP per minute, until exchangeInfo says otherwise
DEFAULT_SHARE = 0.8  # of the limit per rolling minute: room for what the budget cannot see coming
WINDOW_S = 60.0
USED_WEIGHT_HEADER = "x-mbx-used-weight-1m"
_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")
# Requests a 429 may repeat once Retry-After has passed: reads and settings that are the same when repeated.
# A refused new order is not repeated here: the strategy decides what to send again.
_REPEATABLE_POSTS = frozenset({"/fapi/v1/leverage", "/fapi/v1/marginType", "/fapi/v1/listenKey"})
MAX_429_REPEATS = 3
# Placing, changing and cancelling orders, and the listen key of the user data stream (the node's only view of
# fills, cancels and expiries): never paced, only stopped by a ban (see ``WeightBudget.try_take``). A listen key
# held back until the minute resets after a 429 would leave the node blind to its fills for up to a minute.
ORDER_PATHS = frozenset(
    {
        "/fapi/v1/order",
        "/fapi/v1/batchOrders",
        "/fapi/v1/allOpenOrders",
        "/fapi/v1/algoOrder",
        "/fapi/v1/algoOpenOrders",
        "/fapi/v1/countdownCancelAll",
        "/fapi/v1/listenKey",
    }
)


class IpBanned(BinanceClientError):
    """Binance banned this IP (HTTP 418); no request is sent until ``until_ms``.

    A ``BinanceClientError`` with Binance's own 418 body (and its ``str()``), so Nautilus's clients handle a
    request refused here as the exchange's answer (an order is rejected with -1003 and the ban's end, which
    ``nodes/live/backoff.py`` reads); ``line`` is what a trader reads."""

    def __init__(self, until_ms: int) -> None:
        self.until_ms = until_ms
        message = {
            "code": -1003,
            "msg": f"Way too many requests; IP banned until {until_ms}. Please use the websocket for live updates.",
        }
        super().__init__(418, message, {})

    @property
    def line(self) -> str:
        until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.until_ms / 1000))
        return (
            f"Binance banned this IP until {until} (HTTP 418, too many requests); nothing more is sent to it. "
            "Start the node again after that time"
        )


def klines_limits(bars: int, max_limit: int = 1500) -> list[int]:
    """The ``limit`` of each klines request that together fetch ``bars`` bars for the least weight.

    Binance weighs a klines request by its limit (1 below 100, 2 below 500, 5 up to 1,000, 10 above): 499 bars
    cost 2 in one request, 500 cost 5, so 500 bars are cheapest as 499 + 1 (weight 3)."""
    if bars <= 0:
        return []
    # The cheapest cost of fetching n bars, by dynamic programming over the few limits worth trying: the
    # largest limit of each weight class, and n itself when it is smaller.
    classes = sorted({min(x, max_limit) for x in (99, 499, 1000, 1500)})
    best: dict[int, tuple[int, list[int]]] = {0: (0, [])}

    def cost(n: int) -> tuple[int, list[int]]:
        if n in best:
            return best[n]
        options = []
        for size in classes:
            take = min(size, n)
            rest_cost, rest = cost(n - take)
            options.append((klines_weight(take) + rest_cost, len(rest) + 1, [take, *rest]))
        weight, _, limits = min(options, key=lambda o: (o[0], o[1]))
        best[n] = (weight, limits)
        return best[n]

    for n in range(1, bars):  # bottom-up, so the recursion stays shallow
        cost(n)
    return cost(bars)[1]


def rolling_wait_s(sent: Any, now: float, weight: int, budget: int, window_s: float = WINDOW_S) -> float:
    """Seconds until ``weight`` more fits in ``budget`` over the rolling window, given what was ``sent``
    (time, weight) in time order; 0 when it fits now. A request heavier than the whole budget waits for an
    empty window."""
    recent = [(t, w) for t, w in sent if t > now - window_s]
    used = sum(w for _, w in recent)
    excess = used + weight - budget
    if excess <= 0 or not recent:
        return 0.0
    freed = 0
    for t, w in recent:
        freed += w
        if freed >= excess:
            return t + window_s - now
    return recent[-1][0] + window_s - now


def window_wait_s(used_this_window: int, now: float, weight: int, budget: int, window_s: float = WINDOW_S) -> float:
    """Seconds until ``weight`` more fits in Binance's own count of this wall-clock window (a minute, which
    resets at each minute's start); 0 when it fits now."""
    if used_this_window + weight <= budget or used_this_window == 0:
        return 0.0
    return math.floor(now / window_s) * window_s + window_s - now


def ban_end_ms(message: str, headers: Mapping[str, str], now_ms: int) -> int:
    """When a 418's ban ends: the time Binance names in the message, else now + ``Retry-After``."""
    banned = _BANNED_UNTIL.search(message)
    if banned:
        return int(banned.group(1))
    return now_ms + int(retry_after_s(headers, 120.0) * 1000)


def retry_after_s(headers: Mapping[str, str], default: float) -> float:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return default
    return default


def used_weight(headers: Mapping[str, str], name: str = USED_WEIGHT_HEADER) -> int | None:
    """The weight Binance says this IP used in the window, from the header ``name`` (case does not matter)."""
    for key, value in headers.items():
        if key.lower() == name:
            return int(value) if str(value).isdigit() else None
    return None


def used_weight_header(window_s: int) -> str:
    """Binance's header for a window: ``x-mbx-used-weight-1m`` for a minute, ``...-10s`` for 10 seconds."""
    return f"x-mbx-used-weight-{window_s // 60}m" if window_s >= 60 else f"x-mbx-used-weight-{window_s}s"


class WeightBudget:
    """At most ``share`` x ``limit`` weight per rolling minute, as counted here and as Binance reports it."""

    def __init__(
        self, limit: int = BINANCE_WEIGHT_LIMIT, share: float = DEFAULT_SHARE, now: Callable[[], float] = time.time
    ) -> None:
        self.limit = limit
        self.share = share
        self.window_s = int(WINDOW_S)
        self._header = USED_WEIGHT_HEADER
        self._now = now
        self._sent: deque[tuple[float, int]] = deque()
        self._window = -1
        self._window_used = 0  # Binance's count of this wall minute: its header, plus what we sent after it
        self._paused_until = 0.0  # after a 429: Retry-After
        self.banned_until_ms = 0
        self._lock = threading.Lock()  # the open-interest poller and the clients may run on other threads
        self.peak_rolling = 0  # the most weight in a rolling minute this budget let through
        self.peak_reported = 0  # the highest X-MBX-USED-WEIGHT-1M seen
        self.waited_s = 0.0
        self.refused_429 = 0

    @property
    def budget(self) -> int:
        return int(self.limit * self.share)

    def set_limit(self, limit: int, window_s: int = int(WINDOW_S)) -> None:
        """The limit the exchange publishes (``exchangeInfo`` rateLimits REQUEST_WEIGHT: per minute on Binance)."""
        if limit > 0 and window_s > 0:
            with self._lock:
                self.limit, self.window_s, self._header = limit, window_s, used_weight_header(window_s)

    def wait_s(self, weight: int, now: float | None = None) -> float:
        """How long a request of ``weight`` must wait now; raises ``IpBanned`` during a ban."""
        now = self._now() if now is None else now
        if self.banned_until_ms > now * 1000:
            raise IpBanned(self.banned_until_ms)
        window = self.window_s
        while self._sent and self._sent[0][0] <= now - window:
            self._sent.popleft()
        this_window = self._window_used if self._window == int(now // window) else 0
        budget = self.budget
        return max(
            self._paused_until - now,
            rolling_wait_s(self._sent, now, weight, budget, window),
            window_wait_s(this_window, now, weight, budget, window),
        )

    def try_take(self, weight: int, urgent: bool = False) -> float:
        """Take ``weight`` now if it fits (returns 0), else how long to wait before trying again. ``urgent``
        (orders and their cancels): taken at once, out of the margin the budget keeps below the limit; only a
        ban holds it back (protecting a position does not wait for the warm-up or a guessed Retry-After)."""
        with self._lock:
            now = self._now()
            if urgent:
                if self.banned_until_ms > now * 1000:
                    raise IpBanned(self.banned_until_ms)
            else:
                wait = self.wait_s(weight, now)
                if wait > 0:
                    return wait
            self._sent.append((now, weight))
            minute = int(now // self.window_s)
            if minute != self._window:
                self._window, self._window_used = minute, 0
            self._window_used += weight
            self.peak_rolling = max(self.peak_rolling, sum(w for _, w in self._sent))
            return 0.0

    async def acquire(self, weight: int, urgent: bool = False) -> None:
        """Wait until ``weight`` fits; raises ``IpBanned`` during a ban (nothing may be sent then)."""
        while (wait := self.try_take(weight, urgent)) > 0:
            self.waited_s += wait
            await asyncio.sleep(wait)

    def observe(self, status: int, headers: Mapping[str, str], message: str = "", sent_at: float | None = None) -> None:
        """What an answer says about the limit: the weight Binance counted this minute (unless the request was
        sent in the minute before, which the count is of), a 429's Retry-After, a 418's ban."""
        with self._lock:
            now = self._now()
            reported = used_weight(headers, self._header)
            if sent_at is not None and int(sent_at // self.window_s) != int(now // self.window_s):
                reported = None
            if reported is not None:
                self.peak_reported = max(self.peak_reported, reported)
                minute = int(now // self.window_s)
                if minute != self._window:
                    self._window, self._window_used = minute, 0
                self._window_used = max(self._window_used, reported)
            if status == 429:
                self.refused_429 += 1
                to_reset = self.window_s - now % self.window_s
                self._paused_until = max(self._paused_until, now + retry_after_s(headers, to_reset))
            elif status == 418:
                self.banned_until_ms = max(self.banned_until_ms, ban_end_ms(message, headers, int(now * 1000)))

    def banned(self) -> IpBanned | None:
        return IpBanned(self.banned_until_ms) if self.banned_until_ms > self._now() * 1000 else None


_BUDGETS: dict[str, WeightBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def budget_for(base_url: str) -> WeightBudget:
    """The process's budget for the exchange at ``base_url`` (scheme and host: Binance counts per IP)."""
    parts = urlsplit(base_url)
    key = f"{parts.scheme}://{parts.netloc}"
    with _BUDGETS_LOCK:
        return _BUDGETS.setdefault(key, WeightBudget())


def request_weight_of(method: str, url: str) -> tuple[str, int]:
    """(path, Binance weight) of a request to ``url`` with its parameters in the query string."""
    parts = urlsplit(url)
    return parts.path, request_weight(method, parts.path, dict(parse_qsl(parts.query)))


class MeteredHttpClient:
    """Nautilus's HTTP client behind a ``WeightBudget``: each request waits for room, each answer tells the
    budget what Binance counted; a 429 on a repeatable request is sent again after its Retry-After; a 418
    raises ``IpBanned`` (and so does every request during the ban, without being sent)."""

    def __init__(self, inner: Any, budget: WeightBudget, sign: Callable[[str], str] | None = None) -> None:
        self.inner = inner
        self.budget = budget
        self._sign = sign

    async def request(self, method: Any, url: str, headers: Any = None, body: Any = None, keys: Any = None) -> Any:
        name = str(method).rsplit(".", 1)[-1].upper()
        path, weight = request_weight_of(name, url)
        urgent = name != "GET" and path in ORDER_PATHS
        for attempt in range(MAX_429_REPEATS + 1):
            waited = self.budget.waited_s
            await self.budget.acquire(weight, urgent)
            if attempt or self.budget.waited_s > waited:
                url = self._fresh_timestamp(url)
            sent_at = time.time()
            response = await self.inner.request(method, url, headers=headers, body=body, keys=keys)
            status = response.status
            if status not in (418, 429):
                self.budget.observe(status, dict(response.headers), sent_at=sent_at)
                return response
            message = bytes(response.body).decode(errors="replace")
            self.budget.observe(status, dict(response.headers), message, sent_at)
            if status == 418:
                raise IpBanned(self.budget.banned_until_ms)
            if not (name == "GET" or path in _REPEATABLE_POSTS) or attempt == MAX_429_REPEATS:
                return response
        return response

    def _fresh_timestamp(self, url: str) -> str:
        """``url`` signed again with the time now: a signed request that waited for room (or for a 429's
        Retry-After) would otherwise reach Binance outside its recvWindow (-1021)."""
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if self._sign is None or not any(k == "signature" for k, _ in query):
            return url
        params = [(k, str(int(time.time() * 1000)) if k == "timestamp" else v) for k, v in query if k != "signature"]
        signed = urlencode(params)
        return urlunsplit(parts._replace(query=f"{signed}&{urlencode({'signature': self._sign(signed)})}"))


def meter(http_client: Any) -> WeightBudget:
    """Put Nautilus's ``BinanceHttpClient`` behind its exchange's budget (once per client); returns the budget."""
    budget = budget_for(http_client.base_url)
    if not isinstance(http_client._client, MeteredHttpClient):
        http_client._client = MeteredHttpClient(http_client._client, budget, http_client._get_sign)
    return budget
