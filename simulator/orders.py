"""Orders, conditional (algo) orders, positions and trades of the simulated account, and their Binance JSON:
REST answers (``/fapi/v1/order``, ``/fapi/v1/algoOrder``, ``userTrades``, ``positionRisk``) and user-stream
events (``ORDER_TRADE_UPDATE``, ``ALGO_UPDATE``), with the field names of the recorded responses.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from simulator.instruments import SymbolSpec

ZERO = Decimal(0)
OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})
ALGO_OPEN_STATUSES = frozenset({"NEW", "TRIGGERING", "TRIGGERED"})
ALGO_TYPES = frozenset({"STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT"})


@dataclass
class Order:
    order_id: int
    spec: SymbolSpec
    client_order_id: str
    side: str  # BUY / SELL
    type: str  # MARKET / LIMIT
    orig_type: str  # the algo type for a triggered conditional order
    time_in_force: str
    quantity: Decimal
    price: Decimal
    reduce_only: bool
    time: int
    stop_price: Decimal = ZERO
    working_type: str = "CONTRACT_PRICE"
    close_position: bool = False
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    update_time: int = 0
    algo_id: int | None = None  # the conditional order this one was triggered from

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed_qty

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO

    def to_rest(self) -> dict[str, Any]:
        s = self.spec
        return {
            "orderId": self.order_id,
            "symbol": s.symbol,
            "status": self.status,
            "clientOrderId": self.client_order_id,
            "price": s.fmt_price(self.price),
            "avgPrice": f"{self.avg_price:.{s.price_precision + 3}f}",
            "origQty": s.fmt_qty(self.quantity),
            "executedQty": s.fmt_qty(self.executed_qty),
            "cumQuote": f"{self.cum_quote:.8f}",
            "timeInForce": self.time_in_force,
            "type": self.type,
            "reduceOnly": self.reduce_only,
            "closePosition": self.close_position,
            "side": self.side,
            "positionSide": "BOTH",
            "stopPrice": s.fmt_price(self.stop_price),
            "workingType": self.working_type,
            "priceProtect": False,
            "origType": self.orig_type,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
            "time": self.time,
            "updateTime": self.update_time or self.time,
        }

    def to_event(
        self,
        exec_type: str,
        ts: int,
        fill: "Trade | None" = None,
    ) -> dict[str, Any]:
        """An ``ORDER_TRADE_UPDATE`` event for this order (``fill`` for TRADE executions)."""
        s = self.spec
        o: dict[str, Any] = {
            "s": s.symbol,
            "c": self.client_order_id,
            "S": self.side,
            "o": self.type,
            "f": self.time_in_force,
            "q": s.fmt_qty(self.quantity),
            "p": s.fmt_price(self.price),
            "ap": f"{self.avg_price:.{s.price_precision + 3}f}",
            "sp": s.fmt_price(self.stop_price),
            "x": exec_type,
            "X": self.status,
            "i": self.order_id,
            "l": s.fmt_qty(fill.qty) if fill else "0",
            "z": s.fmt_qty(self.executed_qty),
            "L": s.fmt_price(fill.price) if fill else "0",
            "N": "USDT",
            "n": f"{fill.commission:.8f}" if fill else "0",
            "T": ts,
            "t": fill.trade_id if fill else 0,
            "b": "0",
            "a": "0",
            "m": fill.maker if fill else False,
            "R": self.reduce_only,
            "wt": self.working_type,
            "ot": self.orig_type,
            "ps": "BOTH",
            "cp": self.close_position,
            "pP": False,
            "si": 0,
            "ss": 0,
            "rp": f"{fill.realized_pnl:.8f}" if fill else "0",
            "V": "EXPIRE_MAKER",
            "pm": "NONE",
            "gtd": 0,
        }
        return {"e": "ORDER_TRADE_UPDATE", "T": ts, "E": ts, "o": o}


@dataclass
class AlgoOrder:
    algo_id: int
    spec: SymbolSpec
    client_algo_id: str
    side: str
    order_type: str  # STOP_MARKET / TAKE_PROFIT_MARKET / STOP / TAKE_PROFIT
    time_in_force: str
    quantity: Decimal
    price: Decimal
    trigger_price: Decimal
    working_type: str
    reduce_only: bool
    close_position: bool
    create_time: int
    status: str = "NEW"
    update_time: int = 0
    trigger_time: int = 0
    actual_order_id: str = ""
    avg_price: Decimal = ZERO
    executed_qty: Decimal = ZERO
    reject_reason: str = ""

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    @property
    def is_open(self) -> bool:
        return self.status in ALGO_OPEN_STATUSES

    @property
    def triggers_upwards(self) -> bool:
        """A buy stop and a sell take-profit fire when the price rises to the trigger."""
        is_stop = self.order_type.startswith("STOP")
        return (self.side == "BUY") == is_stop

    @property
    def child_type(self) -> str:
        return "MARKET" if self.order_type.endswith("MARKET") else "LIMIT"

    def to_rest(self) -> dict[str, Any]:
        s = self.spec
        return {
            "algoId": self.algo_id,
            "clientAlgoId": self.client_algo_id,
            "algoType": "CONDITIONAL",
            "orderType": self.order_type,
            "symbol": s.symbol,
            "side": self.side,
            "positionSide": "BOTH",
            "timeInForce": self.time_in_force,
            "quantity": s.fmt_qty(self.quantity),
            "algoStatus": self.status,
            "actualOrderId": self.actual_order_id,
            "actualPrice": s.fmt_price(self.avg_price),
            "triggerPrice": s.fmt_price(self.trigger_price),
            "price": s.fmt_price(self.price),
            "icebergQuantity": None,
            "tpTriggerPrice": "0.000",
            "tpPrice": "0.000",
            "slTriggerPrice": "0.000",
            "slPrice": "0.000",
            "tpOrderType": "",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "workingType": self.working_type,
            "priceMatch": "NONE",
            "closePosition": self.close_position,
            "priceProtect": False,
            "reduceOnly": self.reduce_only,
            "createTime": self.create_time,
            "updateTime": self.update_time or self.create_time,
            "triggerTime": self.trigger_time,
            "goodTillDate": 0,
        }

    def to_event(self, ts: int) -> dict[str, Any]:
        """An ``ALGO_UPDATE`` event with the current status."""
        s = self.spec
        o = {
            "caid": self.client_algo_id,
            "aid": self.algo_id,
            "at": "CONDITIONAL",
            "o": self.order_type,
            "s": s.symbol,
            "S": self.side,
            "ps": "BOTH",
            "f": self.time_in_force,
            "q": s.fmt_qty(self.quantity),
            "X": self.status,
            "ai": self.actual_order_id,
            "ap": s.fmt_price(self.avg_price),
            "aq": s.fmt_qty(self.executed_qty),
            "act": self.child_type if self.actual_order_id else "0",
            "tp": s.fmt_price(self.trigger_price),
            "p": s.fmt_price(self.price),
            "V": "EXPIRE_MAKER",
            "wt": self.working_type,
            "pm": "NONE",
            "cp": self.close_position,
            "pP": False,
            "R": self.reduce_only,
            "tt": self.trigger_time,
            "gtd": 0,
            "rm": self.reject_reason,
        }
        return {"e": "ALGO_UPDATE", "T": ts, "E": ts, "o": o}


@dataclass
class Trade:
    trade_id: int
    order_id: int
    spec: SymbolSpec
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    realized_pnl: Decimal
    maker: bool
    time: int

    def to_rest(self) -> dict[str, Any]:
        s = self.spec
        return {
            "symbol": s.symbol,
            "id": self.trade_id,
            "orderId": self.order_id,
            "side": self.side,
            "price": s.fmt_price(self.price),
            "qty": s.fmt_qty(self.qty),
            "realizedPnl": f"{self.realized_pnl:.8f}",
            "marginAsset": "USDT",
            "quoteQty": f"{self.price * self.qty:.8f}",
            "commission": f"{self.commission:.8f}",
            "commissionAsset": "USDT",
            "time": self.time,
            "positionSide": "BOTH",
            "buyer": self.side == "BUY",
            "maker": self.maker,
        }


@dataclass
class Position:
    """A one-way (``BOTH``) position; ``amount`` is signed; ``isolated_wallet`` is the isolated margin."""

    spec: SymbolSpec
    leverage: int = 20
    margin_type: str = "CROSSED"  # CROSSED / ISOLATED, as symbolConfig spells it
    amount: Decimal = ZERO
    entry_price: Decimal = ZERO
    realized: Decimal = ZERO
    isolated_wallet: Decimal = ZERO
    update_time: int = 0
    fees_paid: Decimal = field(default=ZERO)

    @property
    def is_isolated(self) -> bool:
        return self.margin_type == "ISOLATED"

    def unrealized(self, mark: Decimal) -> Decimal:
        return self.amount * (mark - self.entry_price) if self.amount else ZERO

    def isolated_margin(self, mark: Decimal) -> Decimal:
        return self.isolated_wallet + self.unrealized(mark) if self.is_isolated else ZERO

    def initial_margin(self, mark: Decimal) -> Decimal:
        return abs(self.amount) * mark / self.leverage

    def maint_margin(self, mark: Decimal) -> Decimal:
        return abs(self.amount) * mark * self.spec.maint_margin

    def max_notional(self) -> str:
        return str(int(Decimal(50_000_000) / self.leverage))

    def to_risk(self, mark: Decimal) -> dict[str, Any]:
        """One ``GET /fapi/v3/positionRisk`` row."""
        s = self.spec
        notional = self.amount * mark
        return {
            "symbol": s.symbol,
            "positionSide": "BOTH",
            "positionAmt": s.fmt_qty(self.amount),
            "entryPrice": f"{self.entry_price:.8f}",
            "breakEvenPrice": f"{self.entry_price:.8f}",
            "markPrice": f"{mark:.8f}",
            "unRealizedProfit": f"{self.unrealized(mark):.8f}",
            "liquidationPrice": "0",
            "isolatedMargin": f"{self.isolated_margin(mark):.8f}",
            "notional": f"{notional:.8f}",
            "marginAsset": "USDT",
            "isolatedWallet": f"{self.isolated_wallet:.8f}",
            "initialMargin": f"{self.initial_margin(mark):.8f}",
            "maintMargin": f"{self.maint_margin(mark):.8f}",
            "positionInitialMargin": f"{self.initial_margin(mark):.8f}",
            "openOrderInitialMargin": "0",
            "adl": 0,
            "bidNotional": "0",
            "askNotional": "0",
            "updateTime": self.update_time,
        }

    def to_event_row(self, mark: Decimal) -> dict[str, Any]:
        """One entry of ``ACCOUNT_UPDATE.a.P``."""
        s = self.spec
        return {
            "s": s.symbol,
            "pa": s.fmt_qty(self.amount),
            "ep": f"{self.entry_price:.8f}",
            "bep": f"{self.entry_price:.8f}",
            "cr": f"{self.realized:.8f}",
            "up": f"{self.unrealized(mark):.8f}",
            "mt": "isolated" if self.is_isolated else "cross",
            "iw": f"{self.isolated_wallet:.8f}",
            "ps": "BOTH",
        }
