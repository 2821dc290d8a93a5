"""The trading strategy: periodic multi-factor scan, risk-sized entries, exchange-side exits, risk limits.

One class runs unchanged in a backtest and live. It reads as the recipe: each bar feeds the ``FactorBook``; at
a scan time (``ScanClock``) the open trades are adjusted and the best signals enter (``risk.check_entry``,
``exits.exit_levels``, ``sizing.position_size``); each entry fill places the stop, TP1 and TP2 on the exchange
(``TradeOrders``); TP1 moves the stop to break-even; a closed position books the trade (``trade.ending``).
The decisions are plain functions in those modules; this class is the Nautilus glue. Every handler runs in
``_guarded``: an error is logged, counted and published instead of stopping the node, and after an error in a
fill handler an unprotected position is closed. A close, a stop (after a ban, or while the stop it replaces
covers) or the cancel of an exit the exchange refuses is tried again (``_protection_failed``), with a wait from the
retry policy, until the position has its one stop or is closed with no exit left behind; meanwhile the symbol
takes no new entry.
"""

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

from nautilus_trader.adapters.binance.futures.types import BinanceFuturesMarkPriceUpdate
from nautilus_trader.common.component import LiveClock, TimeEvent
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import Bar, DataType, FundingRateUpdate, MarkPriceUpdate, QuoteTick
from nautilus_trader.model.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    PositionClosed,
)
from nautilus_trader.model.identifiers import ClientId, InstrumentId
from nautilus_trader.trading.strategy import Strategy

from factors.book import FactorBook
from factors.inputs import LiquidationFeedStatus, LiquidationUpdate, OpenInterest, bar_type_for
from factors.scoring import ScoreResult
from strategies import answers
from strategies.config import AtsStrategyConfig, RunMode
from strategies.control import CONTROL_ENDPOINT, ControlRequest
from strategies.exits import exit_levels
from strategies.funding import FundingClock, funding_payment
from strategies.keeper import ExitKeeper
from strategies.ledger import Counters, TradeRecord, ledger_rows
from strategies.market import Market
from strategies.notices import Notices
from strategies.orders import TradeOrders
from strategies.protection import GuardAction, StopAction, order_gone
from strategies.retry import DEFAULT_RETRY
from strategies.risk import DailyLossGuard, OpenExposure, check_entry
from strategies.scan import NANOS_PER_SECOND, ScanClock, scan_time
from strategies.sizing import InstrumentFilters, leverage_for_strength, position_size, to_decimal
from strategies.sync import ExchangeSync
from strategies.trade import (
    TAG_ENTRY,
    TAG_EXIT,
    TAG_FLATTEN,
    TAG_SL,
    TAG_TP1,
    TAG_TP2,
    Trade,
    Trades,
    order_role,
    parse_direction,
)

_SYNC_TIMER = "ats-sync"
_GUARD_TIMER = "ats-guard-"  # + the instrument id: the next look at a trade whose protection was refused


