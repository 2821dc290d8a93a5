"""The trading strategy: periodic multi-factor scan, risk-sized entries, exchange-side exits, risk limits.

One class runs unchanged in a backtest and live. The math lives in plain modules (``exits``, ``sizing``,
``risk``); this class wires it to Nautilus: it feeds the ``FactorBook`` with bars, scans once per scan time,
sends market entries and, on each fill, keeps three reduce-only orders on the exchange (stop for the whole
position, TP1 and TP2 for a half each). Every handler is guarded: an exception in a live handler would stop
the node, so errors are logged, published as a ``NodeEvent`` and, where a position is involved, the position
is re-protected or closed.

Two concerns live in mixins of the class, each in its own module: ``adoption.py`` takes over the positions
found open at start, ``answers.py`` answers the control commands and the reports' reads (``ledger``, ``counters``).
"""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from nautilus_trader.adapters.binance.futures.types import BinanceFuturesMarkPriceUpdate
from nautilus_trader.common.component import LiveClock
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import Bar, BarType, DataType, FundingRateUpdate, MarkPriceUpdate, QuoteTick
from nautilus_trader.model.enums import OrderSide, OrderType, TimeInForce
from nautilus_trader.model.events import (
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    PositionClosed,
)
from nautilus_trader.model.identifiers import ClientId, InstrumentId, Venue
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.orders import Order
from nautilus_trader.model.position import Position
from nautilus_trader.trading.strategy import Strategy

from catalog.instruments import VENUE
from factors.book import FactorBook
from factors.inputs import bar_type_for
from strategies.adoption import PositionAdoption
from strategies.answers import ControlAnswers
from strategies.config import AtsStrategyConfig, RunMode
from strategies.control import CONTROL_ENDPOINT
from strategies.events import (
    EntryFilledEvent,
    ExitEvent,
    LiquidationFeedStatus,
    LiquidationUpdate,
    NodeEvent,
    OpenInterestUpdate,
    PositionClosedEvent,
    RiskEvent,
    SignalEvent,
)
from strategies.exits import DynamicKind, FactorInputs, TargetOrder, dynamic_adjustment, exit_levels
from strategies.funding import FundingClock, funding_payment
from strategies.ledger import Counters, TradeRecord
from strategies.risk import DailyLossGuard, OpenExposure, check_entry
from strategies.scan import ScanEntries
from strategies.sizing import InstrumentFilters, leverage_for_strength, position_size, split_quantity
from strategies.trade import (
    STOP_BREAKEVEN,
    STOP_DYNAMIC,
    STOP_INITIAL,
    TAG_ENTRY,
    TAG_EXIT,
    TAG_FLATTEN,
    TAG_SL,
    TAG_TP1,
    TAG_TP2,
    Trade,
    order_kind,
)

NANOS_PER_MINUTE = 60_000_000_000


