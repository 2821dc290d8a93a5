"""``ExitKeeper`` keeps every open trade's exits on the exchange, from the entry fill to the position's end.

Entry filled -> the stop for the whole position, TP1 and TP2 for a half each, re-based on the fill price. TP1
filled -> a new stop at break-even for the rest. A new score -> the dynamic adjustment (tighten the stop, trail
TP2, or exit at market). A replaced stop is cancelled once its successor is accepted. A stop found missing at
start -> re-armed. A stop lost (rejected: placed again, then closed at market; after a wait when the refusal
names a ban's end or the stop it replaces still covers; cancelled by someone else: closed at market; see
``protection.py``). A close, a stop placed after a wait, or the cancel of an old stop or of a closed trade's
exit refused -> ``guard``, called again after each wait of the retry policy until the position is protected by
one stop or closed with no exit left behind, with ``alert`` telling the trader when the quick tries are spent.
The prices come from ``exits.py``; each step is counted and published as an ``ExitEvent``.
"""

from decimal import Decimal
from typing import Any

from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.events import OrderFilled, PositionClosed
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.orders import Order
from nautilus_trader.model.position import Position

from strategies.adoption import adopt_trade
from strategies.exits import (
    DynamicConfig,
    DynamicKind,
    ExitConfig,
    breakeven_stop,
    dynamic_adjustment,
    exit_levels,
    rearm_stop,
)
from strategies.ledger import Counters, TradeRecord, commissions
from strategies.market import Market
from strategies.memory import TradeMemo
from strategies.notices import Notices
from strategies.orders import TradeOrders
from strategies.protection import (
    STOP_RETRIES,
    GuardAction,
    GuardView,
    StopAction,
    after_stop_lost,
    guard_action,
    stop_through_market,
)
from strategies.retry import banned_until_ms
from strategies.sizing import InstrumentFilters, split_quantity
from strategies.trade import (
    INTENT_DYNAMIC,
    INTENT_FLATTEN,
    INTENT_STOP,
    STOP_BREAKEVEN,
    STOP_DYNAMIC,
    STOP_INITIAL,
    TAG_EXIT,
    TAG_FLATTEN,
    TAG_TP1,
    TAG_TP2,
    Trade,
    Trades,
    ending,
    order_role,
)


