"""The REST API: one aiohttp handler that meters, checks and dispatches every ``/fapi`` request.

Order of checks, as on Binance: weight is counted first (so a throttled client still spends), then 429/418,
then the route, then API key / signature / timestamp, then the endpoint's own parameter checks.
"""

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from simulator import auth, errors, params
from simulator.errors import BinanceApiError
from simulator.exchange import Exchange
from simulator.faults import Faults
from simulator.instruments import SymbolSpec, exchange_info
from simulator.limits import LoggedRequest, OrderCounter, RequestLog, WeightCounter, request_weight
from simulator.marketstate import SymbolMarket

LISTEN_KEY_TTL_S = 3600
NEW_ORDER_ROUTES = frozenset({("POST", "/fapi/v1/order"), ("POST", "/fapi/v1/algoOrder")})


class Security(Enum):
    NONE = "NONE"  # public market data
    USER_STREAM = "USER_STREAM"  # API key, no signature
    SIGNED = "SIGNED"  # API key, signature, timestamp


@dataclass
class ListenKeys:
    """The account's listen key: one at a time, valid 60 minutes after its last keep-alive."""

    key: str | None = None
    expires_at: float = 0.0

    def create(self) -> str:
        if self.key is None or time.monotonic() > self.expires_at:
            self.key = secrets.token_urlsafe(48)[:64]
        self.expires_at = time.monotonic() + LISTEN_KEY_TTL_S
        return self.key

    def keepalive(self) -> None:
        if self.key is None or time.monotonic() > self.expires_at:
            raise errors.invalid_listen_key()
        self.expires_at = time.monotonic() + LISTEN_KEY_TTL_S

    def close(self) -> str | None:
        key, self.key = self.key, None
        return key

    def is_valid(self, key: str) -> bool:
        return key == self.key and time.monotonic() <= self.expires_at


Handler = Callable[[dict[str, str]], Any]


