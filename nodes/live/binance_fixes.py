"""Three fixes to Nautilus 1.231's Binance futures execution client, applied per client instance (no global patch).

1. Doubled trades at a reconnect. When the user stream reconnects (a dropped connection, an expired listen key),
   the client reconciles with a mass status. It queries the trades of every "active symbol", gathering the
   symbols from the cache as Nautilus symbols (``BTCUSDT-PERP``) and from Binance's positions as raw symbols
   (``BTCUSDT``). Both name the same market, so its trades are fetched twice, each fill is reported twice, and
   the partial-window fill adjustment invents a closing fill: the cache then believes the position closed, and
   the strategy cancels its stop and take-profits while the position is still open on the exchange. The fix:
   the cache's symbols are given in Binance's raw form, so the set holds each market once.

2. Triggered conditional orders seen only through REST. A stop lives on Binance as an algo order (its venue id
   is the ``algoId``); when it triggers, Binance places a regular order (the "actual" order, another id) that
   carries the stop's client id and fills. The stream reports the switch and the client follows it. When the
   stream missed it (a silence, a dropped connection, a node that was down), reconciliation only sees REST:
   ``allOrders`` reports the actual order under the stop's client id but another venue id (Nautilus then
   raises "venue_order_id ... was not equal to ..." and leaves the fill unapplied), and ``userTrades`` reports
   its fills under a venue id the cache has never seen ("FillReport received before OrderStatusReport": the
   position is then closed by a synthetic order at the wrong price). The fix: such reports are given the venue
   id the cache holds for the stop (the actual order's id is found through ``allAlgoOrders``, weight 5, only
   when a fill names an unknown order), so the fill lands on the stop as if the stream had carried it.

3. A failed position check taken for "no positions". The periodic position check asks the client for every
   position (``positionRisk``); when Binance refuses the request (a 429, a 418 ban window, -1008), the client
   logs "Cannot generate PositionStatusReport" and answers with an empty list, and the execution engine then
   takes every open position as closed on the venue: it books a closing fill, and the strategy cancels the
   stop and targets of a position that is still open (found by the chaos soak: a 429 on ``positionRisk`` left
   a position without its stop, and the next entry doubled it). The engine already skips a venue whose check
   failed with an exception: the fix lets the failure through as one.
"""

import asyncio
import types
from contextvars import ContextVar
from typing import Any

from nautilus_trader.adapters.binance import BinanceLiveExecClientFactory
from nautilus_trader.adapters.binance.common.constants import BINANCE_FUTURES_ALGO_ORDER_TYPES
from nautilus_trader.adapters.binance.common.enums import BinanceEnvironment
from nautilus_trader.adapters.binance.futures.execution import BinanceFuturesExecutionClient
from nautilus_trader.execution.reports import FillReport, OrderStatusReport
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.orders import Order

from nodes.live.stream_watch import watch_user_stream


def _raw_symbol(client: BinanceFuturesExecutionClient, instrument_id: Any) -> str:
    instrument = client._cache.instrument(instrument_id)
    if instrument is not None:
        return instrument.raw_symbol.value
    return instrument_id.symbol.value.removesuffix("-PERP")


def _cache_active_raw_symbols(self: BinanceFuturesExecutionClient) -> set[str]:
    symbols = {_raw_symbol(self, o.instrument_id) for o in self._cache.orders_open(venue=self.venue)}
    symbols |= {_raw_symbol(self, p.instrument_id) for p in self._cache.positions_open(venue=self.venue)}
    return symbols


def _conditional(order: Order | None) -> bool:
    return order is not None and order.order_type in BINANCE_FUTURES_ALGO_ORDER_TYPES


def algo_venue_id_for_report(report: OrderStatusReport, cached: Order | None) -> Any:
    """The venue id a report of ``cached`` (the order with the report's client id) must carry: the cached
    one when the report is the actual order of a triggered conditional order the cache knows by its algo id;
    else the report's own."""
    if _conditional(cached) and cached.venue_order_id is not None and cached.venue_order_id != report.venue_order_id:
        return cached.venue_order_id
    return report.venue_order_id


