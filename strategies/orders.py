"""The orders of the strategy's trades, sent through the Nautilus order API of the strategy that owns them.

The exits live on the exchange: a reduce-only ``STOP_MARKET`` for the whole position and reduce-only TP1 / TP2
(``LIMIT`` or ``MARKET_IF_TOUCHED``). A stop is replaced by submitting the new one and cancelling the old only
once the venue has accepted the new one (``cancel_replaced``), so the position is never without a working stop:
a submit and a cancel sent together may reach the venue in either order, and the new stop may be rejected
(never ``modify_order``: the Binance adapter rejects modifying a ``STOP_MARKET``).
"""

from decimal import Decimal

from nautilus_trader.model.enums import OrderType, TimeInForce
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.orders import MarketOrder, Order
from nautilus_trader.model.position import Position
from nautilus_trader.trading.strategy import Strategy

from strategies.exits import TargetOrder
from strategies.trade import TAG_ENTRY, TAG_SL, TAG_TP2, Trade, entry_side, exit_side


class TradeOrders:
    def __init__(self, strategy: Strategy, instruments: dict[InstrumentId, Instrument], target: TargetOrder) -> None:
        self.strategy = strategy
        self.instruments = instruments
        self.target_order = target

    def position(self, trade: Trade) -> Position | None:
        """The trade's position in the cache (open or closed)."""
        cache = self.strategy.cache
        if trade.position_id is not None:
            return cache.position(trade.position_id)
        positions = cache.positions_open(instrument_id=trade.instrument_id, strategy_id=self.strategy.id)
        return positions[0] if positions else None

    def open_position(self, trade: Trade) -> Position | None:
        position = self.position(trade)
        return position if position is not None and position.is_open else None

    def entry(self, instrument_id: InstrumentId, direction: str, quantity: Decimal) -> MarketOrder:
        """The market entry, built (the caller submits it once the trade is recorded)."""
        return self.strategy.order_factory.market(
            instrument_id=instrument_id,
            order_side=entry_side(direction),
            quantity=self.instruments[instrument_id].make_qty(quantity),
            time_in_force=TimeInForce.GTC,
            tags=[TAG_ENTRY],
        )

    def replace_stop(self, trade: Trade, price: float, quantity: Decimal, kind: str) -> None:
        """Place a new reduce-only stop of ``kind`` (INITIAL, BREAKEVEN, DYNAMIC); the old one stays working until
        the venue accepts the new one (then ``cancel_replaced``)."""
        instrument = self.instruments[trade.instrument_id]
        stop_price = instrument.make_price(price)
        order = self.strategy.order_factory.stop_market(
            instrument_id=trade.instrument_id,
            order_side=exit_side(trade.direction),
            quantity=instrument.make_qty(quantity),
            trigger_price=stop_price,
            reduce_only=True,
            tags=[TAG_SL],
        )
        old_id = trade.stop_id
        trade.stop_id = order.client_order_id
        trade.stop_price = stop_price.as_double()
        trade.stop_kind = kind
        if old_id is not None:
            old = self.strategy.cache.order(old_id)
            if old is not None and not old.is_closed:
                trade.replaced_stops.append(old_id)
        self.strategy.submit_order(order, position_id=trade.position_id)

    def cancel_replaced(self, trade: Trade) -> int:
        """Cancel the trade's replaced stops still working (its current stop was accepted)."""
        cancelled = 0
        for client_order_id in trade.replaced_stops:
            old = self.working(client_order_id)
            if old is not None and not old.is_pending_cancel and client_order_id != trade.stop_id:
                self.strategy.cancel_order(old)
                cancelled += 1
        return cancelled

    def stale_exits(self, instrument_id: InstrumentId, trade: Trade | None) -> list[Order]:
        """Reduce-only orders working on the instrument that no exit of ``trade`` (the open trade, if any) is:
        the stops its current stop replaced, a take-profit moved away, the exits of a closed trade whose cancel
        was refused. Orders being cancelled are left to their cancel."""
        keep = {trade.stop_id, trade.tp1_id, trade.tp2_id} if trade is not None else set()
        return [
            o
            for o in self.strategy.cache.orders_open(instrument_id=instrument_id)
            if o.is_reduce_only
            and o.order_type != OrderType.MARKET
            and not o.is_pending_cancel
            and o.client_order_id not in keep
        ]

    def target(self, trade: Trade, price: float, quantity: Decimal, tag: str) -> ClientOrderId:
        """Place a reduce-only take-profit (TP1 or TP2 by ``tag``) at ``price``."""
        instrument = self.instruments[trade.instrument_id]
        common = {
            "instrument_id": trade.instrument_id,
            "order_side": exit_side(trade.direction),
            "quantity": instrument.make_qty(quantity),
            "reduce_only": True,
            "tags": [tag],
        }
        if self.target_order == TargetOrder.MARKET_IF_TOUCHED:
            order = self.strategy.order_factory.market_if_touched(trigger_price=instrument.make_price(price), **common)
        else:
            order = self.strategy.order_factory.limit(price=instrument.make_price(price), **common)
        self.strategy.submit_order(order, position_id=trade.position_id)
        return order.client_order_id

    def move_tp2(self, trade: Trade, order: Order, price: float) -> Decimal:
        """Cancel the working TP2 and place it again at ``price`` for the same quantity."""
        quantity = order.quantity.as_decimal()
        self.strategy.cancel_order(order)
        trade.tp2_id = self.target(trade, price, quantity, TAG_TP2)
        return quantity

    def working(self, client_order_id: ClientOrderId | None) -> Order | None:
        """The order if it is still working (not closed)."""
        order = self.strategy.cache.order(client_order_id) if client_order_id is not None else None
        return order if order is not None and not order.is_closed else None

    def close_at_market(self, trade: Trade, tag: str) -> None:
        position = self.open_position(trade)
        if position is None:
            return
        order = self.strategy.order_factory.market(
            instrument_id=trade.instrument_id,
            order_side=exit_side(trade.direction),
            quantity=self.instruments[trade.instrument_id].make_qty(position.quantity),
            reduce_only=True,
            tags=[tag],
        )
        self.strategy.submit_order(order, position_id=trade.position_id)

    def cancel_exits(self, instrument_id: InstrumentId) -> int:
        """Cancel our open orders on the instrument, and any reduce-only one (reconciled after a restart, so
        of another strategy id): no exit order survives its position."""
        cache, own = self.strategy.cache, self.strategy.id
        orders = [
            o
            for o in cache.orders_open(instrument_id=instrument_id)
            if not o.is_pending_cancel and (o.strategy_id == own or o.is_reduce_only)
        ]
        orders += [
            o
            for o in cache.orders_inflight(instrument_id=instrument_id, strategy_id=own)
            if o.order_type != OrderType.MARKET
        ]
        seen = set()
        for order in orders:
            if order.client_order_id in seen:
                continue
            seen.add(order.client_order_id)
            self.strategy.cancel_order(order)
        return len(seen)

    def unprotected(self, instrument_id: InstrumentId) -> list[Position]:
        """The instrument's open positions without a reduce-only stop on the closing side for their whole
        quantity, working or on its way to the venue (not being cancelled)."""
        cache = self.strategy.cache
        out = []
        for position in cache.positions_open(instrument_id=instrument_id):
            qty = position.quantity.as_double()
            closing_side = exit_side("LONG" if position.is_long else "SHORT")
            working: list[Order] = cache.orders_open(instrument_id=instrument_id) + cache.orders_inflight(
                instrument_id=instrument_id
            )
            if not any(
                o.order_type == OrderType.STOP_MARKET
                and o.is_reduce_only
                and o.side == closing_side
                and not o.is_pending_cancel
                and o.leaves_qty.as_double() >= qty
                for o in working
            ):
                out.append(position)
        return out
