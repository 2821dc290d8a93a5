"""The matching engine of the simulated exchange, on top of the ``Account`` (one-way mode).

It knows nothing of HTTP: the REST layer hands it parsed parameters and sends back what it returns (or the
``BinanceApiError`` it raises); every state change also goes out through ``emit`` as a user-data-stream event.
It runs on the server's event loop only, so it needs no locks.

Matching: a market order takes the synthetic best bid/ask; a marketable limit order fills at once at the best
price (taker), a resting one fills at its limit price when the replayed price path touches it (maker).
Conditional orders trigger on the last price (``CONTRACT_PRICE``) or the mark price (``MARK_PRICE``)
touching the trigger, then fill as Binance reports them: ALGO_UPDATE TRIGGERING, the child order's
ORDER_TRADE_UPDATE NEW and TRADE, ALGO_UPDATE TRIGGERED (with the child's id), ALGO_UPDATE FINISHED.
"""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from simulator import errors, params
from simulator.account import Account
from simulator.errors import BinanceApiError
from simulator.instruments import SymbolSpec
from simulator.market import Step, touch_price
from simulator.marketstate import SymbolMarket
from simulator.orders import ALGO_TYPES, ZERO, AlgoOrder, Order, Position, Trade

Emit = Callable[[dict[str, Any]], None]
EmitLater = Callable[[dict[str, Any], float], None]
Params = params.Params

SIDES = frozenset({"BUY", "SELL"})
TIFS = frozenset({"GTC", "IOC", "FOK", "GTX", "GTD"})
WORKING_TYPES = frozenset({"CONTRACT_PRICE", "MARK_PRICE"})
# Binance reports a triggered conditional order's TRIGGERED / FINISHED a few ms after the child order's fill
# (see the recorded ALGO_UPDATE timestamps); the adapter relies on that gap to see the fill applied first.
ALGO_REPORT_DELAYS_S = (0.03, 0.06)
LIQUIDATION_FEE = Decimal("0.0125")  # clearance fee rate, as exchangeInfo's liquidationFee