class AlgoIdResolver:
    """Gives reconciliation reports about a triggered algo order's actual order the ids the cache knows."""

    def __init__(self, client: BinanceFuturesExecutionClient) -> None:
        self.client = client

    def order_report(self, report: OrderStatusReport | None) -> OrderStatusReport | None:
        if report is not None and report.client_order_id is not None:
            cached = self.client._cache.order(report.client_order_id)
            venue_order_id = algo_venue_id_for_report(report, cached)
            if venue_order_id != report.venue_order_id:
                self.client._log.info(
                    f"{report.client_order_id!r}: actual order {report.venue_order_id} of triggered algo order "
                    f"{venue_order_id} reconciled as the algo order"
                )
                report.venue_order_id = venue_order_id
        return report

    async def fill_reports(self, reports: list[FillReport]) -> list[FillReport]:
        cache = self.client._cache
        unknown = [r for r in reports if cache.client_order_id(r.venue_order_id) is None]
        actual_to_client: dict[str, str] = {}
        for symbol in sorted({_raw_symbol(self.client, r.instrument_id) for r in unknown}):
            algos = await self.client._futures_http_account.query_all_algo_orders(symbol=symbol, limit=1000)
            actual_to_client.update({a.actualOrderId: a.clientAlgoId for a in algos if a.actualOrderId})
        for report in unknown:
            client_algo_id = actual_to_client.get(report.venue_order_id.value)
            cached = cache.order(ClientOrderId(client_algo_id)) if client_algo_id else None
            if _conditional(cached) and cached.venue_order_id is not None:
                self.client._log.info(
                    f"fill {report.trade_id} of actual order {report.venue_order_id} reconciled as a fill of "
                    f"triggered algo order {cached.client_order_id!r}"
                )
                report.client_order_id = cached.client_order_id
                report.venue_order_id = cached.venue_order_id
        return reports


def _resolve_algo_ids(client: BinanceFuturesExecutionClient) -> None:
    resolver = AlgoIdResolver(client)
    order_reports, order_report, fill_reports = (
        client.generate_order_status_reports,
        client.generate_order_status_report,
        client.generate_fill_reports,
    )

    async def generate_order_status_reports(command: Any) -> list[OrderStatusReport]:
        return [resolver.order_report(r) for r in await order_reports(command)]

    async def generate_order_status_report(command: Any) -> OrderStatusReport | None:
        return resolver.order_report(await order_report(command))

    async def generate_fill_reports(command: Any) -> list[FillReport]:
        return await resolver.fill_reports(await fill_reports(command))

    client.generate_order_status_reports = generate_order_status_reports
    client.generate_order_status_report = generate_order_status_report
    client.generate_fill_reports = generate_fill_reports


# The failures of the position requests made for one position check (None outside a check).
_POSITION_FAILURES: ContextVar[list[BaseException] | None] = ContextVar("position_failures", default=None)


def _raise_failed_position_checks(client: BinanceFuturesExecutionClient) -> None:
    fetch, generate = client._get_binance_position_status_reports, client.generate_position_status_reports

    async def fetch_noting_failures(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fetch(*args, **kwargs)
        except Exception as e:
            failures = _POSITION_FAILURES.get()
            if failures is not None:
                failures.append(e)
            raise

    async def generate_position_status_reports(command: Any) -> list[Any]:
        token = _POSITION_FAILURES.set([])
        try:
            reports = await generate(command)
            failures = _POSITION_FAILURES.get() or []
        finally:
            _POSITION_FAILURES.reset(token)
        if failures:
            raise RuntimeError(f"positions not read from Binance ({failures[-1]}); nothing concluded") from failures[-1]
        return reports

    client._get_binance_position_status_reports = fetch_noting_failures
    client.generate_position_status_reports = generate_position_status_reports


class FixedBinanceLiveExecClientFactory(BinanceLiveExecClientFactory):
    """Nautilus's factory; the futures client it makes gets the three fixes above, and its user stream is watched
    (``nodes/live/stream_watch.py``)."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop, name: str, config: Any, msgbus: Any, cache: Any, clock: Any
    ) -> Any:
        client = BinanceLiveExecClientFactory.create(loop, name, config, msgbus, cache, clock)
        if isinstance(client, BinanceFuturesExecutionClient):
            client._get_cache_active_symbols = types.MethodType(_cache_active_raw_symbols, client)
            _resolve_algo_ids(client)
            _raise_failed_position_checks(client)
            watch_user_stream(client, "testnet" if config.environment == BinanceEnvironment.TESTNET else "live")
        return client