class AtsStrategy(Strategy):
    def __init__(self, config: AtsStrategyConfig) -> None:
        super().__init__(config)
        self.book: FactorBook | None = None
        self.market = Market()
        self.trades = Trades()
        self.daily = DailyLossGuard(limit=config.risk.daily_loss_limit_usdt)
        self.counters_ = Counters()
        self.records: list[TradeRecord] = []
        self.paused = False
        self.errors = 0
        self.is_live = False
        self.mode = "backtest" if config.mode == RunMode.AUTO else config.mode.value
        self.notices = Notices(self._publish, lambda: self.clock.timestamp_ns())
        self.scan_clock = ScanClock(config.scan, symbols=0)
        # the bar stamps whose bars begin no UTC day and no scan time (``_handle_bar_body``): empty until a bar
        self._quiet_from = self._quiet_until = 0
        self.orders = TradeOrders(self, self.market.instruments, config.exits.tp_order)
        self.keeper = ExitKeeper(self.orders, self.market, self.notices, self.counters_, config.exits, config.dynamic)
        self.refusals: dict[InstrumentId, int] = {}  # refusals in a row of what protects a symbol (``_guard``)
        self.sync = ExchangeSync(
            self.keeper,
            self.trades,
            config.manual_strength,
            self.records.append,
            lambda message: self.notices.node("RECONCILED", self.mode, message),
            repairing=self.refusals,
        )
        self._funding_clock = FundingClock()
        self.retry = DEFAULT_RETRY
        self._loop: asyncio.AbstractEventLoop | None = None  # live: the node's event loop

    # --- life cycle -----------------------------------------------------------------------------------------

    def on_start(self) -> None:
        self.is_live = isinstance(self.clock, LiveClock)
        if self.config.mode == RunMode.AUTO:
            self.mode = "live" if self.is_live else "backtest"
        self.market.load(self.config.instrument_ids, self.cache, self.log)
        self.book = self.market.factor_book(self.config.factors, self.config.btc_id, self.config.eth_id)
        self.book.eager = self.is_live  # live: each bar's factor work as it comes, not at the scan after the last
        self.scan_clock = ScanClock(self.config.scan, symbols=len(self.market.instruments))
        self._subscribe()
        self.msgbus.register(endpoint=CONTROL_ENDPOINT, handler=self._on_control)
        restart = self.config.sync.restart
        if restart is not None and restart.utc_day is not None and restart.day_start_equity is not None:
            self.daily.restore(restart.utc_day, restart.day_start_equity)  # the day's loss survives a restart
        if self.config.adopt_positions:
            with self._guarded("adopt"):
                self.sync.recover(self.config.sync, self.log)
        self.notices.node("STARTED", self.mode, f"{len(self.market.instruments)} symbols")
        if self.is_live:  # the trades against the cache, which Nautilus keeps in step with the exchange
            self._loop = asyncio.get_running_loop()
            self._sync()
            self.clock.set_timer(
                _SYNC_TIMER, timedelta(seconds=self.config.sync.interval_s), callback=self._on_sync_timer
            )

    def _on_timer_thread(self, work: Callable[[], None]) -> None:
        """Live timers fire on Nautilus's timer thread: the work runs on the event loop, between the handlers,
        never beside them. In a backtest timers fire in the engine's own loop: at once."""
        if self._loop is None:
            work()
        else:
            self._loop.call_soon_threadsafe(lambda: work() if self.is_running else None)

    def _on_sync_timer(self, _event: TimeEvent) -> None:
        self._on_timer_thread(self._sync)

    def _sync(self) -> None:
        with self._guarded("sync"):
            self.sync.run(self.log)
            self.sync.remember(self.clock.timestamp_ns())

    def _subscribe(self) -> None:
        live_streams = self.is_live and self.config.live_market_streams
        for instrument_id in self.market.instruments:
            bar_type = bar_type_for(instrument_id, self.config.bar_spec)
            self.subscribe_bars(bar_type)
            if not self.is_live:  # Binance live has no funding-rate subscription: the mark stream carries it
                self.subscribe_funding_rates(instrument_id)
            if not live_streams:  # live, the mark comes with the mark-price stream below (one subscription)
                self.subscribe_mark_prices(instrument_id)
            if live_streams:  # Binance live: funding rates come with the mark-price stream; quotes feed L
                mark_stream = DataType(BinanceFuturesMarkPriceUpdate, metadata={"instrument_id": instrument_id})
                self.subscribe_data(mark_stream, client_id=ClientId(instrument_id.venue.value))
                self.subscribe_quote_ticks(instrument_id)
            if self.config.warmup_bars > 0:
                self.request_bars(
                    bar_type, start=self.clock.utc_now() - bar_type.spec.timedelta * self.config.warmup_bars
                )
        # Published by the live node's own actors: listened to on the bus, there is no data client to ask.
        if self.is_live:
            self._listen(DataType(OpenInterest))  # polled by the live node
        if live_streams:  # streamed by the live node; a connected feed makes Q available (0 when quiet)
            self._listen(DataType(LiquidationUpdate))
            self._listen(DataType(LiquidationFeedStatus))

    def _listen(self, data_type: DataType) -> None:
        self.msgbus.subscribe(topic=f"data.{data_type.topic}", handler=self.handle_data)

    def on_stop(self) -> None:
        if _SYNC_TIMER in self.clock.timer_names:
            self.clock.cancel_timer(_SYNC_TIMER)
        self.sync.remember(self.clock.timestamp_ns())
        self.notices.node("STOPPED", self.mode, f"{self.trades.count()} trades open, exits left on the exchange")
        try:
            self.msgbus.deregister(endpoint=CONTROL_ENDPOINT, handler=self._on_control)
        except Exception as e:  # a second strategy instance may have replaced the endpoint
            self.log.warning(f"control endpoint: {e}")

    @contextmanager
    def _guarded(self, where: str, protect: InstrumentId | None = None) -> Iterator[None]:
        """Run a handler body; on error log it, count it and publish it instead of letting it stop the node.
        With ``protect``: then close every position of that instrument left without a working stop."""
        try:
            yield
        except Exception as e:
            self._failed(where, e, protect)

    def _failed(self, where: str, e: Exception, protect: InstrumentId | None = None) -> None:
        self.errors += 1
        self.log.exception(f"{where} failed", e)
        self.notices.node("ERROR", self.mode, f"{where}: {e!r}")
        if protect is not None:
            self.keeper.protect(protect, self.trades.open.get(protect), self.log)

    def _publish(self, event: Data) -> None:
        self.publish_data(DataType(type(event)), event)

    # --- market data ----------------------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        # _guarded spelled out: a generator-based context manager per bar cost 3 % of a backtest (py-spy)
        try:
            self._handle_bar_body(bar)
        except Exception as e:
            self._failed("on_bar", e)

    def _handle_bar_body(self, bar: Bar) -> None:
        instrument_id = self.market.on_bar(self.book, bar)
        ts_event = bar.ts_event
        if self._quiet_from <= ts_event < self._quiet_until:
            return  # 59 bars in 60 on 1m bars with hourly scans: the book has the bar, there is nothing else to do
        if self.daily.new_day(ts := scan_time(ts_event)):
            self.observe_daily(ts)
        step = self.scan_clock.on_bar(instrument_id, ts_event)
        if step is not None and step.new_scan_time:
            alert = self.scan_clock.grace_deadline(step.ts)
            self.clock.set_time_alert_ns(name=f"ats-scan-{step.ts}", alert_time_ns=alert, callback=self._on_scan_alert)
        if step is not None and step.scan_now:
            self._scan(step.ts)
        elif step is not None and self.book.eager:
            self.book.prepare(instrument_id)  # live: its values now, while the other bars come, not after the last
        quiet_from, quiet_until = self.scan_clock.quiet_stamps(ts)
        self._quiet_from, self._quiet_until = quiet_from, min(quiet_until, self.daily.day_end() - NANOS_PER_SECOND // 2)

    def _on_scan_alert(self, event: TimeEvent) -> None:
        self._on_timer_thread(self._scan_overdue)

    def _scan_overdue(self) -> None:
        ts = self.scan_clock.overdue()
        if ts is not None:
            with self._guarded("scan"):
                self._scan(ts)

    def on_historical_data(self, data: Data) -> None:
        """Warm-up bars requested at start (live): they feed the factors, never a scan."""
        with self._guarded("on_historical_data"):
            if isinstance(data, Bar) and data.bar_type.instrument_id in self.market.instruments:
                self.market.on_bar(self.book, data)

    def on_funding_rate(self, funding_rate: FundingRateUpdate) -> None:
        with self._guarded("on_funding_rate"):
            instrument_id, rate = funding_rate.instrument_id, float(Decimal(str(funding_rate.rate)))
            self.book.handle_funding_rate(instrument_id, rate, funding_rate.ts_event)
            self._book_funding(instrument_id, rate, self.market.close_of(instrument_id))

    def _book_funding(self, instrument_id: InstrumentId, rate: float, mark: float | None) -> None:
        trade = self.trades.open.get(instrument_id)
        position = self.orders.open_position(trade) if trade is not None else None
        if position is not None and mark is not None:
            # Same formula as the settlement module and Binance: longs pay when the rate is positive.
            trade.funding -= funding_payment(position.signed_qty, mark, rate)

    # The market-data handlers below run for every mark and quote of every symbol (live: several a second each):
    # _guarded spelled out, as in on_bar.

    def on_data(self, data: Data) -> None:
        try:
            if isinstance(data, BinanceFuturesMarkPriceUpdate):
                instrument_id, ts = data.instrument_id, data.ts_event
                mark, rate = data.mark.as_double(), float(data.funding_rate)
                self.book.handle_mark_price(instrument_id, mark, ts)
                self.book.handle_funding_rate(instrument_id, rate, ts)
                settled = self._funding_clock.update(instrument_id, rate, data.next_funding_ns)
                if settled is not None:
                    self._book_funding(instrument_id, settled, mark)
            else:
                self.market.on_input(self.book, data)
        except Exception as e:
            self._failed("on_data", e)

    def on_mark_price(self, mark_price: MarkPriceUpdate) -> None:
        try:
            self.book.handle_mark_price(mark_price.instrument_id, mark_price.value.as_double(), mark_price.ts_event)
        except Exception as e:
            self._failed("on_mark_price", e)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        try:
            self.book.handle_quote_tick(tick)
        except Exception as e:
            self._failed("on_quote_tick", e)

    # --- the recipe: scan -> entries -> levels -> size -> orders --------------------------------------------

    def _scan(self, ts: int) -> None:
        self.scan_clock.scanned(ts)
        self.observe_daily(ts)
        results = self.book.scan()
        if self.config.dynamic.enabled:
            by_id = {r.instrument_id: r for r in results}
            for trade in list(self.trades.open.values()):
                result = by_id.get(str(trade.instrument_id))
                if result is None and self.book.is_warm(trade.instrument_id):
                    result = self.book.score(trade.instrument_id)
                if result is not None:
                    with self._guarded("dynamic"):
                        self.keeper.adjust(trade, float(result.score))
        if self.scan_clock.entries_allowed():
            self._enter(results)

    def _enter(self, results: list[ScoreResult]) -> None:
        """The scan's entries: the signals strongest first, each checked, sized and sent, until the slots are
        full. This runs between the minute's last bar and its orders, so what a candidate that cannot enter costs
        is kept small: nothing when the slots are full, and the open exposures are listed once, again only after
        an entry was sent."""
        max_positions, min_score = self.config.risk.max_positions, self.config.min_score
        if self.trades.count() >= max_positions:
            return
        exposures = self.trades.exposures()
        ids, is_warm = self.market.ids, self.book.is_warm
        for result in results:
            if result.direction not in ("LONG", "SHORT") or result.strength < min_score:
                continue
            instrument_id = ids.get(result.instrument_id)
            if instrument_id is None or not is_warm(instrument_id):
                continue
            if self.trades.count() >= max_positions:
                break
            if not self._try_entry(instrument_id, result.direction, result, manual=False, exposures=exposures):
                exposures = self.trades.exposures()

    def manual_signal(self, symbol: str, side: str) -> dict[str, Any]:
        """The manual entry point (Telegram /signal, live CLI): the same sizing and risk checks as a scan."""
        instrument_id = self.market.resolve(symbol)
        if instrument_id is None:
            return {"accepted": False, "reason": f"{symbol} is not in the universe", "instrument": symbol}
        direction = parse_direction(side)
        if direction is None:
            reason = f"side must be long or short, not {side!r}"
            return {"accepted": False, "reason": reason, "instrument": str(instrument_id)}
        self.observe_daily(self.clock.timestamp_ns())
        result = self.book.score(instrument_id) if self.book.is_warm(instrument_id) else None
        reason = self._try_entry(instrument_id, direction, result, manual=True)
        return {"accepted": not reason, "reason": reason or "entry sent", "instrument": str(instrument_id)}

    def _try_entry(
        self,
        instrument_id: InstrumentId,
        direction: str,
        result: ScoreResult | None,
        manual: bool,
        exposures: list[OpenExposure] | None = None,
    ) -> str:
        """Send an entry if every check passes; return the refusal reason, or "" when the entry was sent.
        ``exposures``: the open and pending trades' (``Trades.exposures``), when the caller has them already."""
        if exposures is None:
            exposures = self.trades.exposures()
        reason = check_entry(
            instrument_id.value,
            direction,
            exposures,
            0,
            self.config.risk,
            self.paused,
            self.daily.hit,
            self._correlation,
        )
        # one symbol's close, read only for a candidate the checks let through (``Market.last_close`` lists all)
        price = None if reason else self.book.close_of(instrument_id)
        if not reason and price is None:
            reason = "no price yet for this symbol"
        if not reason and instrument_id in self.refusals:
            # an exit of the last trade would not cancel: a new position would have two stops, or be closed by it
            reason = "the exchange refused to cancel the last trade's exit orders; trying again first"
        if reason:
            return self._refuse(instrument_id, reason, manual)
        instrument = self.market.instruments[instrument_id]
        strength = float(result.strength) if result is not None else self.config.manual_strength
        factors, atr = self.market.factor_inputs(self.book, instrument_id, strength)
        levels = exit_levels(price, direction, factors, self.config.exits, atr)
        account = self.portfolio.account(instrument_id.venue)
        free = account.balance_free(instrument.quote_currency)
        equity, free = to_decimal(self.equity()), free.as_decimal() if free is not None else Decimal(0)
        free -= self.trades.reserved()  # entries sent and not filled yet hold their margin already
        leverage = leverage_for_strength(strength, self.config.sizing.max_leverage)
        filters, entry, stop = InstrumentFilters.of(instrument), to_decimal(price), to_decimal(levels.stop)
        decision = position_size(equity, free, entry, stop, leverage, filters, self.config.sizing)
        if not decision.accepted:
            return self._refuse(instrument_id, decision.reason, manual)
        if not self.is_live and hasattr(account, "set_leverage"):  # live leverage is set on the exchange
            account.set_leverage(instrument_id, Decimal(decision.leverage))
        order = self.orders.entry(instrument_id, direction, decision.quantity)
        score = float(result.score) if result is not None else 0.0
        trade = Trade(instrument_id, direction, strength, score, decision.leverage, factors, atr, levels, manual=manual)
        trade.entry_order_id = order.client_order_id
        trade.reserved = decision.margin * (1 + to_decimal(self.config.sizing.fee_rate))
        self.trades.pending[instrument_id] = trade
        self.notices.signal(trade, instrument, price, levels, result)
        self.submit_order(order)
        return ""

    def _refuse(self, instrument_id: InstrumentId, reason: str, announce: bool) -> str:
        self.counters_.add(str(instrument_id), "refused")
        if announce:
            self.notices.risk("SIGNAL_REFUSED", reason, instrument=str(instrument_id))
        return reason

    def _correlation(self, a: str, b: str) -> float | None:
        ids = self.market.ids
        a_id, b_id = ids.get(a) or InstrumentId.from_str(a), ids.get(b) or InstrumentId.from_str(b)
        return self.book.returns_correlation(a_id, b_id)

    def observe_daily(self, ts: int) -> None:
        """The daily loss limit: observed at each new day, scan, manual signal and position close."""
        self._quiet_from = self._quiet_until = 0  # the day may change: the next bar looks again
        event = self.daily.observe(ts, self.equity())
        if event == "HIT":
            self.log.warning(self.daily.hit_message())
            self.notices.risk("DAILY_LOSS_LIMIT", self.daily.hit_message(), self.daily.last_pnl, self.daily.limit, ts)
        elif event == "RESET":
            self.notices.risk("DAILY_LIMIT_RESET", "new UTC day: entries allowed again", limit=self.daily.limit, ts=ts)

    # --- fills: the exits of a trade ------------------------------------------------------------------------

    def on_order_filled(self, event: OrderFilled) -> None:
        with self._guarded("on_order_filled", protect=event.instrument_id):
            order = self.cache.order(event.client_order_id)
            if event.reconciliation:
                self.sync.note_fill(event, order)
            role = order_role(order, self.trades.open.get(order.instrument_id)) if order is not None else ""
            if role == TAG_ENTRY and order.is_closed and order.instrument_id in self.trades.pending:
                self._arm(self.trades.pending.pop(order.instrument_id), order, event.position_id)
            elif role == TAG_TP1 and order.is_closed and order.instrument_id in self.trades.open:
                self.keeper.tp1_filled(self.trades.open[order.instrument_id], event)

    def _arm(self, trade: Trade, entry: Any, position_id: Any) -> None:
        self.trades.open[trade.instrument_id] = trade
        self.daily.trades += 1
        if position_id is None:
            position = self.cache.position_for_order(entry.client_order_id)
            position_id = position.id if position is not None else None
        self.keeper.arm(trade, entry, position_id)
        self.sync.remember(self.clock.timestamp_ns())

    # --- orders accepted, orders that failed, positions that closed -----------------------------------------

    def on_order_accepted(self, event: OrderAccepted) -> None:
        with self._guarded("on_order_accepted", protect=event.instrument_id):
            trade = self.trades.open.get(event.instrument_id)
            if trade is not None and event.client_order_id == trade.stop_id:
                self.keeper.stop_accepted(trade)

    def on_order_rejected(self, event: OrderRejected) -> None:
        self._on_order_failed(event, f"rejected: {event.reason}")

    def on_order_denied(self, event: OrderDenied) -> None:
        self._on_order_failed(event, f"denied: {event.reason}")

    def on_order_canceled(self, event: OrderCanceled) -> None:
        self._on_order_failed(event, "canceled")

    def on_order_expired(self, event: OrderExpired) -> None:
        self._on_order_failed(event, "expired")

    def on_order_cancel_rejected(self, event: OrderCancelRejected) -> None:
        with self._guarded("on_order_cancel_rejected"):
            order = self.cache.order(event.client_order_id)
            if order is not None and order.is_open:
                # Often gone already (filled or expired while a stream was silent): ask the venue for its
                # state, so the cache stops listing it as working.
                self.query_order(order)
            if order is not None and order.is_reduce_only and not order_gone(str(event.reason)):
                # an exit that would not go: a stop being replaced (two stops, one sized for more than the
                # position), a target moved, or an exit of a closed trade (it would close the next position)
                self._protection_failed(event.instrument_id, f"cancel refused: {event.reason}")

    def _on_order_failed(self, event: Any, why: str) -> None:
        with self._guarded(f"on_order_{why.split(':')[0]}"):
            order = self.cache.order(event.client_order_id)
            if order is None:
                return
            instrument_id = order.instrument_id
            trade = self.trades.open.get(instrument_id)
            role = order_role(order, trade)
            if role == TAG_ENTRY:
                pending = self.trades.pending.pop(instrument_id, None)
                if pending is not None and order.filled_qty.as_double() > 0:
                    self._arm(pending, order, None)  # a partially filled entry still gets its exits
                elif pending is not None:
                    # The signal was announced: say why the entry did not happen, whoever asked for it.
                    self._refuse(instrument_id, f"the exchange did not take the entry: {why}", announce=True)
            elif trade is not None and role == TAG_SL and order.client_order_id == trade.stop_id:
                if self.keeper.stop_lost(trade, why, self.log) == StopAction.RETRY_LATER:
                    self._protection_failed(instrument_id, why)
            elif trade is not None and role in (TAG_EXIT, TAG_FLATTEN) and trade.exit_intent:
                self._protection_failed(instrument_id, why)  # our close at market did not happen
            elif trade is not None and role in (TAG_TP1, TAG_TP2) and why.startswith(("rejected", "denied")):
                self._protection_failed(instrument_id, why)  # a take-profit refused: placed again after a wait

    # --- protection refused: try again until the position has its stop or is closed ------------------------

    def _protection_failed(self, instrument_id: InstrumentId, why: str) -> None:
        """A close at market, a stop, or the cancel of an exit was refused: look again after the retry policy's
        wait, or at the end of the ban the refusal names (``_guard``); once the quick tries are spent, keep going
        at the slow pace and alert the trader."""
        failures = self.refusals[instrument_id] = self.refusals.get(instrument_id, 0) + 1
        self.log.warning(f"{instrument_id}: {why}; trying again ({failures} refused in a row)")
        if self.retry.alert_due(failures):
            trade = self.trades.open.get(instrument_id)
            self.keeper.alert(instrument_id, trade, failures, why, self.mode, self.retry.slow_s, self.log)
        now_ms = self.clock.timestamp_ns() // 1_000_000
        self._look_again(instrument_id, self.retry.wait_s(failures, why, now_ms))

    def _look_again(self, instrument_id: InstrumentId, delay_s: float) -> None:
        name = f"{_GUARD_TIMER}{instrument_id}"
        if name in self.clock.timer_names:
            self.clock.cancel_timer(name)
        alert_ns = self.clock.timestamp_ns() + int(delay_s * 1e9)
        self.clock.set_time_alert_ns(name=name, alert_time_ns=alert_ns, callback=self._on_guard_alert)

    def _on_guard_alert(self, event: TimeEvent) -> None:
        instrument_id = InstrumentId.from_str(event.name.removeprefix(_GUARD_TIMER))
        self._on_timer_thread(lambda: self._guard(instrument_id))

    def _guard(self, instrument_id: InstrumentId) -> None:
        with self._guarded("guard"):
            trade = self.trades.open.get(instrument_id)
            if self.keeper.guard(instrument_id, trade, self.log) == GuardAction.DONE:
                failures = self.refusals.pop(instrument_id, 0)
                if self.retry.exhausted(failures):
                    now = f"one stop at {trade.stop_price}" if trade is not None else "flat, no exit order left"
                    self.notices.node("RECONCILED", self.mode, f"{instrument_id.symbol}: protected again, {now}")
                return
        # An order went out or one is on its way (or the look failed): look again once it must have been answered
        # (a refusal sets its own wait; until the look finds the symbol protected, it takes no new entry).
        if instrument_id in self.refusals:
            self._look_again(instrument_id, self.retry.delay_s(1))

    def on_position_closed(self, event: PositionClosed) -> None:
        with self._guarded("on_position_closed"):
            instrument_id = event.instrument_id
            trade = self.trades.open.get(instrument_id)
            if trade is None:
                self.orders.cancel_exits(instrument_id)  # a position we did not track: leave no exit order behind
                return
            if trade.position_id is not None and trade.position_id != event.position_id:
                return  # another position (HEDGING) closed: the open trade keeps its exits
            del self.trades.open[instrument_id]
            self.sync.remember(self.clock.timestamp_ns())
            self.orders.cancel_exits(instrument_id)
            self.records.append(self.keeper.ended(trade, event))
            self.observe_daily(event.ts_event)

    # --- the desk: control commands and what the reports read -----------------------------------------------

    def _on_control(self, request: ControlRequest) -> None:
        answers.serve(self, request, self.clock.timestamp_ns(), self.log)

    def control(self, command: str, args: tuple[str, ...] = ()) -> dict[str, Any]:
        return answers.answer(self, command, args, self.clock.timestamp_ns())

    def equity(self) -> float:
        return self.market.equity(self.portfolio, self.cache)

    def wallet(self) -> float:
        return self.market.wallet(self.portfolio)

    def balance(self) -> dict[str, Any]:
        return self.market.balance(self.portfolio)

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self.notices.risk("PAUSED" if paused else "RESUMED", "paused" if paused else "resumed")

    def positions(self) -> list[dict[str, Any]]:
        return answers.position_rows(self.trades.open.values(), self.orders.open_position, self.market)

    def flatten(self) -> dict[str, Any]:
        """Emergency close-all: every position at market, then every open order cancelled."""
        return self.keeper.flatten(self.trades)

    def ledger(self, include_open: bool = True) -> list[dict[str, Any]]:
        """Closed trades; with ``include_open`` the open ones too, marked at the last price (END_OF_DATA)."""
        trades = self.trades.open.values() if include_open else ()
        now = self.clock.timestamp_ns()
        return ledger_rows(
            self.records, trades, self.orders.open_position, self.market.instruments, self.market.last_close, now
        )

    def counters(self) -> dict[str, Any]:
        return self.counters_.as_dict()

    def open_trades(self) -> dict[str, Trade]:
        return {str(k): v for k, v in self.trades.open.items()}

    @property
    def scans(self) -> int:
        return self.scan_clock.scans
