"""A trade's state and the plain decisions about it: the order roles, the sides, how a trade ended.

Tags on every order the strategy sends survive in the cache and on the venue (client order metadata), so a
restarted node can tell the stop from the targets without any memory of its own.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId, PositionId
from nautilus_trader.model.orders import Order

from strategies.exits import ExitLevels, FactorInputs, side_sign
from strategies.risk import OpenExposure

TAG_ENTRY = "ATS:ENTRY"
TAG_SL = "ATS:SL"
TAG_TP1 = "ATS:TP1"
TAG_TP2 = "ATS:TP2"
TAG_EXIT = "ATS:EXIT"  # the strategy's own close at market: a dynamic exit, or a stop the venue refused
TAG_FLATTEN = "ATS:FLATTEN"
ALL_TAGS = (TAG_ENTRY, TAG_SL, TAG_TP1, TAG_TP2, TAG_EXIT, TAG_FLATTEN)

STOP_INITIAL = "INITIAL"
STOP_BREAKEVEN = "BREAKEVEN"
STOP_DYNAMIC = "DYNAMIC"

# Why the strategy itself closes a trade at market (``Trade.exit_intent``).
INTENT_DYNAMIC = "DYNAMIC"
INTENT_FLATTEN = "FLATTEN"
INTENT_STOP = "STOP"  # standing in for a stop that is gone


@dataclass
class Trade:
    instrument_id: InstrumentId
    direction: str  # "LONG" | "SHORT"
    strength: float
    score: float
    leverage: int
    factors: FactorInputs
    atr: float | None
    planned: ExitLevels  # from the reference price at signal time
    levels: ExitLevels | None = None  # re-based on the fill price once the entry filled
    manual: bool = False
    entry_order_id: ClientOrderId | None = None
    position_id: PositionId | None = None
    entry: float = 0.0
    quantity: Decimal = Decimal(0)
    opened_ns: int = 0
    stop_price: float = 0.0
    tp1_price: float = 0.0
    tp2_price: float = 0.0
    stop_id: ClientOrderId | None = None
    tp1_id: ClientOrderId | None = None
    tp2_id: ClientOrderId | None = None
    stop_kind: str = STOP_INITIAL
    tp1_done: bool = False
    exit_intent: str = ""  # INTENT_* once the strategy itself closes at market
    trails: int = 0
    dynamic_adjustments: int = 0
    funding: float = 0.0  # received (+) / paid (-) while open
    stop_retries: int = 0  # times in a row the current stop was placed again after a refusal
    replaced_stops: list[ClientOrderId] = field(default_factory=list)
    reserved: Decimal = Decimal(0)  # margin and fee the entry holds until it fills

    @property
    def sign(self) -> int:
        return side_sign(self.direction)


class Trades:
    """The strategy's trades by instrument: open (entry filled) and pending (entry sent, not filled yet)."""

    def __init__(self) -> None:
        self.open: dict[InstrumentId, Trade] = {}
        self.pending: dict[InstrumentId, Trade] = {}

    def count(self) -> int:
        return len(self.open) + len(self.pending)

    def reserved(self) -> Decimal:
        """The margin (and entry fee) of the entries sent and not filled yet: what the free balance will lose."""
        return sum((t.reserved for t in self.pending.values()), Decimal(0))

    def exposures(self) -> list[OpenExposure]:
        return [OpenExposure(str(t.instrument_id), t.direction) for t in (*self.open.values(), *self.pending.values())]


def parse_direction(side: str) -> str | None:
    """A trader's side ("long", "buy", "short", "sell", any case) as a direction, or None."""
    return {"long": "LONG", "buy": "LONG", "short": "SHORT", "sell": "SHORT"}.get(side.lower())


def entry_side(direction: str) -> OrderSide:
    return OrderSide.BUY if side_sign(direction) > 0 else OrderSide.SELL


def exit_side(direction: str) -> OrderSide:
    return OrderSide.SELL if side_sign(direction) > 0 else OrderSide.BUY


def order_kind(tags: list[str] | None) -> str:
    """The ATS tag of an order, or "" for an order this strategy did not tag."""
    for tag in tags or ():
        if tag in ALL_TAGS:
            return tag
    return ""


def order_role(order: Order, trade: Trade | None) -> str:
    """The order's tag; for an order adopted after a restart (reconciled from the venue, so untagged) the role
    the adoption gave it in the open trade: stop, TP1 or TP2."""
    kind = order_kind(order.tags)
    if kind or trade is None:
        return kind
    client_order_id = order.client_order_id
    if client_order_id == trade.stop_id or client_order_id in trade.replaced_stops:
        return TAG_SL
    if client_order_id == trade.tp1_id:
        return TAG_TP1
    if client_order_id == trade.tp2_id:
        return TAG_TP2
    return ""


@dataclass(frozen=True)
class Ending:
    """How a trade ended, from the role of the order that closed its position."""

    reason: str  # the ledger's exit reason (ledger.EXIT_REASONS)
    counter: str = ""  # the exit counter to add, if any
    notice: str = ""  # the ExitEvent kind to publish, if any
    tp1_done: bool = False  # TP1 has filled by now (a TP1 that took the whole position included)


def ending(closing_role: str, trade: Trade) -> Ending:
    """The exit reason, counter and notice of a trade whose position was closed by an order of this role."""
    if closing_role == TAG_SL or (closing_role == TAG_EXIT and trade.exit_intent == INTENT_STOP):
        # a stop fill, or our market close standing in for a stop the venue refused
        if trade.stop_kind == STOP_DYNAMIC:
            reason = "DYNAMIC"
        elif trade.tp1_done or trade.stop_kind == STOP_BREAKEVEN:
            reason = "TP1+BREAKEVEN"
        else:
            reason = "STOP"
        return Ending(reason, "stops", "STOP", trade.tp1_done)
    if closing_role in (TAG_TP1, TAG_TP2):
        # without TP1 done, TP1 took the whole (too small to split) position
        counter = "tp2" if trade.tp1_done else "tp1"
        return Ending("TP1+TP2", counter, closing_role.removeprefix("ATS:"), True)
    if closing_role == TAG_FLATTEN or trade.exit_intent == INTENT_FLATTEN:
        return Ending("FLATTEN", tp1_done=trade.tp1_done)
    if closing_role == TAG_EXIT and trade.exit_intent == INTENT_DYNAMIC:
        return Ending("DYNAMIC", tp1_done=trade.tp1_done)
    return Ending("STOP", tp1_done=trade.tp1_done)  # closed by our protective market exit or outside the strategy
