"""``ExchangeSync`` keeps the strategy's trades in step with the positions and orders of the node's cache.

Nautilus keeps the cache in step with the exchange (reconciliation after a reconnect, periodic position and
open-order checks: ``nodes/live/config.py``). This collaborator, run live on a timer and once at start, reads
each symbol of the universe from the cache, asks ``audit.plan_repairs`` what is out of step, applies the
repairs through the ``ExitKeeper`` (book a ghost, adopt, re-arm, break-even after a missed TP1, cancel a
second stop or orphan reduce-only orders), and publishes one ``NodeEvent("RECONCILED")`` naming what was
repaired, with the fills that reconciliation applied (fills the streams lost). A symbol whose protection the
strategy is already repairing after a refusal (``repairing``: waiting for a ban's end, say) is left to it: a
repair decided meanwhile would undo the strategy's (resize the old stop where a break-even one is due).
"""

from collections.abc import Callable, Container
from typing import Any

from nautilus_trader.common.config import NautilusConfig, PositiveFloat
from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId
from nautilus_trader.model.orders import Order

from strategies.audit import OrderView, Repair, RepairKind, SymbolView, TradeView, plan_repairs
from strategies.downtime import RestartFacts, downtime_outcome
from strategies.keeper import ExitKeeper
from strategies.ledger import TradeRecord
from strategies.memory import TradeMemo, TradeMemory, load
from strategies.trade import Trade, Trades, order_role

SETTLE_NS = 2_000_000_000  # what the cache learnt this recently may not have reached the strategy yet


class SyncConfig(NautilusConfig, frozen=True):
    """Live only. interval_s: how often the trades are compared with the cache (no request to the exchange);
    memory_path: the file the open trades are remembered in across restarts (the live node sets it);
    restart: what the live node found on the exchange before it started (never set by hand)."""

    interval_s: PositiveFloat = 5.0
    memory_path: str | None = None
    restart: RestartFacts | None = None


def describe_fill(order: Order, role: str, fill: OrderFilled) -> str:
    what = role.removeprefix("ATS:") or order.order_type.name
    return f"{fill.order_side.name} {fill.last_qty} @ {fill.last_px} ({what})"


