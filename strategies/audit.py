"""What the strategy must repair so that its trades match the positions and orders it holds, as plain data.

The node's cache follows the exchange (Nautilus reconciles it after a reconnect and checks it periodically);
the strategy's own trades can still drift from the cache: a fill applied by reconciliation after the trade was
forgotten, a stop that vanished, a second stop left by a crash between placing a new stop and cancelling the
old one, reduce-only orders left on a symbol whose position is gone. ``plan_repairs`` looks at one symbol and
says what to do; ``ExchangeSync`` (``strategies/sync.py``) gathers the views and applies the repairs.
"""

from dataclasses import dataclass
from enum import StrEnum


class RepairKind(StrEnum):
    GHOST = "GHOST"  # a trade whose position is gone: book it, forget it
    ADOPT = "ADOPT"  # a position without a trade: take it over (re-arming its stop if it has none)
    REARM = "REARM"  # an open trade without a working stop: place one
    TP1_MISSED = "TP1_MISSED"  # part of the position was closed by a target the strategy did not see: break-even
    EXTRA_STOPS = "EXTRA_STOPS"  # more than one stop on one position: cancel all but one
    RESIZE_STOP = "RESIZE_STOP"  # the stop's quantity is not the position's: replace it
    ORPHANS = "ORPHANS"  # reduce-only orders on a symbol with no position: cancel them


@dataclass(frozen=True)
class OrderView:
    order_id: str  # client order id
    reduce_only: bool
    is_stop: bool  # a STOP_MARKET
    quantity: float
    trigger: float = 0.0


@dataclass(frozen=True)
class TradeView:
    direction: str  # "LONG" | "SHORT"
    quantity: float  # the entry's filled quantity
    tp1_done: bool
    stop_id: str | None


@dataclass(frozen=True)
class SymbolView:
    """One symbol as the strategy and its cache see it. ``busy``: orders in flight, an entry pending or a close
    at market under way: the picture is about to change, so nothing is decided."""

    instrument: str
    position: float  # signed net quantity of the open positions, 0 when flat
    trade: TradeView | None
    working: tuple[OrderView, ...]  # accepted, not pending cancel
    busy: bool = False


@dataclass(frozen=True)
class Repair:
    kind: RepairKind
    instrument: str
    cancel: tuple[str, ...] = ()  # client order ids to cancel
    keep_stop: str | None = None  # the stop that stays (EXTRA_STOPS, RESIZE_STOP)


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def plan_repairs(view: SymbolView) -> list[Repair]:
    """The repairs one symbol needs, in the order they must be applied."""
    if view.busy:
        return []
    symbol, trade, size = view.instrument, view.trade, abs(view.position)
    if size == 0:
        out = [Repair(RepairKind.GHOST, symbol)] if trade is not None else []
        orphans = tuple(o.order_id for o in view.working if o.reduce_only)
        return out + ([Repair(RepairKind.ORPHANS, symbol, cancel=orphans)] if orphans else [])
    side = "LONG" if view.position > 0 else "SHORT"
    if trade is None or trade.direction != side:
        # A position the strategy does not know (or one that flipped): adoption reads its exits from the orders.
        return ([Repair(RepairKind.GHOST, symbol)] if trade is not None else []) + [Repair(RepairKind.ADOPT, symbol)]
    stops = [o for o in view.working if o.is_stop and o.reduce_only]
    if not stops:
        return [Repair(RepairKind.REARM, symbol)]
    if not trade.tp1_done and size < trade.quantity and not _same(size, trade.quantity):
        return [Repair(RepairKind.TP1_MISSED, symbol, cancel=tuple(o.order_id for o in stops))]
    keep = next((o for o in stops if o.order_id == trade.stop_id), None)
    keep = keep or next((o for o in stops if _same(o.quantity, size)), stops[-1])
    extra = tuple(o.order_id for o in stops if o is not keep)
    out = [Repair(RepairKind.EXTRA_STOPS, symbol, cancel=extra, keep_stop=keep.order_id)] if extra else []
    if not _same(keep.quantity, size):
        out.append(Repair(RepairKind.RESIZE_STOP, symbol, keep_stop=keep.order_id))
    return out
