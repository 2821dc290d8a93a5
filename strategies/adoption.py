"""Adoption of the positions found open when the strategy starts (a restart, live or after a crash).

``adopt_trade`` rebuilds a ``Trade`` from a position and the orders in the cache: the stop, TP1 and TP2 are
found by their tags (or, for orders reconciled from the venue, which carry none, by their type), TP1 is known
done from a filled TP1 or a stop at the entry price. A trade without a working stop comes back with
``stop_id`` None: the strategy re-arms it at ``exits.rearm_stop``.
"""

from collections.abc import Iterable
from decimal import Decimal

from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.orders import Order
from nautilus_trader.model.position import Position

from strategies.exits import ExitConfig, FactorInputs, exit_levels, is_breakeven
from strategies.memory import TradeMemo
from strategies.trade import STOP_BREAKEVEN, TAG_SL, TAG_TP1, TAG_TP2, Trade, order_kind


def adopt_trade(
    instrument: Instrument,
    position: Position,
    orders: Iterable[Order],
    exits: ExitConfig,
    strength: float,
    memo: TradeMemo | None = None,
) -> Trade:
    """The open trade of ``position``, its exit state read back from ``orders`` (the instrument's orders).

    With ``memo`` (the trade as the strategy remembered it) its strength, exit levels, entry time, funding and
    TP1 state come back; without, the base exit levels at ``strength`` (the entry's factor readings are gone).
    The trade's quantity is the largest known: the entry's (remembered), the position's peak, or the working
    stop's: a position smaller than that lost a part to a take-profit while nobody watched, which the
    exchange sync turns into TP1 done and a break-even stop.
    """
    direction = "LONG" if position.is_long else "SHORT"
    entry = instrument.make_price(position.avg_px_open).as_double()
    memo = memo if memo is not None and memo.direction == direction else None
    factors = memo.factors() if memo is not None else FactorInputs(strength=strength)
    levels = memo.exit_levels() if memo is not None else exit_levels(entry, direction, factors, exits)
    trade = Trade(
        instrument_id=instrument.id,
        direction=direction,
        strength=factors.strength,
        score=0.0,
        leverage=memo.leverage if memo is not None else 1,
        factors=factors,
        atr=None,
        planned=levels,
        levels=levels,
        position_id=position.id,
        entry=memo.entry if memo is not None else entry,
        quantity=position.peak_qty.as_decimal(),
        opened_ns=memo.opened_ns if memo is not None else position.ts_opened,
        tp1_done=memo.tp1_done if memo is not None else False,
        funding=memo.funding if memo is not None else 0.0,
    )
    if memo is not None:
        trade.quantity = max(trade.quantity, Decimal(str(memo.quantity)))
    tick = instrument.price_increment.as_double()
    targets = []
    for order in orders:
        kind = order_kind(order.tags) or _untagged_exit_kind(order)
        if kind == TAG_TP1 and order.is_closed and order.filled_qty.as_double() > 0:
            trade.tp1_done = True
        if not order.is_open or order.is_pending_cancel:
            continue  # a stop being cancelled protects nothing for long
        if kind == TAG_SL:
            trade.quantity = max(trade.quantity, order.quantity.as_decimal())
            if trade.stop_id is not None and order.quantity < position.quantity:
                continue  # keep the stop that covers the position; the sync cancels the other
            trade.stop_id = order.client_order_id
            trade.stop_price = order.trigger_price.as_double()
            if is_breakeven(trade.stop_price, trade.entry, tick):
                trade.tp1_done = True
                trade.stop_kind = STOP_BREAKEVEN
        elif kind in (TAG_TP1, TAG_TP2, "TP"):
            targets.append((kind, order))
    # Orders reconciled from the venue carry no tags: the target nearer the entry is TP1, unless TP1 is done or
    # part of the position is gone already (then what is left is TP2).
    partly_closed = trade.tp1_done or position.quantity.as_decimal() < trade.quantity
    targets.sort(key=lambda ko: abs(_limit_price(ko[1]) - entry))
    for kind, order in targets:
        if kind == TAG_TP1 or (kind == "TP" and trade.tp1_id is None and not partly_closed):
            trade.tp1_id, trade.tp1_price = order.client_order_id, _limit_price(order)
        else:
            trade.tp2_id, trade.tp2_price = order.client_order_id, _limit_price(order)
    return trade


def _untagged_exit_kind(order: Order) -> str:
    """An exit order without our tags (reconciled from the venue after a restart), known by its type."""
    if not order.is_reduce_only:
        return ""
    if order.order_type == OrderType.STOP_MARKET:
        return TAG_SL
    if order.order_type in (OrderType.LIMIT, OrderType.MARKET_IF_TOUCHED):
        return "TP"
    return ""


def _limit_price(order: Order) -> float:
    return order.price.as_double() if order.has_price else order.trigger_price.as_double()