class RestApi:
    def __init__(
        self,
        exchange: Exchange,
        markets: dict[str, SymbolMarket],
        specs: dict[str, SymbolSpec],
        api_key: str,
        api_secret: str,
        faults: Faults,
        weights: WeightCounter,
        log: RequestLog,
        listen_keys: ListenKeys,
        on_listen_key_closed: Callable[[str], None],
    ) -> None:
        self.exchange = exchange
        self.markets = markets
        self.specs = specs
        self._api_key = api_key
        self._api_secret = api_secret
        self.faults = faults
        self.weights = weights
        self.log = log
        self.orders = OrderCounter()
        self.listen_keys = listen_keys
        self._on_listen_key_closed = on_listen_key_closed
        ex = exchange
        self.routes: dict[tuple[str, str], tuple[Security, Handler]] = {
            ("GET", "/fapi/v1/ping"): (Security.NONE, lambda p: {}),
            ("GET", "/fapi/v1/time"): (Security.NONE, lambda p: {"serverTime": _now_ms()}),
            ("GET", "/fapi/v1/exchangeInfo"): (Security.NONE, self._exchange_info),
            ("GET", "/fapi/v1/depth"): (Security.NONE, self._depth),
            ("GET", "/fapi/v1/klines"): (Security.NONE, self._klines),
            ("GET", "/fapi/v1/premiumIndex"): (Security.NONE, self._premium_index),
            ("GET", "/fapi/v1/openInterest"): (Security.NONE, lambda p: self._market(p).open_interest()),
            ("GET", "/fapi/v1/ticker/price"): (Security.NONE, self._ticker_price),
            ("GET", "/fapi/v1/ticker/bookTicker"): (Security.NONE, self._book_ticker),
            ("POST", "/fapi/v1/listenKey"): (
                Security.USER_STREAM,
                lambda p: {"listenKey": listen_keys.create()},
            ),
            ("PUT", "/fapi/v1/listenKey"): (Security.USER_STREAM, self._keepalive),
            ("DELETE", "/fapi/v1/listenKey"): (Security.USER_STREAM, self._close_listen_key),
            ("GET", "/fapi/v2/account"): (Security.SIGNED, lambda p: ex.account_v2()),
            ("GET", "/fapi/v2/balance"): (Security.SIGNED, lambda p: ex.balance_v2()),
            ("GET", "/fapi/v3/positionRisk"): (Security.SIGNED, ex.position_risk),
            ("GET", "/fapi/v2/positionRisk"): (Security.SIGNED, lambda p: ex.position_risk(p, only_active=False)),
            ("POST", "/fapi/v1/leverage"): (Security.SIGNED, ex.set_leverage),
            ("POST", "/fapi/v1/marginType"): (Security.SIGNED, ex.set_margin_type),
            ("GET", "/fapi/v1/symbolConfig"): (Security.SIGNED, ex.symbol_config),
            ("GET", "/fapi/v1/positionSide/dual"): (
                Security.SIGNED,
                lambda p: {"dualSidePosition": ex.dual_side},
            ),
            ("POST", "/fapi/v1/positionSide/dual"): (Security.SIGNED, ex.set_dual_side),
            ("GET", "/fapi/v1/commissionRate"): (Security.SIGNED, self._commission_rate),
            ("POST", "/fapi/v1/order"): (Security.SIGNED, ex.new_order),
            ("PUT", "/fapi/v1/order"): (Security.SIGNED, ex.modify_order),
            ("GET", "/fapi/v1/order"): (Security.SIGNED, ex.query_order),
            ("DELETE", "/fapi/v1/order"): (Security.SIGNED, ex.cancel_order),
            ("GET", "/fapi/v1/openOrders"): (Security.SIGNED, ex.open_orders),
            ("GET", "/fapi/v1/allOrders"): (Security.SIGNED, ex.all_orders),
            ("GET", "/fapi/v1/userTrades"): (Security.SIGNED, ex.user_trades),
            ("GET", "/fapi/v1/income"): (Security.SIGNED, ex.income_history),
            ("DELETE", "/fapi/v1/allOpenOrders"): (Security.SIGNED, ex.cancel_all_orders),
            ("DELETE", "/fapi/v1/batchOrders"): (Security.SIGNED, ex.cancel_batch),
            ("POST", "/fapi/v1/algoOrder"): (Security.SIGNED, ex.new_algo_order),
            ("GET", "/fapi/v1/algoOrder"): (Security.SIGNED, ex.query_algo_order),
            ("DELETE", "/fapi/v1/algoOrder"): (Security.SIGNED, ex.cancel_algo_order),
            ("GET", "/fapi/v1/openAlgoOrders"): (Security.SIGNED, ex.open_algo_orders),
            ("GET", "/fapi/v1/algoOpenOrders"): (Security.SIGNED, ex.open_algo_orders),
            ("DELETE", "/fapi/v1/algoOpenOrders"): (Security.SIGNED, ex.cancel_all_algo_orders),
            ("GET", "/fapi/v1/allAlgoOrders"): (Security.SIGNED, ex.all_algo_orders),
        }

    # --- the handler

    async def handle(self, request: web.Request) -> web.Response:
        latency = self.faults.current_latency()
        if latency:
            await asyncio.sleep(latency)
        method, path = request.method, request.path
        body = await request.text() if request.can_read_body else ""
        query: dict[str, str] = dict(parse_qsl(request.query_string, keep_blank_values=True))
        if body and request.content_type == "application/x-www-form-urlencoded":
            query.update(parse_qsl(body, keep_blank_values=True))
        else:
            body = ""  # the adapter sends no body; a JSON body is not part of what is signed
        weight = request_weight(method, path, query)
        used = self.weights.add(weight)
        status, code = 200, None
        headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        try:
            self.faults.check_request(self.weights.limit)
            if used > self.weights.limit:
                raise errors.too_many_requests(self.weights.limit, self.weights.seconds_to_reset())
            route = self.routes.get((method, path))
            if route is None:
                raise errors.unknown_route()
            security, fn = route
            if security is not Security.NONE:
                auth.check_api_key(request.headers.get("X-MBX-APIKEY"), self._api_key)
            if security is Security.SIGNED:
                auth.check_signature(request.query_string, body, self._api_secret)
                auth.check_timestamp(query)
            if (method, path) in NEW_ORDER_ROUTES:
                self._count_order(headers)
            self.faults.check_order(method, path, query)
            payload = fn(query)
            response = web.Response(
                text=json.dumps(payload, separators=(",", ":")),
                content_type="application/json",
                headers=headers,
            )
        except BinanceApiError as e:
            status, code = e.status, e.code
            headers.update(e.headers)
            response = web.Response(
                status=e.status, text=json.dumps(e.body()), content_type="application/json", headers=headers
            )
        order = ""
        if (method, path) in NEW_ORDER_ROUTES:
            reduce = " reduce-only" if query.get("reduceOnly") == "true" or query.get("closePosition") == "true" else ""
            order = f"{query.get('side', '')} {query.get('type', '')} {query.get('quantity', '')}{reduce}"
        self.log.add(LoggedRequest(_now_ms(), method, path, weight, status, used, code, query.get("symbol", ""), order))
        return response

    def _symbol_of(self, query: dict[str, str]) -> str:
        """The request's symbol, also for a conditional order named only by its id (a cancel)."""
        if query.get("symbol"):
            return query["symbol"].upper()
        algo_id, client_id = query.get("algoId"), query.get("clientAlgoId")
        for algo in self.exchange.algos.values() if algo_id or client_id else ():
            if str(algo.algo_id) == algo_id or algo.client_algo_id == client_id:
                return algo.symbol
        return ""

    def _count_order(self, headers: dict[str, str]) -> None:
        per_10s, per_minute = self.orders.add()
        headers["X-MBX-ORDER-COUNT-10S"] = str(per_10s)
        headers["X-MBX-ORDER-COUNT-1M"] = str(per_minute)
        if per_10s > self.orders.per_10s:
            raise errors.too_many_orders(self.orders.per_10s, "TEN_SECONDS")
        if per_minute > self.orders.per_minute:
            raise errors.too_many_orders(self.orders.per_minute, "MINUTE")

    # --- endpoints that are not the account's

    def _market(self, p: dict[str, str]) -> SymbolMarket:
        symbol = params.required(p, "symbol").upper()
        market = self.markets.get(symbol)
        if market is None:
            raise errors.invalid_symbol()
        return market

    def _exchange_info(self, p: dict[str, str]) -> dict[str, Any]:
        return exchange_info(list(self.specs.values()), _now_ms(), self.weights.limit)

    def _depth(self, p: dict[str, str]) -> dict[str, Any]:
        limit = params.integer(p, "limit", 500) or 500
        if limit not in (5, 10, 20, 50, 100, 500, 1000):
            raise BinanceApiError(400, -1100, "Illegal characters found in parameter 'limit'.")
        return self._market(p).depth_snapshot(limit)

    def _klines(self, p: dict[str, str]) -> list[list[int | str]]:
        """Closed klines (the replay's and the history before it), in the ``startTime``/``endTime`` window."""
        market = self._market(p)
        interval = params.required(p, "interval")
        limit = min(params.integer(p, "limit", 500) or 500, 1500)
        start = params.integer(p, "startTime")
        end = params.integer(p, "endTime")
        rows = market.closed_klines(interval, start, end, limit)
        shift = market.shift_ms
        return [k.to_rest(shift) for k in rows]

    def _premium_index(self, p: dict[str, str]) -> Any:
        if p.get("symbol"):
            return self._market(p).premium_index()
        return [m.premium_index() for m in self.markets.values()]

    def _ticker_price(self, p: dict[str, str]) -> Any:
        def row(m: SymbolMarket) -> dict[str, Any]:
            return {"symbol": m.spec.symbol, "price": m.spec.fmt_price(m.last or 0), "time": m.now_ms()}

        return row(self._market(p)) if p.get("symbol") else [row(m) for m in self.markets.values()]

    def _book_ticker(self, p: dict[str, str]) -> Any:
        def row(m: SymbolMarket) -> dict[str, Any]:
            t = m.book_ticker()
            return {
                "symbol": t["s"],
                "bidPrice": t["b"],
                "bidQty": t["B"],
                "askPrice": t["a"],
                "askQty": t["A"],
                "time": t["T"],
            }

        return row(self._market(p)) if p.get("symbol") else [row(m) for m in self.markets.values()]

    def _commission_rate(self, p: dict[str, str]) -> dict[str, Any]:
        spec = self._market(p).spec
        return {
            "symbol": spec.symbol,
            "makerCommissionRate": format(spec.maker_fee, "f"),
            "takerCommissionRate": format(spec.taker_fee, "f"),
        }

    def _keepalive(self, p: dict[str, str]) -> dict[str, Any]:
        self.listen_keys.keepalive()
        return {"listenKey": self.listen_keys.key}

    def _close_listen_key(self, p: dict[str, str]) -> dict[str, Any]:
        key = self.listen_keys.close()
        if key is not None:
            self._on_listen_key_closed(key)
        return {}


def _order_of(method: str, path: str, query: dict[str, str]) -> str:
    """A new order's side, type, quantity and reduce-only flag, for the request log."""
    if (method, path) not in NEW_ORDER_ROUTES:
        return ""
    reduces = "true" in (query.get("reduceOnly", "").lower(), query.get("closePosition", "").lower())
    flag = " reduce-only" if reduces else ""
    return f"{query.get('side', '')} {query.get('type', '')} {query.get('quantity', '')}{flag}"


def _now_ms() -> int:
    return int(time.time() * 1000)
