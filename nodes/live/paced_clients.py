"""Nautilus's Binance clients, each behind the process's request-weight budget (``nodes/live/weight_budget.py``).

The data client also fetches past klines the cheap way. Nautilus 1.231 asks ``/fapi/v1/klines`` without a
limit (Binance then sends up to 500 bars at weight 5) and keeps asking until an answer is empty: the warm-up of
120 bars cost two requests and 10 weight per symbol, 500 bars three requests and 15. Here the bars between the
start and now are counted and asked for in the limits that cost least (``klines_limits``: 120 bars weigh 2,
500 bars 3), and no request is made for bars that cannot exist yet.
"""

import asyncio
import time
import types
from typing import Any

from nautilus_trader.adapters.binance import BinanceLiveDataClientFactory
from nautilus_trader.adapters.binance.common.enums import BinanceKlineInterval
from nautilus_trader.adapters.binance.common.types import BinanceBar
from nautilus_trader.adapters.binance.http.market import BinanceMarketHttpAPI
from nautilus_trader.model.data import BarType

from nodes.live.binance_fixes import FixedBinanceLiveExecClientFactory
from nodes.live.market_streams import install_market_streams
from nodes.live.order_path import submit_at_once
from nodes.live.weight_budget import klines_limits, meter

DEFAULT_KLINES_LIMIT = 500  # what Binance sends when no limit is given


def kline_window(
    interval_ms: int, now_ms: int, limit: int | None, start_ms: int | None, end_ms: int | None
) -> tuple[int, int]:
    """(first open time, number of bars) of the klines a request for [start, end] (or the last ``limit``
    bars) can return: from the first bar opening at or after the start to the bar open at the end (now, the
    bar still forming, when no end is given), at most ``limit``."""
    end = min(end_ms, now_ms) if end_ms is not None else now_ms
    last_open = end // interval_ms * interval_ms
    if start_ms is None:
        count = limit or DEFAULT_KLINES_LIMIT
        return last_open - (count - 1) * interval_ms, count
    first_open = -(-start_ms // interval_ms) * interval_ms
    count = max(0, (last_open - first_open) // interval_ms + 1)
    return first_open, min(count, limit) if limit else count


async def request_klines_cheaply(
    market: BinanceMarketHttpAPI,
    bar_type: BarType,
    interval: BinanceKlineInterval,
    limit: int | None = None,
    start_time: int | None = None,
    end_time: int | None = None,
) -> list[BinanceBar]:
    """What ``BinanceMarketHttpAPI.request_binance_bars`` returns, for the least request weight."""
    interval_ms = int(bar_type.spec.timedelta.total_seconds() * 1000)
    start, count = kline_window(interval_ms, int(time.time() * 1000), limit, start_time, end_time)
    bars: list[BinanceBar] = []
    for size in klines_limits(count):
        klines = await market.query_klines(
            symbol=bar_type.instrument_id.symbol.value,
            interval=interval,
            limit=size,
            start_time=start,
            end_time=end_time,
        )
        bars += [kline.parse_to_binance_bar(bar_type) for kline in klines]
        if len(klines) < size:
            break
        start = klines[-1].open_time + 1
    return bars


class PacedBinanceLiveDataClientFactory(BinanceLiveDataClientFactory):
    """Nautilus's data client factory; its client's requests wait for room in the weight budget, its past klines
    are fetched by ``request_klines_cheaply``, and its market streams are handled by
    ``nodes/live/market_streams.py``."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop, name: str, config: Any, msgbus: Any, cache: Any, clock: Any
    ) -> Any:
        client = BinanceLiveDataClientFactory.create(loop, name, config, msgbus, cache, clock)
        meter(client._http_client)
        market = client._http_market
        market.request_binance_bars = types.MethodType(request_klines_cheaply, market)
        install_market_streams(client)
        return client


class PacedBinanceLiveExecClientFactory(FixedBinanceLiveExecClientFactory):
    """The fixed execution client factory; its client's requests wait for room in the weight budget, and its orders
    start their request at once (``nodes/live/order_path.py``)."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop, name: str, config: Any, msgbus: Any, cache: Any, clock: Any
    ) -> Any:
        client = FixedBinanceLiveExecClientFactory.create(loop, name, config, msgbus, cache, clock)
        meter(client._http_client)
        submit_at_once(client)
        return client