class Exchange(Account):
    def __init__(
        self,
        specs: dict[str, SymbolSpec],
        markets: dict[str, SymbolMarket],
        balance: Decimal,
        clock_ms: Callable[[], int],
        emit: Emit,
        default_leverage: int = 20,
        emit_later: EmitLater | None = None,
    ) -> None:
        super().__init__(specs, markets, balance, clock_ms, emit, default_leverage)
        self.emit_later: EmitLater = emit_later or (lambda event, _delay: emit(event))
        self.orders: dict[int, Order] = {}
        self.algos: dict[int, AlgoOrder] = {}
        self.trades: list[Trade] = []
        # Orders that may still rest / trigger, pruned lazily: on_step must not scan the whole history.
        self._working: dict[int, None] = {}
        self._pending_algos: dict[int, None] = {}
        self.liquidations: list[Order] = []
        self._next_order_id = 8_389_765_000_000
        self._next_algo_id = 1_000_000_033_000_000
        self._next_trade_id = 6_000_000_000

    # --- ids and lookups

    def _order_id(self) -> int:
        self._next_order_id += 1
        return self._next_order_id

    def _find_order(self, p: Params) -> Order:
        spec = self._spec(p)
        order_id = params.integer(p, "orderId")
        client_id = p.get("origClientOrderId")
        if order_id is None and not client_id:
            raise errors.mandatory_param("orderId")
        for order in reversed(list(self.orders.values())):
            if order.symbol != spec.symbol:
                continue
            if (order_id is not None and order.order_id == order_id) or (
                order_id is None and order.client_order_id == client_id
            ):
                return order
        raise errors.order_does_not_exist()

    def _find_algo(self, p: Params) -> AlgoOrder:
        algo_id = params.integer(p, "algoId")
        client_id = p.get("clientAlgoId")
        if algo_id is None and not client_id:
            raise errors.mandatory_param("algoId")
        for algo in reversed(list(self.algos.values())):
            if (algo_id is not None and algo.algo_id == algo_id) or (
                algo_id is None and algo.client_algo_id == client_id
            ):
                return algo
        raise errors.order_does_not_exist()

    def _symbols_with_open_orders(self) -> set[str]:
        return {o.symbol for o in self.orders.values() if o.is_open}

    def _open_order_margin(self) -> Decimal:
        total = ZERO
        for o in self.orders.values():
            if o.is_open and not o.reduce_only and o.type == "LIMIT":
                total += o.remaining * o.price / self.positions[o.symbol].leverage
        return total

    # --- orders

    def new_order(self, p: Params) -> dict[str, Any]:
        spec = self._spec(p)
        side = params.one_of(p, "side", SIDES)
        order_type = params.required(p, "type")
        if order_type in ALGO_TYPES or order_type == "TRAILING_STOP_MARKET":
            raise errors.stop_order_switch_algo()
        params.one_of(p, "type", frozenset({"MARKET", "LIMIT"}))
        self._check_position_side(p)
        reduce_only = params.boolean(p, "reduceOnly")
        qty = params.decimal(p, "quantity")
        if qty is None:
            raise errors.mandatory_param("quantity")
        params.check_quantity(spec, qty)
        market = self.markets[spec.symbol]
        if order_type == "LIMIT":
            tif = params.one_of(p, "timeInForce", TIFS)
            price = params.decimal(p, "price")
            if price is None:
                raise errors.mandatory_param("price")
            params.check_price(spec, price)
            ref_price = price
        else:
            tif = "GTC"
            price = ZERO
            ref_price = market.best_ask if side == "BUY" else market.best_bid
        params.check_notional(spec, qty, ref_price, reduce_only)
        client_id = p.get("newClientOrderId") or f"sim_{self._next_order_id + 1}"
        if any(o.is_open and o.client_order_id == client_id for o in self.orders.values()):
            raise BinanceApiError(400, -4116, "ClientOrderId is duplicated.")
        if reduce_only and self._reduces(spec.symbol, side) == 0:
            raise errors.reduce_only_rejected()
        if not reduce_only:
            self._check_margin(spec, side, qty, ref_price)
        now = self.clock_ms()
        order = Order(
            order_id=self._order_id(),
            spec=spec,
            client_order_id=client_id,
            side=side,
            type=order_type,
            orig_type=order_type,
            time_in_force=tif,
            quantity=qty,
            price=price,
            reduce_only=reduce_only,
            time=now,
        )
        self.orders[order.order_id] = order
        ack = order.to_rest()
        self._accept_and_match(order, now)
        if order.is_open:
            self._working[order.order_id] = None
        return ack

    def _accept_and_match(self, order: Order, now: int) -> None:
        """Announce a new order and fill what is marketable now; the rest rests (or expires: IOC/FOK/GTX)."""
        market = self.markets[order.symbol]
        touch = market.best_ask if order.side == "BUY" else market.best_bid
        marketable = order.type == "MARKET" or (order.price >= touch if order.side == "BUY" else order.price <= touch)
        if marketable and order.time_in_force == "GTX":
            # A post-only order that would take liquidity is expired, not filled.
            self.emit(order.to_event("NEW", now))
            order.status = "EXPIRED"
            order.update_time = now
            self.emit(order.to_event("EXPIRED", now))
            return
        self.emit(order.to_event("NEW", now))
        if marketable:
            self._execute(order, touch, maker=False, ts=now)
        elif order.time_in_force in ("IOC", "FOK"):
            order.status = "EXPIRED"
            order.update_time = now
            self.emit(order.to_event("EXPIRED", now))

    def _execute(self, order: Order, price: Decimal, maker: bool, ts: int) -> None:
        """Fill an order's remaining quantity (reduce-only orders only what the position allows)."""
        qty = order.remaining
        if order.reduce_only:
            qty = min(qty, self._reduces(order.symbol, order.side))
        if qty > 0:
            self._fill(order, price, qty, maker, ts)
        if order.is_open and (order.reduce_only and self._reduces(order.symbol, order.side) == 0):
            order.status = "EXPIRED"
            order.update_time = ts
            self.emit(order.to_event("EXPIRED", ts))
        self._finish_algo_if_done(order, ts)

    def _fill(
        self,
        order: Order,
        price: Decimal,
        qty: Decimal,
        maker: bool,
        ts: int,
        exec_type: str = "TRADE",
        fee: Decimal | None = None,
    ) -> None:
        spec = order.spec
        if fee is None:
            fee = price * qty * (spec.maker_fee if maker else spec.taker_fee)
        realized = self._book_fill(spec.symbol, order.side, price, qty, fee, ts)
        self._next_trade_id += 1
        trade = Trade(self._next_trade_id, order.order_id, spec, order.side, price, qty, fee, realized, maker, ts)
        self.trades.append(trade)
        order.executed_qty += qty
        order.cum_quote += qty * price
        order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"
        order.update_time = ts
        self.emit(order.to_event(exec_type, ts, trade))
        self._account_update("ORDER", [spec.symbol], ts)
        if self.positions[spec.symbol].amount == 0:
            self._expire_reduce_only(spec.symbol, ts, keep=order.order_id)

    def _expire_reduce_only(self, symbol: str, ts: int, keep: int) -> None:
        """Binance expires resting reduce-only orders once their position is closed."""
        for o in list(self.orders.values()):
            if o.symbol == symbol and o.is_open and o.reduce_only and o.order_id != keep:
                o.status = "EXPIRED"
                o.update_time = ts
                self.emit(o.to_event("EXPIRED", ts))
                self._finish_algo_if_done(o, ts)

    def cancel_order(self, p: Params) -> dict[str, Any]:
        try:
            order = self._find_order(p)
        except BinanceApiError:
            raise errors.unknown_order() from None
        if not order.is_open:
            raise errors.unknown_order()
        now = self.clock_ms()
        order.status = "CANCELED"
        order.update_time = now
        self.emit(order.to_event("CANCELED", now))
        self._finish_algo_if_done(order, now)
        return order.to_rest()

    def modify_order(self, p: Params) -> dict[str, Any]:
        order = self._find_order(p)
        if not order.is_open:
            raise errors.unknown_order()
        if order.type != "LIMIT":
            raise BinanceApiError(400, -4302, "Order type does not support amend.")
        qty = params.decimal(p, "quantity", order.quantity)
        price = params.decimal(p, "price", order.price)
        assert qty is not None and price is not None
        params.check_quantity(order.spec, qty)
        params.check_price(order.spec, price)
        if qty <= order.executed_qty:
            raise BinanceApiError(400, -4003, "Quantity less than or equal to zero.")
        now = self.clock_ms()
        order.quantity, order.price, order.update_time = qty, price, now
        self.emit(order.to_event("AMENDMENT", now))
        market = self.markets[order.symbol]
        touch = market.best_ask if order.side == "BUY" else market.best_bid
        if order.price >= touch if order.side == "BUY" else order.price <= touch:
            self._execute(order, touch, maker=False, ts=now)
        return order.to_rest()

    def query_order(self, p: Params) -> dict[str, Any]:
        return self._find_order(p).to_rest()

    def open_orders(self, p: Params) -> list[dict[str, Any]]:
        spec = self._optional_spec(p)
        return [o.to_rest() for o in self.orders.values() if o.is_open and (spec is None or o.symbol == spec.symbol)]

    def all_orders(self, p: Params) -> list[dict[str, Any]]:
        spec = self._spec(p)
        start = params.integer(p, "startTime", 0) or 0
        end = params.integer(p, "endTime", 2**62) or 2**62
        limit = min(params.integer(p, "limit", 500) or 500, 1000)
        rows = [o for o in self.orders.values() if o.symbol == spec.symbol and start <= o.time <= end]
        return [o.to_rest() for o in rows[-limit:]]

    def user_trades(self, p: Params) -> list[dict[str, Any]]:
        spec = self._spec(p)
        start = params.integer(p, "startTime", 0) or 0
        end = params.integer(p, "endTime", 2**62) or 2**62
        limit = min(params.integer(p, "limit", 500) or 500, 1000)
        rows = [t for t in self.trades if t.spec.symbol == spec.symbol and start <= t.time <= end]
        return [t.to_rest() for t in rows[-limit:]]

    def cancel_all_orders(self, p: Params) -> dict[str, Any]:
        spec = self._spec(p)
        now = self.clock_ms()
        for order in list(self.orders.values()):
            if order.is_open and order.symbol == spec.symbol:
                order.status = "CANCELED"
                order.update_time = now
                self.emit(order.to_event("CANCELED", now))
                self._finish_algo_if_done(order, now)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def cancel_batch(self, p: Params) -> list[dict[str, Any]]:
        import json

        spec = self._spec(p)
        raw = p.get("origClientOrderIdList") or p.get("orderIdList")
        if not raw:
            raise errors.mandatory_param("orderIdList")
        try:
            ids = json.loads(raw)
        except ValueError:
            raise errors.mandatory_param("origClientOrderIdList") from None
        key = "origClientOrderId" if p.get("origClientOrderIdList") else "orderId"
        out: list[dict[str, Any]] = []
        for ident in ids:
            try:
                out.append(self.cancel_order({"symbol": spec.symbol, key: str(ident)}))
            except BinanceApiError as e:
                out.append(e.body())
        return out

    # --- conditional (algo) orders

    def new_algo_order(self, p: Params) -> dict[str, Any]:
        spec = self._spec(p)
        if p.get("algoType") != "CONDITIONAL":
            raise BinanceApiError(400, -1116, "Invalid algoType.")
        side = params.one_of(p, "side", SIDES)
        order_type = params.one_of(p, "type", ALGO_TYPES)
        self._check_position_side(p)
        working_type = params.one_of(p, "workingType", WORKING_TYPES, "CONTRACT_PRICE")
        tif = params.one_of(p, "timeInForce", TIFS, "GTC")
        close_position = params.boolean(p, "closePosition")
        reduce_only = params.boolean(p, "reduceOnly")
        trigger = params.decimal(p, "triggerPrice")
        if trigger is None:
            raise errors.mandatory_param("triggerPrice")
        params.check_price(spec, trigger)
        qty = params.decimal(p, "quantity")
        if close_position:
            if qty is not None or reduce_only:
                raise BinanceApiError(400, -1106, "Parameter 'reduceOnly' sent when not required.")
            qty = ZERO
        else:
            if qty is None:
                raise errors.mandatory_param("quantity")
            params.check_quantity(spec, qty)
        price = ZERO
        if not order_type.endswith("MARKET"):
            price = params.decimal(p, "price") or ZERO
            if price == 0:
                raise errors.mandatory_param("price")
            params.check_price(spec, price)
        if qty:
            params.check_notional(spec, qty, trigger, reduce_only)
        client_id = p.get("clientAlgoId") or f"sim_algo_{self._next_algo_id + 1}"
        if any(a.is_open and a.client_algo_id == client_id for a in self.algos.values()):
            raise BinanceApiError(400, -4116, "ClientOrderId is duplicated.")
        now = self.clock_ms()
        self._next_algo_id += 1
        algo = AlgoOrder(
            algo_id=self._next_algo_id,
            spec=spec,
            client_algo_id=client_id,
            side=side,
            order_type=order_type,
            time_in_force=tif,
            quantity=qty,
            price=price,
            trigger_price=trigger,
            working_type=working_type,
            reduce_only=reduce_only,
            close_position=close_position,
            create_time=now,
        )
        level = self._trigger_reference(algo)
        if touch_price(level, level, trigger, algo.triggers_upwards) is not None:
            raise errors.immediately_trigger()
        self.algos[algo.algo_id] = algo
        self._pending_algos[algo.algo_id] = None
        self.emit(algo.to_event(now))
        return algo.to_rest()

    def _trigger_reference(self, algo: AlgoOrder) -> Decimal:
        market = self.markets[algo.symbol]
        price = market.mark if algo.working_type == "MARK_PRICE" else market.last
        return price if price is not None else ZERO

    def cancel_algo_order(self, p: Params) -> dict[str, Any]:
        try:
            algo = self._find_algo(p)
        except BinanceApiError:
            raise errors.unknown_order() from None
        if algo.status != "NEW":
            raise errors.unknown_order()
        now = self.clock_ms()
        algo.status = "CANCELED"
        algo.update_time = now
        self.emit(algo.to_event(now))
        return {"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200", "msg": "success"}

    def query_algo_order(self, p: Params) -> dict[str, Any]:
        return self._find_algo(p).to_rest()

    def open_algo_orders(self, p: Params) -> list[dict[str, Any]]:
        spec = self._optional_spec(p)
        return [a.to_rest() for a in self.algos.values() if a.is_open and (spec is None or a.symbol == spec.symbol)]

    def all_algo_orders(self, p: Params) -> list[dict[str, Any]]:
        spec = self._spec(p)
        start = params.integer(p, "startTime", 0) or 0
        end = params.integer(p, "endTime", 2**62) or 2**62
        limit = min(params.integer(p, "limit", 500) or 500, 1000)
        rows = [a for a in self.algos.values() if a.symbol == spec.symbol and start <= a.create_time <= end]
        return [a.to_rest() for a in rows[-limit:]]

    def cancel_all_algo_orders(self, p: Params) -> dict[str, Any]:
        spec = self._spec(p)
        now = self.clock_ms()
        for algo in self.algos.values():
            if algo.status == "NEW" and algo.symbol == spec.symbol:
                algo.status = "CANCELED"
                algo.update_time = now
                self.emit(algo.to_event(now))
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def _trigger(self, algo: AlgoOrder, touch: Decimal, ts: int) -> None:
        spec = algo.spec
        algo.status = "TRIGGERING"
        algo.trigger_time = ts
        algo.update_time = ts
        self.emit(algo.to_event(ts))
        qty = algo.quantity
        room = self._reduces(algo.symbol, algo.side)
        if algo.close_position:
            qty = room
        if algo.reduce_only or algo.close_position:
            if room == 0:
                algo.status = "EXPIRED"
                algo.reject_reason = "Reduce Only reject"
                self.emit(algo.to_event(ts))
                return
            qty = min(qty, room)
        else:
            try:
                self._check_margin(spec, algo.side, qty, touch)
            except BinanceApiError:
                algo.status = "EXPIRED"
                algo.reject_reason = "Margin is insufficient"
                self.emit(algo.to_event(ts))
                return
        child = Order(
            order_id=self._order_id(),
            spec=spec,
            client_order_id=algo.client_algo_id,
            side=algo.side,
            type=algo.child_type,
            orig_type=algo.order_type,
            time_in_force=algo.time_in_force,
            quantity=qty,
            price=algo.price,
            reduce_only=algo.reduce_only or algo.close_position,
            time=ts,
            stop_price=algo.trigger_price,
            working_type=algo.working_type,
            close_position=algo.close_position,
            algo_id=algo.algo_id,
        )
        self.orders[child.order_id] = child
        algo.actual_order_id = str(child.order_id)
        self.emit(child.to_event("NEW", ts))
        if child.type == "MARKET":
            # The stop fires at the touch; a market order then takes the book on the adverse side of it.
            fill = spec.round_price_up(touch) if child.side == "BUY" else spec.round_price_down(touch)
            self._fill(child, fill, qty, maker=False, ts=ts)
        elif (child.side == "BUY" and child.price >= touch) or (child.side == "SELL" and child.price <= touch):
            self._fill(child, touch, qty, maker=False, ts=ts)
        algo.status = "TRIGGERED"
        self.emit_later(algo.to_event(ts), ALGO_REPORT_DELAYS_S[0])
        self._finish_algo_if_done(child, ts)

    def _finish_algo_if_done(self, order: Order, ts: int) -> None:
        if order.algo_id is None or order.is_open:
            return
        algo = self.algos[order.algo_id]
        if algo.status != "TRIGGERED":
            return
        algo.status = "FINISHED"
        algo.avg_price = order.avg_price
        algo.executed_qty = order.executed_qty
        algo.update_time = ts
        self.emit_later(algo.to_event(ts), ALGO_REPORT_DELAYS_S[1])

    # --- the market moves

    def on_step(self, step: Step, mark_start: Decimal, mark_end: Decimal) -> None:
        """Fill resting limits and fire conditional orders touched by the price move of one replay step."""
        symbol = step.symbol
        ts = self.clock_ms()
        hits: list[tuple[Decimal, int, Order | AlgoOrder, Decimal]] = []
        for order_id in list(self._working):
            order = self.orders[order_id]
            if not order.is_open:
                del self._working[order_id]
                continue
            if order.symbol != symbol or order.type != "LIMIT":
                continue
            touch = touch_price(step.start, step.end, order.price, up=order.side == "SELL")
            if touch is not None:
                hits.append((abs(touch - step.start), order.order_id, order, order.price))
        for algo_id in list(self._pending_algos):
            algo = self.algos[algo_id]
            if algo.status != "NEW":
                del self._pending_algos[algo_id]
                continue
            if algo.symbol != symbol:
                continue
            if algo.working_type == "MARK_PRICE":
                touch = touch_price(mark_start, mark_end, algo.trigger_price, algo.triggers_upwards)
                distance = abs(touch - mark_start) if touch is not None else ZERO
            else:
                touch = touch_price(step.start, step.end, algo.trigger_price, algo.triggers_upwards)
                distance = abs(touch - step.start) if touch is not None else ZERO
            if touch is not None:
                hits.append((distance, algo.algo_id, algo, touch))
        hits.sort(key=lambda h: (h[0], h[1]))
        for _, _, item, price in hits:
            if isinstance(item, AlgoOrder):
                if item.status == "NEW":
                    self._trigger(item, price, ts)
            elif item.is_open:
                self._execute(item, price, maker=True, ts=ts)
        self.check_liquidation(symbol, ts)

    # --- liquidation

    def check_liquidation(self, symbol: str, ts: int) -> None:
        """Liquidate at the mark price once margin falls to the maintenance margin: an isolated position on its
        own margin, cross positions on the account's cross equity."""
        pos = self.positions[symbol]
        if pos.amount == 0:
            return
        if pos.is_isolated:
            mark = self.mark(symbol)
            if pos.isolated_wallet + pos.unrealized(mark) <= pos.maint_margin(mark):
                self._liquidate(pos, ts)
            return
        cross = [p for s, p in self.positions.items() if not p.is_isolated and p.amount != 0]
        equity = self.wallet - self._isolated_wallets() + self._cross_unrealized()
        if equity <= sum((p.maint_margin(self.mark(p.spec.symbol)) for p in cross), ZERO):
            for p in cross:
                self._liquidate(p, ts)

    def _liquidate(self, pos: Position, ts: int) -> None:
        """Close the whole position at the mark with an ``autoclose-`` order reported as CALCULATED (Binance's
        liquidation); the clearance fee takes what margin is left, at most ``LIQUIDATION_FEE`` of the notional."""
        spec, price = pos.spec, self.mark(pos.spec.symbol)
        qty = abs(pos.amount)
        margin = pos.isolated_wallet if pos.is_isolated else self.wallet - self._isolated_wallets()
        left = margin + pos.unrealized(price)
        if left < 0:
            # The mark jumped past the bankruptcy price: the insurance fund takes the rest, the position loses
            # its margin and no more.
            shortfall = margin / qty
            price = pos.entry_price - shortfall if pos.amount > 0 else pos.entry_price + shortfall
            price = spec.round_price_up(price) if pos.amount > 0 else spec.round_price_down(price)
            left = max(ZERO, margin + pos.unrealized(price))
        fee = min(qty * price * LIQUIDATION_FEE, left)
        order = Order(
            order_id=self._order_id(),
            spec=spec,
            client_order_id=f"autoclose-{ts}{self._next_order_id % 1_000_000:06d}",
            side="SELL" if pos.amount > 0 else "BUY",
            type="LIMIT",
            orig_type="LIMIT",
            time_in_force="IOC",
            quantity=qty,
            price=price,
            reduce_only=True,
            time=ts,
        )
        self.orders[order.order_id] = order
        self.liquidations.append(order)
        self._fill(order, price, qty, maker=False, ts=ts, exec_type="CALCULATED", fee=fee)
