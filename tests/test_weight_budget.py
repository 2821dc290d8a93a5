"""The pacing math of Binance's request-weight budget: cheapest klines requests, rolling and fixed windows,
429 / 418 answers (``nodes/live/weight_budget.py``, ``nodes/live/paced_clients.py``)."""

import asyncio
import time

import pytest

from nodes.live.paced_clients import kline_window
from nodes.live.weight_budget import (
    IpBanned,
    WeightBudget,
    ban_end_ms,
    budget_for,
    klines_limits,
    request_weight_of,
    rolling_wait_s,
    used_weight,
    window_wait_s,
)
from simulator.limits import klines_weight


def weight_of(limits: list[int]) -> int:
    return sum(klines_weight(n) for n in limits)


@pytest.mark.parametrize(
    ("bars", "weight", "requests"),
    [(0, 0, 0), (1, 1, 1), (99, 1, 1), (100, 2, 1), (121, 2, 1), (499, 2, 1), (500, 3, 2), (501, 3, 2),
     (1000, 5, 1), (1001, 5, 3), (1500, 7, 4)],
)  # fmt: skip
def test_klines_limits_fetch_every_bar_for_the_least_weight(bars: int, weight: int, requests: int) -> None:
    limits = klines_limits(bars)
    assert sum(limits) == bars
    assert weight_of(limits) == weight
    assert len(limits) == requests
    # No split of the same bars costs less (brute force over two requests).
    assert all(weight_of([a, bars - a]) >= weight for a in range(1, bars))


def test_the_500_bar_warm_up_costs_3_not_the_15_of_three_unlimited_requests() -> None:
    assert weight_of(klines_limits(501)) == 3  # 500 closed bars and the one forming
    assert 3 * klines_weight(500) == 15  # what asking without a limit until an empty answer cost


def test_kline_window_counts_the_bars_from_the_start_to_the_one_forming() -> None:
    minute = 60_000
    now = 1_000 * minute + 30_000  # half-way through a bar
    assert kline_window(minute, now, None, now - 120 * minute, None) == (881 * minute, 120)
    assert kline_window(minute, now, None, 881 * minute, None) == (881 * minute, 120)  # start on an open time
    assert kline_window(minute, now, 50, now - 120 * minute, None) == (881 * minute, 50)
    assert kline_window(minute, now, None, None, None) == (501 * minute, 500)  # Binance's default: the last 500
    assert kline_window(minute, now, None, 900 * minute, 909 * minute) == (900 * minute, 10)
    assert kline_window(minute, now, None, now + minute, None)[1] == 0  # nothing can exist yet


def test_rolling_wait_frees_the_oldest_weight_first() -> None:
    sent = [(0.0, 50), (10.0, 30), (20.0, 20)]
    assert rolling_wait_s(sent, 30.0, 0, 100) == 0.0
    assert rolling_wait_s(sent, 30.0, 10, 100) == 30.0  # the first 50 leaves the window at 60 s
    assert rolling_wait_s(sent, 30.0, 60, 100) == 40.0  # 50 + 30 must leave: at 70 s
    assert rolling_wait_s(sent, 65.0, 60, 100) == 5.0
    assert rolling_wait_s(sent, 30.0, 500, 100) == 50.0  # heavier than the budget: an empty window
    assert rolling_wait_s(sent, 10.0, 20, 100, window_s=5.0) == 0.0


def test_window_wait_is_until_the_next_wall_clock_window() -> None:
    assert window_wait_s(90, 125.0, 10, 100) == 0.0
    assert window_wait_s(95, 125.0, 10, 100) == 55.0
    assert window_wait_s(95, 125.0, 10, 100, window_s=10) == 5.0