class ExitKeeper:
    def __init__(
        self,
        orders: TradeOrders,
        market: Market,
        notices: Notices,
        counters: Counters,
        exits: ExitConfig,
        dynamic: DynamicConfig,
    ) -> None:
        self.orders = orders
        self.market = market
        self.notices = notices
        self.counters = counters
        self.exits = exits
        self.dynamic = dynamic

    def notice(self, trade: Trade, kind: str, price: float, quantity: float, new_stop: float) -> None:
        """Publish an exit step with the trade's result so far."""
        instrument = self.market.instruments[trade.instrument_id]
        pnl_pct = self.market.trade_pnl_pct(trade, self.orders.position(trade), instrument, price)
        self.notices.exit(trade, instrument, kind, price, quantity, new_stop, pnl_pct)

    def arm(self, trade: Trade, entry: Order, position_id: Any) -> None:
        """The entry filled: re-base the exit levels on the fill price and place the three exit orders."""
        instrument = self.market.instruments[trade.instrument_id]
        trade.entry = instrument.make_price(entry.avg_px).as_double()
        trade.quantity = entry.filled_qty.as_decimal()
        trade.opened_ns = entry.ts_last
        trade.position_id = position_id
        trade.levels = exit_levels(trade.entry, trade.direction, trade.factors, self.exits, trade.atr)
        self.counters.add(str(trade.instrument_id), "entries")
        self.orders.replace_stop(trade, trade.levels.stop, trade.quantity, STOP_INITIAL)
        filters = InstrumentFilters.of(instrument)
        tp1_qty, tp2_qty = split_quantity(trade.quantity, filters.step, filters.min_qty)
        trade.tp1_price = instrument.make_price(trade.levels.tp1).as_double()
        trade.tp2_price = instrument.make_price(trade.levels.tp2).as_double()
        trade.tp1_id = self.orders.target(trade, trade.tp1_price, tp1_qty, TAG_TP1)
        if tp2_qty > 0:
            trade.tp2_id = self.orders.target(trade, trade.tp2_price, tp2_qty, TAG_TP2)
        self.notices.entry_filled(trade, instrument)

    def tp1_filled(self, trade: Trade, fill: OrderFilled) -> None:
        """TP1 closed half: the stop follows to break-even for the rest."""
        position = self.orders.open_position(trade)
        if trade.tp1_done or position is None:
            return  # TP1 took the whole position: the close handler accounts for it
        trade.tp1_done = True
        symbol, price, rest = str(trade.instrument_id), fill.last_px.as_double(), position.quantity
        self.counters.add(symbol, "tp1")
        self.notice(trade, "TP1", price, fill.last_qty.as_double(), 0.0)
        self.orders.replace_stop(trade, breakeven_stop(trade.levels), rest.as_decimal(), STOP_BREAKEVEN)
        self.counters.add(symbol, "breakeven")
        self.notice(trade, "BREAKEVEN", price, rest.as_double(), trade.stop_price)

    def tp1_seen_late(self, trade: Trade) -> None:
        """TP1 filled while nobody watched (the fill was lost, or the node was down): the stop follows to
        break-even for what is left, as if the fill had been seen."""
        position = self.orders.open_position(trade)
        trade.tp1_done = True
        symbol, rest = str(trade.instrument_id), position.quantity
        self.counters.add(symbol, "tp1")
        self.orders.replace_stop(trade, breakeven_stop(trade.levels), rest.as_decimal(), STOP_BREAKEVEN)
        self.counters.add(symbol, "breakeven")
        self.notice(trade, "BREAKEVEN", trade.entry, rest.as_double(), trade.stop_price)

    def adjust(self, trade: Trade, score: float) -> None:
        """Dynamic adjustment: tighten the stop or exit when the score turns; trail TP2 when it firms."""
        position = self.orders.open_position(trade)
        price = self.market.close_of(trade.instrument_id)
        if position is None or price is None or trade.exit_intent:
            return
        tp2_order = self.orders.working(trade.tp2_id)
        tp2 = trade.tp2_price if tp2_order is not None else None
        action = dynamic_adjustment(
            trade.direction, trade.entry, trade.stop_price, tp2, price, score, trade.trails, self.dynamic
        )
        if action.kind == DynamicKind.NONE:
            return
        instrument = self.market.instruments[trade.instrument_id]
        if action.kind == DynamicKind.TIGHTEN:
            new_stop = instrument.make_price(action.new_stop).as_double()
            if (new_stop - trade.stop_price) * trade.sign <= 0:
                return  # on the tick grid it would not move
        trade.dynamic_adjustments += 1
        self.counters.add(str(trade.instrument_id), "dynamic")
        quantity = position.quantity
        if action.kind == DynamicKind.EXIT:
            trade.exit_intent = INTENT_DYNAMIC
            self.notice(trade, "DYNAMIC_EXIT", price, quantity.as_double(), 0.0)
            self.orders.close_at_market(trade, TAG_EXIT)
        elif action.kind == DynamicKind.TIGHTEN:
            self.orders.replace_stop(trade, new_stop, quantity.as_decimal(), STOP_DYNAMIC)
            self.notice(trade, "DYNAMIC_TIGHTEN", price, quantity.as_double(), trade.stop_price)
        elif action.kind == DynamicKind.TRAIL:
            trade.trails += 1
            trade.tp2_price = instrument.make_price(action.new_tp2).as_double()
            moved = self.orders.move_tp2(trade, tp2_order, trade.tp2_price)
            self.notice(trade, "DYNAMIC_TRAIL", price, float(moved), trade.stop_price)

    def adopt(
        self, instrument: Instrument, position: Position, strength: float, log: Any, memo: TradeMemo | None = None
    ) -> Trade:
        """A position found open at start becomes a trade again; without a working stop it gets one."""
        orders = self.orders.strategy.cache.orders(instrument_id=instrument.id)
        trade = adopt_trade(instrument, position, orders, self.exits, strength, memo)
        if trade.stop_id is None:
            self.rearm(trade, position)
        log.info(
            f"adopted {trade.direction} {instrument.id} {position.quantity} @ {trade.entry}, "
            f"tp1_done={trade.tp1_done}, stop={trade.stop_price}"
        )
        return trade

    def rearm(self, trade: Trade, position: Position) -> None:
        """At break-even once TP1 is done, else the entry's base stop."""
        kind = STOP_BREAKEVEN if trade.tp1_done else STOP_INITIAL
        stop = rearm_stop(trade.levels, trade.tp1_done)
        self.orders.replace_stop(trade, stop, position.quantity.as_decimal(), kind)
        self.notice(trade, "STOP_REARMED", trade.entry, position.quantity.as_double(), trade.stop_price)

    def ended(self, trade: Trade, closed: PositionClosed | Position) -> TradeRecord:
        """The trade's position closed (the event, or the closed position found in the cache): count and
        publish how it ended, and return its ledger record."""
        cache = self.orders.strategy.cache
        position_id = closed.id if isinstance(closed, Position) else closed.position_id
        closing = cache.order(closed.closing_order_id) if closed.closing_order_id is not None else None
        end = ending(order_role(closing, trade) if closing is not None else "", trade)
        exit_price = float(closed.avg_px_close)
        if end.counter:
            self.counters.add(str(trade.instrument_id), end.counter)
        trade.tp1_done = end.tp1_done
        if end.notice:
            # The last fill's own price and size for the exit message; the position's average for the record.
            last_px = closing.avg_px if closing is not None and closing.avg_px else exit_price
            last_qty = closing.filled_qty.as_double() if closing is not None else float(closed.peak_qty)
            self.notice(trade, end.notice, last_px, last_qty, 0.0)
        realized = closed.realized_pnl.as_double() if closed.realized_pnl is not None else 0.0
        ts = closed.ts_closed or (closed.ts_last if isinstance(closed, Position) else closed.ts_event)
        quantity, pnl = float(closed.peak_qty), realized + trade.funding
        fees = commissions(cache.position(position_id))
        instrument = self.market.instruments[trade.instrument_id]
        self.notices.closed(trade, instrument, ts, exit_price, quantity, pnl, end.reason)
        return TradeRecord.of_trade(trade, ts, exit_price, quantity, pnl, fees, end.reason)

    def stop_accepted(self, trade: Trade) -> None:
        """The venue accepted the trade's current stop: the stops it replaces go."""
        trade.stop_retries = 0
        self.orders.cancel_replaced(trade)

    def stop_lost(self, trade: Trade, why: str, log: Any) -> StopAction:
        """The working stop is gone (``why``: rejected, denied, canceled, expired): never leave the position
        unprotected. A refused stop is placed again (``protection.STOP_RETRIES`` times), else the position is
        closed at market; placed again after a wait (``RETRY_LATER``, the caller's timer and ``guard``) when the
        refusal names a ban's end or the stop it replaces still covers the position. Returns what was decided."""
        position = self.orders.open_position(trade)
        if position is None:
            return StopAction.NONE
        price = self.market.close_of(trade.instrument_id)
        closing = bool(trade.exit_intent)
        covered = self.covering_stop(trade) is not None
        banned = banned_until_ms(why) is not None
        action = after_stop_lost(
            why, trade.direction, trade.stop_price, price, trade.stop_retries, closing, covered, banned
        )
        if action == StopAction.RETRY:
            trade.stop_retries += 1
            log.warning(f"{trade.instrument_id}: stop {why}; placing it again ({trade.stop_retries}/{STOP_RETRIES})")
            self.orders.replace_stop(trade, trade.stop_price, position.quantity.as_decimal(), trade.stop_kind)
            self.notice(trade, "STOP_REARMED", price or trade.entry, position.quantity.as_double(), trade.stop_price)
        elif action == StopAction.RETRY_LATER:
            meanwhile = "the stop it replaces covers meanwhile" if covered else "nothing goes out before the ban ends"
            log.warning(f"{trade.instrument_id}: stop {why}; placing it again after a wait ({meanwhile})")
        elif action == StopAction.CLOSE:
            log.warning(f"{trade.instrument_id}: stop {why}; closing the position at market")
            trade.exit_intent = INTENT_STOP
            self.orders.close_at_market(trade, TAG_EXIT)
        return action

    def covering_stop(self, trade: Trade) -> Order | None:
        """A stop the trade's current one replaces that still works (accepted, not being cancelled)."""
        for client_order_id in trade.replaced_stops:
            order = self.orders.working(client_order_id)
            if client_order_id != trade.stop_id and order is not None and order.is_open and not order.is_pending_cancel:
                return order
        return None

    def guard_view(self, instrument_id: InstrumentId, trade: Trade | None) -> GuardView:
        cache = self.orders.strategy.cache
        in_flight = bool(cache.orders_inflight(instrument_id=instrument_id))
        stale = len(self.orders.stale_exits(instrument_id, trade))
        if trade is None:  # a flat symbol (a position without a trade is the sync's to adopt: see ``guard``)
            return GuardView(False, False, False, in_flight, stale, False)
        position = self.orders.open_position(trade)
        stop = self.orders.working(trade.stop_id)
        price = self.market.close_of(trade.instrument_id)
        return GuardView(
            position_open=position is not None,
            closing=bool(trade.exit_intent),
            stop_working=stop is not None and stop.is_open and not stop.is_pending_cancel,
            in_flight=in_flight,
            stale=stale,
            stop_through_market=stop_through_market(trade.direction, trade.stop_price, price),
            targets_missing=bool(self.refused_targets(trade)),
        )

    def refused_targets(self, trade: Trade) -> list[tuple[str, float, Decimal]]:
        """The trade's take-profits the exchange refused (tag, price, quantity to place again): TP1 while it is
        not done, TP2 for its half, or for what is left once TP1 is done. Nothing while the strategy closes."""
        position = self.orders.open_position(trade)
        if position is None or trade.exit_intent:
            return []
        out = []
        instrument = self.market.instruments[trade.instrument_id]
        filters = InstrumentFilters.of(instrument)
        tp1_qty, tp2_qty = split_quantity(trade.quantity, filters.step, filters.min_qty)
        if not trade.tp1_done and self._refused(trade.tp1_id):
            out.append((TAG_TP1, trade.tp1_price, min(tp1_qty, position.quantity.as_decimal())))
        if tp2_qty > 0 and self._refused(trade.tp2_id):
            rest = position.quantity.as_decimal()
            out.append((TAG_TP2, trade.tp2_price, rest if trade.tp1_done else min(tp2_qty, rest)))
        return out

    def _refused(self, client_order_id: Any) -> bool:
        order = self.orders.strategy.cache.order(client_order_id) if client_order_id is not None else None
        return order is not None and order.status in (OrderStatus.REJECTED, OrderStatus.DENIED)

    def guard(self, instrument_id: InstrumentId, trade: Trade | None, log: Any) -> GuardAction:
        """Do what the symbol's protection needs now (``protection.guard_action``); returns what was done."""
        if trade is None and self.orders.strategy.cache.positions_open(instrument_id=instrument_id):
            return GuardAction.DONE  # a position without a trade: the sync adopts it and re-arms its stop
        action = guard_action(self.guard_view(instrument_id, trade))
        if action == GuardAction.PLACE_STOP:
            position = self.orders.open_position(trade)
            log.warning(f"{instrument_id}: no working stop of its own; placing it again at {trade.stop_price}")
            self.orders.replace_stop(trade, trade.stop_price, position.quantity.as_decimal(), trade.stop_kind)
            price = self.market.close_of(instrument_id, trade.entry)
            self.notice(trade, "STOP_REARMED", price, position.quantity.as_double(), trade.stop_price)
        elif action == GuardAction.CLOSE:
            trade.exit_intent = trade.exit_intent or INTENT_STOP
            log.warning(f"{instrument_id}: closing the position at market again ({trade.exit_intent})")
            self.orders.close_at_market(trade, TAG_FLATTEN if trade.exit_intent == INTENT_FLATTEN else TAG_EXIT)
        elif action == GuardAction.PLACE_TARGETS:
            for tag, price, quantity in self.refused_targets(trade):
                log.warning(f"{instrument_id}: placing the refused {tag.removeprefix('ATS:')} again at {price}")
                client_order_id = self.orders.target(trade, price, quantity, tag)
                if tag == TAG_TP1:
                    trade.tp1_id = client_order_id
                else:
                    trade.tp2_id = client_order_id
        elif action == GuardAction.CANCEL_STALE:
            stale = self.orders.stale_exits(instrument_id, trade)
            log.warning(f"{instrument_id}: cancelling {len(stale)} stale exit order(s) again")
            for order in stale:
                self.orders.strategy.cancel_order(order)
        return action

    def alert(
        self,
        instrument_id: InstrumentId,
        trade: Trade | None,
        failures: int,
        why: str,
        mode: str,
        pace_s: float,
        log: Any,
    ) -> None:
        """The quick tries are spent (from now on one every ``pace_s``): tell the trader what is wrong and what
        to do by hand."""
        view = self.guard_view(instrument_id, trade)
        instrument = self.market.instruments.get(instrument_id)
        symbol = instrument.raw_symbol.value if instrument is not None else instrument_id.symbol.value
        tries = f"{failures} tries in a row, the last refused: {why}"
        position = self.orders.open_position(trade) if trade is not None else None
        if trade is None or position is None:
            kind = "ERROR"
            message = (
                f"{symbol}: the position is closed, but {view.stale} of its exit orders would not cancel ({tries}). "
                f"Still trying every {pace_s:.0f} s; no new entry on {symbol} meanwhile. "
                "Cancel them on Binance, or run `ats flatten`."
            )
        else:
            size = f"{trade.direction} {position.quantity}"
            covering = self.covering_stop(trade)
            if view.stop_working or covering is not None:
                kind = "ERROR"
                failed = (
                    "the close at market"
                    if view.closing
                    else f"the new stop at {trade.stop_price}"
                    if not view.stop_working
                    else "the cancel of a replaced stop or an old exit"
                    if view.stale
                    else "a take-profit"
                )
                keeps = "its stop" if view.stop_working else f"its previous stop at {covering.trigger_price}"
                message = (
                    f"{symbol} {size}: {failed} failed ({tries}). The position keeps {keeps}; still trying every "
                    f"{pace_s:.0f} s. Check the orders on Binance, or run `ats flatten` to close everything."
                )
            else:
                kind = "UNPROTECTED"
                message = (
                    f"{symbol} {size} has NO STOP on the exchange ({tries}). Still trying every {pace_s:.0f} s. "
                    "Close it on Binance now, or run `ats flatten`."
                )
        log.error(message)
        self.notices.node(kind, mode, message)

    def flatten(self, trades: Trades) -> dict[str, Any]:
        """Every open position of the universe at market (adopted ones of another strategy id included), then
        every open order cancelled; pending entries are forgotten."""
        closed = []
        cache = self.orders.strategy.cache
        positions = [p for i in self.market.instruments for p in cache.positions_open(instrument_id=i)]
        for position in positions:
            trade = trades.open.get(position.instrument_id)
            if trade is not None:
                trade.exit_intent = INTENT_FLATTEN
                price = self.market.close_of(position.instrument_id, 0.0)
                self.notice(trade, "FLATTEN", price, position.quantity.as_double(), 0.0)
            self.orders.strategy.close_position(position, tags=[TAG_FLATTEN])
            closed.append(str(position.instrument_id))
        cancelled = sum(self.orders.cancel_exits(instrument_id) for instrument_id in self.market.instruments)
        trades.pending.clear()
        return {"closed": closed, "cancelled_orders": cancelled}

    def protect(self, instrument_id: InstrumentId, trade: Trade | None, log: Any) -> None:
        """After an error in a fill handler: every open position on the instrument must have a working stop,
        read from the cache (the error may have struck before the trade was recorded); if not, close it."""
        try:
            for position in self.orders.unprotected(instrument_id):
                log.error(f"{instrument_id}: no working stop after an error; closing the position")
                if trade is not None:
                    trade.exit_intent = trade.exit_intent or INTENT_STOP
                self.orders.strategy.close_position(position, tags=[TAG_EXIT])
        except Exception as e:
            log.exception("protect failed", e)
