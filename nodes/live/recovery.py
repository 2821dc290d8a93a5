"""Before a live node starts: what happened on the exchange while it was down, for the strategy to book.

Nautilus's start-up reconciliation rebuilds the positions and orders that are open now; a trade that opened
and closed within its window is dropped as a finished lifecycle, so a position closed by its stop while the node
was down would pass unreported. This module reads the strategy's trade memory (``strategies/memory.py``) and
asks Binance, once, for each remembered trade: its symbol's trades since the entry (``userTrades``, weight 5)
and the orders behind them (``allOrders`` and ``allAlgoOrders``, 5 each), to tell a stop from a take-profit;
and for the day: today's income (``GET /fapi/v1/income`` since 00:00 UTC, weight 30 per 1,000 rows) and the
wallet (``/fapi/v2/account``, 5), so the daily loss limit resumes where it was. The result is a
``RestartFacts`` the strategy receives in its config.
"""

from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from nautilus_trader.adapters.binance.common.enums import BinanceAccountType
from nautilus_trader.adapters.binance.futures.http.account import BinanceFuturesAccountHttpAPI
from nautilus_trader.adapters.binance.http.client import BinanceHttpClient
from nautilus_trader.common.component import LiveClock
from nautilus_trader.core.nautilus_pyo3 import HttpMethod

from strategies.downtime import (
    FILL_ENTRY,
    FILL_LIQUIDATION,
    FILL_MARKET,
    FILL_STOP,
    FILL_TARGET,
    ExchangeFill,
    RestartFacts,
)
from strategies.memory import load
from strategies.risk import NANOS_PER_DAY

# Income that is trading (a transfer or a deposit is not a day's profit or loss).
TRADING_INCOME = frozenset(
    {"REALIZED_PNL", "COMMISSION", "FUNDING_FEE", "INSURANCE_CLEAR", "LIQUIDATION_FEE", "FEE_RETURN"}
)
STOP_TYPES = frozenset({"STOP_MARKET", "STOP"})
TARGET_TYPES = frozenset({"TAKE_PROFIT_MARKET", "TAKE_PROFIT"})
MS_PER_DAY = NANOS_PER_DAY // 1_000_000


def fill_kind(order: dict[str, Any] | None, algo_type: str | None) -> str:
    """What made a fill: the order behind it (``allOrders`` row) and, for a triggered conditional order, the
    conditional order's type."""
    if algo_type in STOP_TYPES:
        return FILL_STOP
    if algo_type in TARGET_TYPES:
        return FILL_TARGET
    if order is None:
        return FILL_MARKET
    if str(order.get("clientOrderId", "")).startswith("autoclose-"):
        return FILL_LIQUIDATION
    if order.get("origType") in STOP_TYPES:
        return FILL_STOP
    if order.get("origType") in TARGET_TYPES:
        return FILL_TARGET
    if not order.get("reduceOnly"):
        return FILL_ENTRY if order.get("type") != "LIMIT" else FILL_TARGET
    return FILL_TARGET if order.get("type") == "LIMIT" else FILL_MARKET


def day_start_equity(wallet: float, income_rows: list[dict[str, Any]]) -> float:
    """The wallet at the start of the day: the wallet now minus the day's trading income."""
    return wallet - sum(float(r["income"]) for r in income_rows if r.get("incomeType") in TRADING_INCOME)


class _Rest:
    def __init__(self, client: BinanceHttpClient, clock: LiveClock) -> None:
        self.client, self.clock = client, clock

    async def get(self, path: str, **params: Any) -> Any:
        payload = {k: str(v) for k, v in params.items() if v is not None}
        payload["timestamp"] = str(self.clock.timestamp_ms())
        raw = await self.client.sign_request(HttpMethod.GET, path, payload)
        return msgspec.json.decode(raw)


async def _symbol_fills(rest: _Rest, instrument: str, since_ms: int) -> list[ExchangeFill]:
    symbol = instrument.split("-", 1)[0]
    trades = await rest.get("/fapi/v1/userTrades", symbol=symbol, startTime=since_ms, limit=1000)
    if not trades:
        return []
    orders = {int(o["orderId"]): o for o in await rest.get("/fapi/v1/allOrders", symbol=symbol, startTime=since_ms)}
    algos = await rest.get("/fapi/v1/allAlgoOrders", symbol=symbol, startTime=since_ms, limit=1000)
    algo_types = {int(a["actualOrderId"]): a.get("orderType") for a in algos if a.get("actualOrderId")}
    return [
        ExchangeFill(
            instrument=instrument,
            order_id=str(t["orderId"]),
            side=t["side"],
            quantity=float(t["qty"]),
            price=float(t["price"]),
            realized_pnl=float(t.get("realizedPnl") or 0),
            commission=float(t.get("commission") or 0),
            time_ms=int(t["time"]),
            kind=fill_kind(orders.get(int(t["orderId"])), algo_types.get(int(t["orderId"]))),
        )
        for t in trades
    ]


async def _today_income(rest: _Rest, day_start_ms: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    start = day_start_ms
    while True:
        page = await rest.get("/fapi/v1/income", startTime=start, limit=1000)
        rows += page
        if len(page) < 1000:
            return rows
        start = int(page[-1]["time"]) + 1


async def recover(client: BinanceHttpClient, clock: LiveClock, memory_path: Path | None) -> RestartFacts:
    """The facts a restarting strategy needs, read from the account behind ``client`` (signed)."""
    rest = _Rest(client, clock)
    fills: list[ExchangeFill] = []
    if memory_path is not None:
        _, memos = load(memory_path)
        for memo in memos:
            fills += await _symbol_fills(rest, memo.instrument, memo.opened_ns // 1_000_000 - 1_000)
    now_ms = clock.timestamp_ms()
    day_start_ms = now_ms // MS_PER_DAY * MS_PER_DAY
    income = await _today_income(rest, day_start_ms)
    account = await BinanceFuturesAccountHttpAPI(
        client, clock, BinanceAccountType.USDT_FUTURES
    ).query_futures_account_info()
    wallet = float(Decimal(account.totalWalletBalance)) if account.totalWalletBalance is not None else None
    return RestartFacts(
        fills=tuple(fills),
        utc_day=now_ms // MS_PER_DAY if wallet is not None else None,
        day_start_equity=day_start_equity(wallet, income) if wallet is not None else None,
    )