def test_budget_paces_to_80_percent_of_the_published_limit() -> None:
    clock = [1_000.0]
    budget = WeightBudget(now=lambda: clock[0])
    budget.set_limit(1000, 60)
    assert budget.budget == 800
    for _ in range(80):
        assert budget.try_take(10) == 0.0
    # Binance's wall minute resets at 1,020, but the rolling minute holds all 800 until 1,060.
    assert budget.try_take(10) == pytest.approx(60.0)
    clock[0] = 1_020.0
    assert budget.try_take(10) == pytest.approx(40.0)  # a new wall minute, but the rolling minute is still full
    clock[0] = 1_060.5
    assert budget.try_take(10) == 0.0
    assert budget.peak_rolling == 800
    assert budget.try_take(1, urgent=True) == 0.0  # a cancel goes at once, out of the 20 % kept free


def test_budget_believes_binance_when_it_counted_more() -> None:
    clock = [120.0]
    budget = WeightBudget(now=lambda: clock[0])
    budget.set_limit(1000, 60)
    assert budget.try_take(5) == 0.0
    budget.observe(200, {"X-MBX-USED-WEIGHT-1M": "798"})  # another process on the same IP spent the rest
    assert budget.try_take(5) == pytest.approx(60.0)  # until the wall minute resets
    assert budget.peak_reported == 798
    clock[0] = 180.2  # an answer in the next minute to a request sent in this one counts the minute before
    budget.observe(200, {"X-MBX-USED-WEIGHT-1M": "790"}, sent_at=179.9)
    assert budget.try_take(5) == 0.0


def test_a_429_waits_for_retry_after_and_a_418_stops_every_request() -> None:
    clock = [100.0]
    budget = WeightBudget(now=lambda: clock[0])
    budget.observe(429, {"Retry-After": "7"})
    assert budget.try_take(1) == pytest.approx(7.0)
    assert budget.try_take(1, urgent=True) == 0.0  # an order or a cancel: not held back by a 429
    budget.observe(429, {})  # no Retry-After (Nautilus's client shows no headers): until the minute's end
    assert budget.try_take(1) == pytest.approx(20.0)
    clock[0] = 120.5
    assert budget.try_take(1) == 0.0
    message = '{"code":-1003,"msg":"Way too many requests; IP banned until 1700000000000. Please use..."}'
    budget.observe(418, {"Retry-After": "30"}, message)
    with pytest.raises(IpBanned) as banned:
        budget.try_take(1, urgent=True)  # during a ban nothing is sent, orders included
    assert banned.value.line.startswith("Binance banned this IP until 2023-11-14 22:13:20 UTC (HTTP 418")
    # Nautilus's clients see Binance's own answer: an order rejected with it carries -1003 and the ban's end.
    assert "-1003" in str(banned.value) and "banned until 1700000000000" in str(banned.value)
    assert budget.banned() is not None
    clock[0] = 1_700_000_000.5  # the ban is over
    assert budget.banned() is None
    assert budget.try_take(1) == 0.0
    assert ban_end_ms("no time named", {"Retry-After": "30"}, 1_000) == 31_000


def test_acquire_waits_rather_than_sends() -> None:
    budget = WeightBudget()
    budget.set_limit(10, 1)  # 8 weight per second

    async def four_requests() -> float:
        start = time.monotonic()
        await asyncio.gather(*(budget.acquire(4) for _ in range(4)))
        return time.monotonic() - start

    assert asyncio.run(four_requests()) >= 0.9  # two fit at once, the other two a second later
    assert budget.peak_rolling == 8


def test_headers_and_request_weights() -> None:
    assert used_weight({"x-mbx-used-weight-1m": "12"}) == 12
    assert used_weight({"X-MBX-USED-WEIGHT-10S": "7"}, "x-mbx-used-weight-10s") == 7
    assert used_weight({}) is None
    assert request_weight_of("GET", "http://h/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=121") == (
        "/fapi/v1/klines",
        2,
    )
    assert request_weight_of("GET", "http://h/fapi/v1/openOrders?timestamp=1")[1] == 40
    assert budget_for("http://127.0.0.1:9/fapi") is budget_for("http://127.0.0.1:9")