class AtsStrategy(ControlAnswers, PositionAdoption, Strategy):
    def __init__(self, config: AtsStrategyConfig) -> None:
        super().__init__(config)
        self.instrument_ids = list(config.instrument_ids)
        self.book: FactorBook | None = None
        self.paused = False
        self.daily = DailyLossGuard(limit=config.risk.daily_loss_limit_usdt)
        self.counters_ = Counters()
        self._records: list[TradeRecord] = []
        self._trades: dict[InstrumentId, Trade] = {}  # open trades (entry filled)
        self._pending: dict[InstrumentId, Trade] = {}  # entry sent, not filled yet
        self._instruments: dict[InstrumentId, Instrument] = {}
        self._last_close: dict[InstrumentId, float] = {}
        self._interval_ns = config.scan.interval_minutes * NANOS_PER_MINUTE
        self._scan_seen: set[InstrumentId] = set()
        self._scan_pending_ts = -1
        self._last_scan_ts = -1
        self._day = -1
        self._daily_trades = 0
        self.errors = 0
        self.scans = 0
        self.is_live = False
        self.mode = "backtest" if config.mode == RunMode.AUTO else config.mode.value
        self._set_leverage = False
        self._funding_clock = FundingClock()

    # --- life cycle -----------------------------------------------------------------------------------------

    def on_start(self) -> None:
        self.is_live = isinstance(self.clock, LiveClock)
        if self.config.mode == RunMode.AUTO:
            self.mode = "live" if self.is_live else "backtest"
        # Binance live has no funding-rate subscription, and live leverage is set on the exchange at connect.
        subscribe_funding = not self.is_live
        self._set_leverage = not self.is_live
        for instrument_id in self.instrument_ids:
            instrument = self.cache.instrument(instrument_id)
            if instrument is None:
                self.log.error(f"{instrument_id}: instrument not in the cache, left out of the universe")
                continue
            self._instruments[instrument_id] = instrument
        universe = list(self._instruments)
        # Factor I (independence) measures against BTC and ETH: only when they are in the universe too.
        btc, eth = self.config.btc_id, self.config.eth_id
        self.book = FactorBook(
            self.config.factors,
            universe,
            btc if btc in self._instruments else None,
            eth if eth in self._instruments else None,
        )
        for instrument_id in universe:
            self.subscribe_bars(self._bar_type(instrument_id))
            if subscribe_funding:
                self.subscribe_funding_rates(instrument_id)
            self.subscribe_mark_prices(instrument_id)
            if self.is_live and self.config.live_market_streams:
                # Binance live: funding rates come with the mark-price stream; quotes feed liquidity (L).
                self.subscribe_data(
                    DataType(BinanceFuturesMarkPriceUpdate, metadata={"instrument_id": instrument_id}),
                    client_id=ClientId(instrument_id.venue.value),
                )
                self.subscribe_quote_ticks(instrument_id)
            if self.config.warmup_bars > 0:
                bar_type = self._bar_type(instrument_id)
                span = bar_type.spec.timedelta * self.config.warmup_bars
                self.request_bars(bar_type, start=self.clock.utc_now() - span)
        if self.is_live:
            self.subscribe_data(DataType(OpenInterestUpdate))  # polled by the live node (nodes/live/open_interest.py)
        if self.is_live and self.config.live_market_streams:
            # Streamed by the live node (nodes/live/liquidations.py); off with the other live-only market inputs, as
            # backtests have no liquidations: a connected feed makes Q available (0 when quiet) and moves scores.
            self.subscribe_data(DataType(LiquidationUpdate))
            self.subscribe_data(DataType(LiquidationFeedStatus))
        self.msgbus.register(endpoint=CONTROL_ENDPOINT, handler=self._on_control)
        if self.config.adopt_positions:
            self._guard("adopt", self._adopt_open_positions)
        self._publish(
            NodeEvent(
                kind="STARTED",
                mode=self.mode,
                message=f"{len(universe)} symbols",
                ts_event=self.clock.timestamp_ns(),
                ts_init=self.clock.timestamp_ns(),
            )
        )

    def on_stop(self) -> None:
        try:
            self.msgbus.deregister(endpoint=CONTROL_ENDPOINT, handler=self._on_control)
        except Exception as e:  # a second strategy instance may have replaced the endpoint
            self.log.warning(f"control endpoint: {e}")

    def _bar_type(self, instrument_id: InstrumentId) -> BarType:
        return bar_type_for(instrument_id, self.config.bar_spec)

    # --- guard ----------------------------------------------------------------------------------------------

    def _guard(self, where: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a handler body; on error log it and publish it instead of letting it stop the node."""
        try:
            return fn(*args)
        except Exception as e:
            self.errors += 1
            self.log.exception(f"{where} failed", e)
            now = self.clock.timestamp_ns()
            self._publish(NodeEvent(kind="ERROR", mode=self.mode, message=f"{where}: {e!r}", ts_event=now, ts_init=now))
            return None

    def _publish(self, event: Data) -> None:
        self.publish_data(DataType(type(event)), event)

    # --- market data ----------------------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        try:
            instrument_id = bar.bar_type.instrument_id
            self.book.handle_bar(bar)
            self._last_close[instrument_id] = bar.close.as_double()
            # Live Binance klines are stamped at close_time = open + interval - 1 ms, catalogued ones at the
            # round close: both name the same scan time once rounded to the second.
            ts = (bar.ts_event + 500_000_000) // 1_000_000_000 * 1_000_000_000
            if ts // 86_400_000_000_000 != self._day:
                self._on_new_day(ts)
            first = self.config.scan.entries == ScanEntries.FIRST_SCAN and not self.scans
            if ts > self._last_scan_ts and (ts % self._interval_ns == 0 or first):
                self._note_scan_bar(instrument_id, ts)
        except Exception as e:
            self._guard_error("on_bar", e)

    def _guard_error(self, where: str, e: Exception) -> None:
        def reraise() -> None:
            raise e

        self._guard(where, reraise)

    def _note_scan_bar(self, instrument_id: InstrumentId, ts: int) -> None:
        """Scan once per scan time, after every symbol's bar for that time, or after a grace period (live)."""
        if ts != self._scan_pending_ts:
            self._scan_pending_ts = ts
            self._scan_seen = set()
            if len(self._instruments) > 1:
                self.clock.set_time_alert_ns(
                    name=f"ats-scan-{ts}",
                    alert_time_ns=ts + self.config.scan.grace_ms * 1_000_000,
                    callback=self._on_scan_alert,
                )
        self._scan_seen.add(instrument_id)
        if len(self._scan_seen) >= len(self._instruments):
            self._scan(ts)

    def _on_scan_alert(self, event: Any) -> None:
        if self._scan_pending_ts > self._last_scan_ts:
            self._guard("scan", self._scan, self._scan_pending_ts)

    def on_historical_data(self, data: Data) -> None:
        """Warm-up bars requested at start (live): they feed the factors, never a scan."""
        try:
            if isinstance(data, Bar) and data.bar_type.instrument_id in self._instruments:
                self.book.handle_bar(data)
                self._last_close[data.bar_type.instrument_id] = data.close.as_double()
        except Exception as e:
            self._guard_error("on_historical_data", e)

    def on_funding_rate(self, funding_rate: FundingRateUpdate) -> None:
        try:
            rate = float(Decimal(str(funding_rate.rate)))
            self.book.handle_funding_rate(funding_rate.instrument_id, rate, funding_rate.ts_event)
            self._book_funding(funding_rate.instrument_id, rate, self._last_close.get(funding_rate.instrument_id))
        except Exception as e:
            self._guard_error("on_funding_rate", e)

    def _book_funding(self, instrument_id: InstrumentId, rate: float, mark: float | None) -> None:
        trade = self._trades.get(instrument_id)
        position = self._position(trade) if trade is not None else None
        if position is not None and position.is_open and mark is not None:
            # Same formula as the settlement module and Binance: longs pay when the rate is positive.
            trade.funding -= funding_payment(position.signed_qty, mark, rate)

    def on_data(self, data: Data) -> None:
        try:
            if isinstance(data, BinanceFuturesMarkPriceUpdate):
                instrument_id, ts = data.instrument_id, data.ts_event
                mark, rate = data.mark.as_double(), float(data.funding_rate)
                self.book.handle_mark_price(instrument_id, mark, ts)
                self.book.handle_funding_rate(instrument_id, rate, ts)
                settled = self._funding_clock.update(str(instrument_id), rate, data.next_funding_ns)
                if settled is not None:
                    self._book_funding(instrument_id, settled, mark)
            elif isinstance(data, OpenInterestUpdate):
                instrument_id = InstrumentId.from_str(data.instrument)
                if instrument_id in self._instruments and data.value > 0:
                    self.book.handle_open_interest(instrument_id, data.value, data.ts_event)
            elif isinstance(data, LiquidationUpdate):
                instrument_id = InstrumentId.from_str(data.instrument)
                if instrument_id in self._instruments:
                    self.book.handle_liquidation(instrument_id, data.side, data.quantity, data.price, data.ts_event)
            elif isinstance(data, LiquidationFeedStatus):
                self.book.set_liquidation_feed(data.connected)  # a quiet live feed is Q = 0, a lost one is missing
        except Exception as e:
            self._guard_error("on_data", e)

    def on_mark_price(self, mark_price: MarkPriceUpdate) -> None:
        try:
            self.book.handle_mark_price(mark_price.instrument_id, mark_price.value.as_double(), mark_price.ts_event)
        except Exception as e:
            self._guard_error("on_mark_price", e)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        try:
            self.book.handle_quote_tick(tick)
        except Exception as e:
            self._guard_error("on_quote_tick", e)

    # --- scan, entries --------------------------------------------------------------------------------------

    def _scan(self, ts: int) -> None:
        self._last_scan_ts = ts
        self.scans += 1
        self._update_daily(ts)
        results = self.book.scan()
        if self.config.dynamic.enabled:
            by_id = {r.instrument_id: r for r in results}
            for trade in list(self._trades.values()):
                result = by_id.get(str(trade.instrument_id))
                if result is None and self.book.is_warm(trade.instrument_id):
                    result = self.book.score(trade.instrument_id)
                if result is not None:
                    self._guard("dynamic", self._adjust_open_trade, trade, result)
        if self.config.scan.entries == ScanEntries.NONE or (
            self.config.scan.entries == ScanEntries.FIRST_SCAN and self.scans > 1
        ):
            return  # scan_once: the first scan's entries only; later scans manage the open trades
        for result in results:
            if result.direction not in ("LONG", "SHORT") or result.strength < self.config.min_score:
                continue
            instrument_id = InstrumentId.from_str(str(result.instrument_id))
            if instrument_id not in self._instruments or not self.book.is_warm(instrument_id):
                continue
            if len(self._trades) + len(self._pending) >= self.config.risk.max_positions:
                break
            self._try_entry(instrument_id, result.direction, result, manual=False)

    def manual_signal(self, symbol: str, side: str) -> dict[str, Any]:
        """The manual entry point (Telegram /signal, live CLI): the same sizing and risk checks as a scan."""
        instrument_id = self._resolve(symbol)
        if instrument_id is None:
            return {"accepted": False, "reason": f"{symbol} is not in the universe", "instrument": symbol}
        direction = {"long": "LONG", "buy": "LONG", "short": "SHORT", "sell": "SHORT"}.get(side.lower())
        if direction is None:
            return {
                "accepted": False,
                "reason": f"side must be long or short, not {side!r}",
                "instrument": str(instrument_id),
            }
        self._update_daily(self.clock.timestamp_ns())
        result = self.book.score(instrument_id) if self.book.is_warm(instrument_id) else None
        reason = self._try_entry(instrument_id, direction, result, manual=True)
        return {"accepted": not reason, "reason": reason or "entry sent", "instrument": str(instrument_id)}

    def _resolve(self, symbol: str) -> InstrumentId | None:
        """BTC, BTCUSDT, BTCUSDT-PERP or BTCUSDT-PERP.BINANCE -> the universe's instrument id."""
        s = symbol.upper()
        for instrument_id in self._instruments:
            raw = instrument_id.symbol.value.upper().removesuffix("-PERP")
            if s in (instrument_id.value.upper(), instrument_id.symbol.value.upper(), raw, raw[:-4]):
                return instrument_id
        return None

    def _factor_inputs(self, instrument_id: InstrumentId, strength: float) -> tuple[FactorInputs, float | None]:
        book = self.book
        trend = book.factor_value(instrument_id, "T")
        liquidity = book.factor_value(instrument_id, "L")
        atr = book.atr(instrument_id)
        atr_pct = book.atr_pct(instrument_id)
        return FactorInputs(strength=strength, trend=trend, liquidity=liquidity, atr_pct=atr_pct), atr

    def _try_entry(self, instrument_id: InstrumentId, direction: str, result: Any, manual: bool) -> str:
        """Send an entry if every check passes; return the refusal reason, or "" when the entry was sent."""
        now = self.clock.timestamp_ns()
        reason = check_entry(
            str(instrument_id),
            direction,
            [
                OpenExposure(str(t.instrument_id), t.direction)
                for t in (*self._trades.values(), *self._pending.values())
            ],
            0,
            self.config.risk,
            self.paused,
            self.daily.hit,
            self._correlation,
        )
        instrument = self._instruments.get(instrument_id)
        price = self._last_close.get(instrument_id)
        if not reason and price is None:
            reason = "no price yet for this symbol"
        if reason:
            return self._refuse(instrument_id, reason, manual)
        strength = float(result.strength) if result is not None else self.config.manual_strength
        score = float(result.score) if result is not None else 0.0
        factors, atr = self._factor_inputs(instrument_id, strength)
        levels = exit_levels(price, direction, factors, self.config.exits, atr)
        leverage = leverage_for_strength(strength, self.config.sizing.max_leverage)
        account = self.portfolio.account(instrument_id.venue)
        equity, free = self._equity(instrument_id.venue), account.balance_free(instrument.quote_currency)
        decision = position_size(
            equity=Decimal(str(equity)),
            free_balance=free.as_decimal() if free is not None else Decimal(0),
            entry=Decimal(str(price)),
            stop=Decimal(str(levels.stop)),
            leverage=leverage,
            filters=InstrumentFilters.of(instrument),
            config=self.config.sizing,
        )
        if not decision.accepted:
            return self._refuse(instrument_id, decision.reason, manual)
        if self._set_leverage and hasattr(account, "set_leverage"):
            account.set_leverage(instrument_id, Decimal(decision.leverage))
        order = self.order_factory.market(
            instrument_id=instrument_id,
            order_side=OrderSide.BUY if direction == "LONG" else OrderSide.SELL,
            quantity=instrument.make_qty(decision.quantity),
            time_in_force=TimeInForce.GTC,
            tags=[TAG_ENTRY],
        )
        trade = Trade(
            instrument_id=instrument_id,
            direction=direction,
            strength=strength,
            score=score,
            leverage=decision.leverage,
            factors=factors,
            atr=atr,
            planned=levels,
            manual=manual,
            entry_order_id=order.client_order_id,
        )
        self._pending[instrument_id] = trade
        self._publish(
            SignalEvent(
                instrument=str(instrument_id),
                direction=direction,
                strength=strength,
                score=score,
                leverage=decision.leverage,
                entry=price,
                stop=instrument.make_price(levels.stop).as_double(),
                tp1=instrument.make_price(levels.tp1).as_double(),
                tp2=instrument.make_price(levels.tp2).as_double(),
                price_precision=instrument.price_precision,
                factors_json=result.to_json() if result is not None else "{}",
                manual=manual,
                ts_event=now,
                ts_init=now,
            )
        )
        self.submit_order(order)
        return ""

    def _refuse(self, instrument_id: InstrumentId, reason: str, manual: bool) -> str:
        self.counters_.add(str(instrument_id), "refused")
        if manual:
            now = self.clock.timestamp_ns()
            self._publish(
                RiskEvent(
                    kind="SIGNAL_REFUSED",
                    instrument=str(instrument_id),
                    message=reason,
                    ts_event=now,
                    ts_init=now,
                )
            )
        return reason

    def _correlation(self, a: str, b: str) -> float | None:
        return self.book.returns_correlation(InstrumentId.from_str(a), InstrumentId.from_str(b))

    # --- equity and the daily limit -------------------------------------------------------------------------

    def _equity(self, venue: Venue = VENUE) -> float:
        account = self.portfolio.account(venue)
        if account is None:
            return 0.0
        currency = self._currency(account)
        total = account.balance_total(currency)
        equity = total.as_double() if total is not None else 0.0
        for position in self.cache.positions_open(venue=venue):
            price = self._last_close.get(position.instrument_id)
            if price is not None:
                instrument = self._instruments.get(position.instrument_id) or self.cache.instrument(
                    position.instrument_id
                )
                equity += position.unrealized_pnl(instrument.make_price(price)).as_double()
        return equity

    def _currency(self, account: Any) -> Any:
        """The settlement currency (USDT): a live Binance futures account also holds BNB, USDC... balances."""
        for instrument in self._instruments.values():
            return instrument.settlement_currency
        return account.base_currency or next(iter(account.balances()))

    def _wallet(self, venue: Venue = VENUE) -> float:
        account = self.portfolio.account(venue)
        currency = self._currency(account) if account else None
        total = account.balance_total(currency) if currency is not None else None
        return total.as_double() if total is not None else 0.0

    def _on_new_day(self, ts: int) -> None:
        self._day = ts // 86_400_000_000_000
        self._daily_trades = 0
        self._update_daily(ts)

    def _update_daily(self, ts: int) -> None:
        event = self.daily.observe(ts, self._equity())
        if event == "HIT":
            msg = (
                f"daily loss {self.daily.last_pnl:.2f} USDT reached the limit "
                f"{self.config.risk.daily_loss_limit_usdt:.0f}: no new entries until 00:00 UTC"
            )
            self.log.warning(msg)
            self._publish(
                RiskEvent(
                    kind="DAILY_LOSS_LIMIT",
                    message=msg,
                    value=self.daily.last_pnl,
                    limit=self.config.risk.daily_loss_limit_usdt,
                    ts_event=ts,
                    ts_init=ts,
                )
            )
        elif event == "RESET":
            self._publish(
                RiskEvent(
                    kind="DAILY_LIMIT_RESET",
                    message="new UTC day: entries allowed again",
                    limit=self.config.risk.daily_loss_limit_usdt,
                    ts_event=ts,
                    ts_init=ts,
                )
            )

    # --- order events ---------------------------------------------------------------------------------------

    def on_order_filled(self, event: OrderFilled) -> None:
        try:
            order = self.cache.order(event.client_order_id)
            kind = self._order_role(order) if order is not None else ""
            if kind == TAG_ENTRY and order.is_closed:
                self._on_entry_filled(order, event)
            elif kind == TAG_TP1 and order.is_closed:
                self._on_tp1_filled(order, event)
        except Exception as e:
            self._guard_error("on_order_filled", e)
            self._protect(event.instrument_id)

    def _order_role(self, order: Order) -> str:
        """The order's tag; for an order adopted after a restart (reconciled from the venue, so untagged) the
        role the adoption gave it in the open trade: stop, TP1 or TP2."""
        kind = order_kind(order.tags)
        trade = self._trades.get(order.instrument_id)
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

    def on_order_rejected(self, event: OrderRejected) -> None:
        self._guard("on_order_rejected", self._on_order_failed, event, f"rejected: {event.reason}")

    def on_order_denied(self, event: OrderDenied) -> None:
        self._guard("on_order_denied", self._on_order_failed, event, f"denied: {event.reason}")

    def on_order_canceled(self, event: OrderCanceled) -> None:
        self._guard("on_order_canceled", self._on_order_failed, event, "canceled")

    def on_order_expired(self, event: OrderExpired) -> None:
        self._guard("on_order_expired", self._on_order_failed, event, "expired")

    def _on_order_failed(self, event: Any, why: str) -> None:
        order = self.cache.order(event.client_order_id)
        if order is None:
            return
        kind = self._order_role(order)
        instrument_id = order.instrument_id
        if kind == TAG_ENTRY:
            trade = self._pending.pop(instrument_id, None)
            if trade is not None and order.filled_qty.as_double() > 0:
                self._arm(trade, order)  # a partially filled entry still gets its exits
            elif trade is not None:
                self._refuse(instrument_id, f"entry {why}", trade.manual)
            return
        trade = self._trades.get(instrument_id)
        if trade is None or kind != TAG_SL or why == "canceled" and order.client_order_id != trade.stop_id:
            return
        if why == "canceled" and trade.exit_intent:
            return  # our own flatten / dynamic exit is closing the position
        if order.client_order_id == trade.stop_id:
            # The working stop is gone (rejected, e.g. already through the price, or canceled by someone):
            # never leave the position unprotected, close it.
            self.log.warning(f"{instrument_id}: stop {why}; closing the position at market")
            trade.exit_intent = trade.exit_intent or "STOP"
            self._close_at_market(trade, TAG_EXIT)

    def _protect(self, instrument_id: InstrumentId) -> None:
        """After an error in a fill handler: every open position on the instrument must have a working stop,
        read from the cache (the error may have struck before the trade was recorded); if not, close it."""
        try:
            for position in self.cache.positions_open(instrument_id=instrument_id):
                qty = position.quantity.as_double()
                stops = [
                    o
                    for o in self.cache.orders_open(instrument_id=instrument_id)
                    + self.cache.orders_inflight(instrument_id=instrument_id)
                    if o.order_type == OrderType.STOP_MARKET
                    and o.is_reduce_only
                    and not o.is_pending_cancel
                    and o.quantity.as_double() >= qty
                ]
                if not stops:
                    self.log.error(f"{instrument_id}: no working stop after an error; closing the position")
                    trade = self._trades.get(instrument_id)
                    if trade is not None:
                        trade.exit_intent = trade.exit_intent or "STOP"
                    self.close_position(position, tags=[TAG_EXIT])
        except Exception as e:
            self.log.exception("protect failed", e)

    # --- exits ----------------------------------------------------------------------------------------------

    def _on_entry_filled(self, order: Order, event: OrderFilled) -> None:
        trade = self._pending.pop(order.instrument_id, None)
        if trade is None:
            return
        trade.position_id = event.position_id
        self._arm(trade, order)

    def _arm(self, trade: Trade, order: Order) -> None:
        """The entry filled: re-base the exit levels on the fill price and place the three exit orders."""
        instrument = self._instruments[trade.instrument_id]
        trade.entry = instrument.make_price(order.avg_px).as_double()
        trade.quantity = order.filled_qty.as_decimal()
        trade.opened_ns = order.ts_last
        if trade.position_id is None:
            position = self.cache.position_for_order(order.client_order_id)
            trade.position_id = position.id if position is not None else None
        levels = exit_levels(trade.entry, trade.direction, trade.factors, self.config.exits, trade.atr)
        self._trades[trade.instrument_id] = trade
        self._daily_trades += 1
        self.counters_.add(str(trade.instrument_id), "entries")
        self._submit_stop(trade, levels.stop, trade.quantity, STOP_INITIAL)
        tp1_qty, tp2_qty = split_quantity(
            trade.quantity,
            instrument.size_increment.as_decimal(),
            instrument.min_quantity.as_decimal() if instrument.min_quantity else instrument.size_increment.as_decimal(),
        )
        trade.tp1_price = instrument.make_price(levels.tp1).as_double()
        trade.tp2_price = instrument.make_price(levels.tp2).as_double()
        trade.tp1_id = self._submit_target(trade, trade.tp1_price, tp1_qty, TAG_TP1)
        if tp2_qty > 0:
            trade.tp2_id = self._submit_target(trade, trade.tp2_price, tp2_qty, TAG_TP2)
        now = self.clock.timestamp_ns()
        self._publish(
            EntryFilledEvent(
                instrument=str(trade.instrument_id),
                direction=trade.direction,
                price=trade.entry,
                quantity=float(trade.quantity),
                price_precision=instrument.price_precision,
                size_precision=instrument.size_precision,
                ts_event=now,
                ts_init=now,
            )
        )

    def _exit_side(self, trade: Trade) -> OrderSide:
        return OrderSide.SELL if trade.direction == "LONG" else OrderSide.BUY

    def _submit_stop(self, trade: Trade, price: float, quantity: Decimal, kind: str) -> None:
        """Place a new reduce-only stop, then cancel the one it replaces: the position is never without one.

        Never ``modify_order``: the Binance adapter rejects modifying a STOP_MARKET.
        """
        instrument = self._instruments[trade.instrument_id]
        stop_price = instrument.make_price(price)
        order = self.order_factory.stop_market(
            instrument_id=trade.instrument_id,
            order_side=self._exit_side(trade),
            quantity=instrument.make_qty(quantity),
            trigger_price=stop_price,
            reduce_only=True,
            tags=[TAG_SL],
        )
        old_id = trade.stop_id
        trade.stop_id = order.client_order_id
        trade.stop_price = stop_price.as_double()
        trade.stop_kind = kind
        self.submit_order(order, position_id=trade.position_id)
        if old_id is not None:
            old = self.cache.order(old_id)
            if old is not None and not old.is_closed:
                trade.replaced_stops.append(old_id)
                self.cancel_order(old)

    def _submit_target(self, trade: Trade, price: float, quantity: Decimal, tag: str) -> Any:
        instrument = self._instruments[trade.instrument_id]
        qty = instrument.make_qty(quantity)
        if self.config.exits.tp_order == TargetOrder.MARKET_IF_TOUCHED:
            order = self.order_factory.market_if_touched(
                instrument_id=trade.instrument_id,
                order_side=self._exit_side(trade),
                quantity=qty,
                trigger_price=instrument.make_price(price),
                reduce_only=True,
                tags=[tag],
            )
        else:
            order = self.order_factory.limit(
                instrument_id=trade.instrument_id,
                order_side=self._exit_side(trade),
                quantity=qty,
                price=instrument.make_price(price),
                reduce_only=True,
                tags=[tag],
            )
        self.submit_order(order, position_id=trade.position_id)
        return order.client_order_id

    def _position(self, trade: Trade) -> Position | None:
        if trade.position_id is not None:
            return self.cache.position(trade.position_id)
        positions = self.cache.positions_open(instrument_id=trade.instrument_id, strategy_id=self.id)
        return positions[0] if positions else None

    def _on_tp1_filled(self, order: Order, event: OrderFilled) -> None:
        trade = self._trades.get(order.instrument_id)
        if trade is None or trade.tp1_done:
            return  # TP1 took the whole position: the close handler accounts for it
        position = self._position(trade)
        if position is None or position.is_closed:
            return
        trade.tp1_done = True
        symbol = str(trade.instrument_id)
        self.counters_.add(symbol, "tp1")
        self._exit_event(trade, "TP1", event.last_px.as_double(), event.last_qty.as_double(), 0.0)
        self._submit_stop(trade, trade.entry, position.quantity.as_decimal(), STOP_BREAKEVEN)
        self.counters_.add(symbol, "breakeven")
        self._exit_event(trade, "BREAKEVEN", event.last_px.as_double(), position.quantity.as_double(), trade.stop_price)

    def _trade_pnl_pct(self, trade: Trade, instrument: Instrument, price: float) -> float:
        """The trade's result so far (realised, fees and funding included, plus unrealised at ``price``) in
        percent of the entry notional: what "total profit +8.2 %" in a TP2 message means."""
        notional = trade.entry * float(trade.quantity)
        position = self._position(trade)
        if position is None or notional <= 0:
            return 0.0
        pnl = position.realized_pnl.as_double() if position.realized_pnl is not None else 0.0
        if position.is_open and price > 0:
            pnl += position.unrealized_pnl(instrument.make_price(price)).as_double()
        return 100.0 * (pnl + trade.funding) / notional

    def _exit_event(self, trade: Trade, kind: str, price: float, quantity: float, new_stop: float) -> None:
        instrument = self._instruments[trade.instrument_id]
        pnl_pct = self._trade_pnl_pct(trade, instrument, price)
        now = self.clock.timestamp_ns()
        self._publish(
            ExitEvent(
                instrument=str(trade.instrument_id),
                kind=kind,
                direction=trade.direction,
                price=price,
                quantity=quantity,
                new_stop=new_stop,
                pnl_pct=pnl_pct,
                price_precision=instrument.price_precision,
                size_precision=instrument.size_precision,
                ts_event=now,
                ts_init=now,
            )
        )

    def _adjust_open_trade(self, trade: Trade, result: Any) -> None:
        """Dynamic adjustment: tighten the stop or exit when the score turns; trail TP2 when it firms."""
        position = self._position(trade)
        price = self._last_close.get(trade.instrument_id)
        if position is None or position.is_closed or price is None or trade.exit_intent:
            return
        tp2_order = self.cache.order(trade.tp2_id) if trade.tp2_id is not None else None
        tp2 = trade.tp2_price if tp2_order is not None and not tp2_order.is_closed else None
        action = dynamic_adjustment(
            trade.direction,
            trade.entry,
            trade.stop_price,
            tp2,
            price,
            float(result.score),
            trade.trails,
            self.config.dynamic,
        )
        if action.kind == DynamicKind.NONE:
            return
        instrument = self._instruments[trade.instrument_id]
        if action.kind == DynamicKind.TIGHTEN:
            new_stop = instrument.make_price(action.new_stop).as_double()
            if (new_stop - trade.stop_price) * trade.sign <= 0:
                return  # on the tick grid it would not move
        trade.dynamic_adjustments += 1
        self.counters_.add(str(trade.instrument_id), "dynamic")
        if action.kind == DynamicKind.EXIT:
            trade.exit_intent = "DYNAMIC"
            self._exit_event(trade, "DYNAMIC_EXIT", price, position.quantity.as_double(), 0.0)
            self._close_at_market(trade, TAG_EXIT)
        elif action.kind == DynamicKind.TIGHTEN:
            self._submit_stop(trade, new_stop, position.quantity.as_decimal(), STOP_DYNAMIC)
            self._exit_event(trade, "DYNAMIC_TIGHTEN", price, position.quantity.as_double(), trade.stop_price)
        elif action.kind == DynamicKind.TRAIL:
            qty = tp2_order.quantity.as_decimal()
            trade.trails += 1
            trade.tp2_price = instrument.make_price(action.new_tp2).as_double()
            self.cancel_order(tp2_order)
            trade.tp2_id = self._submit_target(trade, trade.tp2_price, qty, TAG_TP2)
            self._exit_event(trade, "DYNAMIC_TRAIL", price, float(qty), trade.stop_price)

    def _close_at_market(self, trade: Trade, tag: str) -> None:
        position = self._position(trade)
        if position is None or position.is_closed:
            return
        instrument = self._instruments[trade.instrument_id]
        order = self.order_factory.market(
            instrument_id=trade.instrument_id,
            order_side=self._exit_side(trade),
            quantity=instrument.make_qty(position.quantity),
            reduce_only=True,
            tags=[tag],
        )
        self.submit_order(order, position_id=trade.position_id)

    # --- position closed ------------------------------------------------------------------------------------

    def on_position_closed(self, event: PositionClosed) -> None:
        try:
            self._on_closed(event)
        except Exception as e:
            self._guard_error("on_position_closed", e)

    def _on_closed(self, event: PositionClosed) -> None:
        instrument_id = event.instrument_id
        trade = self._trades.get(instrument_id)
        if trade is None:
            self._cancel_exits(instrument_id)  # a position we did not track: leave no exit order behind
            return
        if trade.position_id is not None and trade.position_id != event.position_id:
            return  # another position (HEDGING) closed: the open trade keeps its exits
        closing = self.cache.order(event.closing_order_id) if event.closing_order_id is not None else None
        kind = self._order_role(closing) if closing is not None else ""
        del self._trades[instrument_id]
        self._cancel_exits(instrument_id)
        symbol = str(instrument_id)
        exit_price = float(event.avg_px_close)
        # The last fill's own price and size for the exit message; the position's average for the record.
        last_px = closing.avg_px if closing is not None and closing.avg_px else exit_price
        last_qty = closing.filled_qty.as_double() if closing is not None else float(event.peak_qty)
        if kind == TAG_SL or (kind == TAG_EXIT and trade.exit_intent == "STOP"):
            # a stop fill, or our market close standing in for a stop the venue refused
            self.counters_.add(symbol, "stops")
            self._exit_event(trade, "STOP", last_px, last_qty, 0.0)
            if trade.stop_kind == STOP_DYNAMIC:
                reason = "DYNAMIC"
            elif trade.tp1_done or trade.stop_kind == STOP_BREAKEVEN:
                reason = "TP1+BREAKEVEN"
            else:
                reason = "STOP"
        elif kind in (TAG_TP1, TAG_TP2):
            if not trade.tp1_done:
                self.counters_.add(symbol, "tp1")  # TP1 took the whole (too small to split) position
                trade.tp1_done = True
            else:
                self.counters_.add(symbol, "tp2")
            self._exit_event(trade, kind.removeprefix("ATS:"), last_px, last_qty, 0.0)
            reason = "TP1+TP2"
        elif kind == TAG_FLATTEN or trade.exit_intent == "FLATTEN":
            reason = "FLATTEN"
        elif kind == TAG_EXIT and trade.exit_intent == "DYNAMIC":
            reason = "DYNAMIC"
        else:
            reason = "STOP"  # closed by our protective market exit or outside the strategy
        realized = event.realized_pnl.as_double() if event.realized_pnl is not None else 0.0
        self._record(
            trade,
            event.ts_closed or event.ts_event,
            exit_price,
            float(event.peak_qty),
            realized + trade.funding,
            self._commissions(event.position_id),
            reason,
        )
        self._update_daily(event.ts_event)

    def _commissions(self, position_id: Any) -> float:
        position = self.cache.position(position_id)
        if position is None:
            return 0.0
        return sum(m.as_double() for m in position.commissions())

    def _record(
        self, trade: Trade, ts: int, exit_price: float, qty: float, pnl: float, fees: float, reason: str
    ) -> None:
        instrument = self._instruments[trade.instrument_id]
        self._records.append(TradeRecord.of_trade(trade, ts, exit_price, qty, pnl, fees, reason))
        notional = trade.entry * qty
        self._publish(
            PositionClosedEvent(
                instrument=str(trade.instrument_id),
                direction=trade.direction,
                entry_price=trade.entry,
                exit_price=exit_price,
                quantity=qty,
                realized_pnl=pnl,
                pnl_pct=100.0 * pnl / notional if notional else 0.0,
                duration_s=(ts - trade.opened_ns) / 1e9,
                exit_reason=reason,
                price_precision=instrument.price_precision,
                ts_event=ts,
                ts_init=ts,
            )
        )

    def _cancel_exits(self, instrument_id: InstrumentId) -> int:
        """Cancel our open orders on the instrument, and any reduce-only one (reconciled after a restart, so
        of another strategy id): no exit order survives its position."""
        orders = [
            o
            for o in self.cache.orders_open(instrument_id=instrument_id)
            if not o.is_pending_cancel and (o.strategy_id == self.id or o.is_reduce_only)
        ]
        orders += [
            o
            for o in self.cache.orders_inflight(instrument_id=instrument_id, strategy_id=self.id)
            if o.order_type != OrderType.MARKET
        ]
        seen = set()
        for order in orders:
            if order.client_order_id in seen:
                continue
            seen.add(order.client_order_id)
            self.cancel_order(order)
        return len(seen)
