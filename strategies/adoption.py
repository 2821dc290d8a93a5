"""Adoption of the positions found open when the strategy starts (a restart, live or after a crash).

``AtsStrategy`` inherits ``PositionAdoption``; ``on_start`` calls ``_adopt_open_positions`` when
``adopt_positions`` is set. Each open position of the universe gets a ``Trade`` rebuilt from the cache: the
stop, TP1 and TP2 are found by their tags (or, for orders reconciled from the venue, which carry none, by
their type), TP1 is known done from a filled TP1 or a stop at the entry price, and a missing stop is re-armed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.orders import Order
from nautilus_trader.model.position import Position

from strategies.exits import FactorInputs, exit_levels, is_breakeven
from strategies.trade import STOP_BREAKEVEN, STOP_INITIAL, TAG_SL, TAG_TP1, TAG_TP2, Trade, order_kind

if TYPE_CHECKING:
    from strategies.ats import AtsStrategy


class PositionAdoption:
    """Part of ``AtsStrategy`` (a mixin ahead of Nautilus's ``Strategy``), with no state of its own: ``self`` is
    the strategy, whose ``_trades`` it fills and whose ``_submit_stop`` re-arms a missing stop."""

    def _adopt_open_positions(self: AtsStrategy) -> None:
        """Take over positions found open at start: rebuild the exit state from the orders, re-arm a stop."""
        for instrument_id, instrument in self._instruments.items():
            for position in self.cache.positions_open(instrument_id=instrument_id):
                self._adopt(instrument, position)

    def _adopt(self: AtsStrategy, instrument: Instrument, position: Position) -> None:
        direction = "LONG" if position.is_long else "SHORT"
        entry = instrument.make_price(position.avg_px_open).as_double()
        factors = FactorInputs(strength=self.config.manual_strength)
        levels = exit_levels(entry, direction, factors, self.config.exits)
        trade = Trade(
            instrument_id=instrument.id,
            direction=direction,
            strength=self.config.manual_strength,
            score=0.0,
            leverage=1,
            factors=factors,
            atr=None,
            planned=levels,
            position_id=position.id,
            entry=entry,
            quantity=position.peak_qty.as_decimal(),
            opened_ns=position.ts_opened,
        )
        tick = instrument.price_increment.as_double()
        targets = []
        for order in self.cache.orders(instrument_id=instrument.id):
            kind = order_kind(order.tags) or _untagged_exit_kind(order)
            if kind == TAG_TP1 and order.is_closed and order.filled_qty.as_double() > 0:
                trade.tp1_done = True
            if not order.is_open or order.is_pending_cancel:
                continue  # a stop being cancelled protects nothing for long
            if kind == TAG_SL:
                trade.stop_id = order.client_order_id
                trade.stop_price = order.trigger_price.as_double()
                if is_breakeven(trade.stop_price, entry, tick):
                    trade.tp1_done = True
                    trade.stop_kind = STOP_BREAKEVEN
            elif kind in (TAG_TP1, TAG_TP2, "TP"):
                targets.append((kind, order))
        # Orders reconciled from the venue carry no tags: the target nearer the entry is TP1, unless TP1 is done.
        targets.sort(key=lambda ko: abs(_limit_price(ko[1]) - entry))
        for kind, order in targets:
            if kind == TAG_TP1 or (kind == "TP" and trade.tp1_id is None and not trade.tp1_done):
                trade.tp1_id, trade.tp1_price = order.client_order_id, _limit_price(order)
            else:
                trade.tp2_id, trade.tp2_price = order.client_order_id, _limit_price(order)
        self._trades[instrument.id] = trade
        if trade.stop_id is None:
            stop = entry if trade.tp1_done else levels.stop
            self._submit_stop(
                trade,
                stop,
                position.quantity.as_decimal(),
                STOP_BREAKEVEN if trade.tp1_done else STOP_INITIAL,
            )
            self._exit_event(trade, "STOP_REARMED", entry, position.quantity.as_double(), trade.stop_price)
        self.log.info(
            f"adopted {direction} {instrument.id} {position.quantity} @ {entry}, "
            f"tp1_done={trade.tp1_done}, stop={trade.stop_price}"
        )


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