class ExchangeSync:
    def __init__(
        self,
        keeper: ExitKeeper,
        trades: Trades,
        strength: float,
        book: Callable[[TradeRecord], None],
        publish: Callable[[str], None],
        repairing: Container[InstrumentId] = (),
    ) -> None:
        self.keeper = keeper
        self.trades = trades
        self.strength = strength  # of an adopted position: its entry's strength is gone
        self.book = book  # the ledger of closed trades
        self.publish = publish  # one message naming the repairs
        self.repairing = repairing  # symbols the strategy is repairing itself after a refusal
        self.notes: list[str] = []
        self.repairs = 0
        self.memory: TradeMemory | None = None

    def symbol(self, instrument_id: InstrumentId) -> str:
        instrument = self.keeper.market.instruments.get(instrument_id)
        return instrument.raw_symbol.value if instrument is not None else instrument_id.symbol.value

    @property
    def cache(self) -> Any:
        return self.keeper.orders.strategy.cache

    def note_fill(self, event: OrderFilled, order: Order | None) -> None:
        """A fill applied by reconciliation: the streams lost it."""
        if order is not None:
            role = order_role(order, self.trades.open.get(order.instrument_id))
            self.notes.append(
                f"{self.symbol(order.instrument_id)}: missed fill applied, {describe_fill(order, role, event)}"
            )

    # --- restart ---------------------------------------------------------------------------------------------

    def recover(self, config: SyncConfig, log: Any) -> None:
        """At start: every open position of the universe becomes a trade again (as remembered, when it was);
        every remembered trade whose position is gone is booked from the exchange's fills. The sync that follows
        puts the exits right (break-even after a TP1 nobody saw, one stop, no orphan)."""
        memos: dict[InstrumentId, TradeMemo] = {}
        if config.memory_path is not None:
            saved_ns, remembered = load(config.memory_path)
            memos = {m.instrument_id: m for m in remembered}
            self.memory = TradeMemory(config.memory_path)
        fills = config.restart.fills if config.restart is not None else ()
        for instrument_id, instrument in self.keeper.market.instruments.items():
            positions = self.cache.positions_open(instrument_id=instrument_id)
            memo = memos.get(instrument_id)
            if positions:
                trade = self.keeper.adopt(instrument, positions[0], self.strength, log, memo)
                self.trades.open[instrument_id] = trade
            elif memo is not None:
                self._closed_while_down(memo, [f for f in fills if f.instrument == memo.instrument])

    def _closed_while_down(self, memo: TradeMemo, fills: list[Any]) -> None:
        symbol = self.symbol(memo.instrument_id)
        outcome = downtime_outcome(memo.direction, memo.quantity, memo.opened_ns // 1_000_000 - 1_000, fills)
        if not outcome.closed:
            self.notes.append(f"{symbol}: the {memo.direction} trade is gone and no closing fill was found; not booked")
            return
        instrument = self.keeper.market.instruments[memo.instrument_id]
        levels = memo.exit_levels()
        trade = Trade(
            instrument_id=memo.instrument_id,
            direction=memo.direction,
            strength=memo.strength,
            score=0.0,
            leverage=memo.leverage,
            factors=memo.factors(),
            atr=None,
            planned=levels,
            levels=levels,
            entry=memo.entry,
            opened_ns=memo.opened_ns,
            tp1_done=outcome.tp1_filled,
            funding=memo.funding,
        )
        pnl = outcome.realized_pnl + memo.funding
        self.keeper.notices.closed(
            trade, instrument, outcome.exit_time_ns, outcome.exit_price, memo.quantity, pnl, outcome.reason
        )
        self.book(
            TradeRecord.of_trade(
                trade, outcome.exit_time_ns, outcome.exit_price, memo.quantity, pnl, outcome.commissions, outcome.reason
            )
        )
        self.keeper.counters.add(str(memo.instrument_id), "stops" if outcome.reason != "TP1+TP2" else "tp2")
        price = instrument.make_price(outcome.exit_price)
        self.notes.append(
            f"{symbol}: the {memo.direction} trade closed while the node was down ({outcome.reason} at {price}, "
            f"PnL {pnl:+.2f}); booked"
        )

    def remember(self, now_ns: int) -> None:
        """Write the open trades to the memory file (when there is one and they changed)."""
        if self.memory is not None:
            self.memory.save(list(self.trades.open.values()), now_ns)

    # --- the sync ----------------------------------------------------------------------------------------------

    def view(self, instrument_id: InstrumentId) -> SymbolView:
        cache = self.cache
        positions = cache.positions_open(instrument_id=instrument_id)
        working = tuple(
            OrderView(
                order_id=o.client_order_id.value,
                reduce_only=o.is_reduce_only,
                is_stop=o.order_type == OrderType.STOP_MARKET,
                quantity=o.leaves_qty.as_double(),
                trigger=o.trigger_price.as_double() if o.has_trigger_price else 0.0,
            )
            for o in cache.orders_open(instrument_id=instrument_id)
            if not o.is_pending_cancel and o.venue_order_id is not None
        )
        trade = self.trades.open.get(instrument_id)
        trade_view = (
            TradeView(
                trade.direction, float(trade.quantity), trade.tp1_done, trade.stop_id.value if trade.stop_id else None
            )
            if trade is not None
            else None
        )
        # An order not yet accepted (just submitted, even not sent yet) or being cancelled or modified; or an
        # order or position event younger than SETTLE_NS: its events may still be on their way to the strategy.
        orders = cache.orders(instrument_id=instrument_id)
        settled = self.keeper.orders.strategy.clock.timestamp_ns() - SETTLE_NS
        busy = (
            any(not o.is_closed and (not o.is_open or o.is_inflight) for o in orders)
            or any(o.last_event.ts_init > settled for o in orders)
            or any(p.last_event.ts_init > settled for p in cache.positions(instrument_id=instrument_id))
            or instrument_id in self.trades.pending
            or (trade is not None and bool(trade.exit_intent))
            or instrument_id in self.repairing
        )
        return SymbolView(str(instrument_id), sum(p.signed_qty for p in positions), trade_view, working, busy=busy)

    def run(self, log: Any) -> int:
        """Compare every symbol of the universe and repair; publish what was done. Returns the repairs."""
        done = 0
        for instrument_id in self.keeper.market.instruments:
            for repair in plan_repairs(self.view(instrument_id)):
                try:
                    self._apply(instrument_id, repair, log)
                    done += 1
                except Exception as e:  # one symbol's failure must not stop the others' repairs
                    log.exception(f"{instrument_id}: {repair.kind} failed", e)
                    self.notes.append(f"{instrument_id.symbol}: {repair.kind.lower()} failed: {e!r}")
        self.repairs += done
        self.flush()
        return done

    def flush(self) -> None:
        if self.notes:
            message, self.notes = "\n".join(self.notes), []
            self.publish(message)

    def _apply(self, instrument_id: InstrumentId, repair: Repair, log: Any) -> None:
        keeper, symbol = self.keeper, self.symbol(instrument_id)
        for order_id in repair.cancel:
            order = self.cache.order(ClientOrderId(order_id))
            if order is not None and order.is_open:
                keeper.orders.strategy.cancel_order(order)
        if repair.kind == RepairKind.GHOST:
            trade = self.trades.open.pop(instrument_id, None)
            if trade is None:
                return
            position = keeper.orders.position(trade)
            if position is not None and position.is_closed:
                self.book(keeper.ended(trade, position))
                self.notes.append(f"{symbol}: the position closed on the exchange; trade booked")
            else:
                self.notes.append(f"{symbol}: no position on the exchange; the trade was dropped")
        elif repair.kind == RepairKind.ADOPT:
            position = self.cache.positions_open(instrument_id=instrument_id)[0]
            instrument = keeper.market.instruments[instrument_id]
            self.trades.open[instrument_id] = keeper.adopt(instrument, position, self.strength, log)
            self.notes.append(f"{symbol}: open {position.side.name} {position.quantity} taken over")
        elif repair.kind == RepairKind.REARM:
            trade = self.trades.open[instrument_id]
            keeper.rearm(trade, keeper.orders.open_position(trade))
            self.notes.append(f"{symbol}: no stop on the exchange; stop re-armed at {trade.stop_price}")
        elif repair.kind == RepairKind.TP1_MISSED:
            trade = self.trades.open[instrument_id]
            trade.stop_id = None  # cancelled above: the break-even stop replaces them all
            keeper.tp1_seen_late(trade)
            self.notes.append(f"{symbol}: TP1 had filled; stop moved to break-even {trade.stop_price}")
        elif repair.kind == RepairKind.EXTRA_STOPS:
            trade = self.trades.open[instrument_id]
            trade.stop_id = ClientOrderId(repair.keep_stop)
            self.notes.append(f"{symbol}: {len(repair.cancel)} extra stop(s) cancelled, one stop kept")
        elif repair.kind == RepairKind.RESIZE_STOP:
            trade = self.trades.open[instrument_id]
            trade.stop_id = ClientOrderId(repair.keep_stop)
            stop = self.cache.order(trade.stop_id)
            trade.stop_price = stop.trigger_price.as_double()
            position = keeper.orders.open_position(trade)
            keeper.orders.replace_stop(trade, trade.stop_price, position.quantity.as_decimal(), trade.stop_kind)
            self.notes.append(f"{symbol}: stop resized to the position, {position.quantity}")
        elif repair.kind == RepairKind.ORPHANS:
            self.notes.append(f"{symbol}: no position; {len(repair.cancel)} reduce-only order(s) cancelled")
