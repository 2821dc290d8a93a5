"""Building blocks for running the strategy in a real in-process ``BacktestEngine`` (tests and benchmarks).

Hand-made bars, an engine with a Binance-like venue, an actor that records the strategy's events and one
that sends control commands at given times: the same entry points the Telegram actor uses.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.backtest.modules import SimulationModule
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.core.data import Data
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import Bar, BarType, DataType
from nautilus_trader.model.enums import AccountType, OmsType, OrderSide, OrderStatus, OrderType
from nautilus_trader.model.events import OrderInitialized, OrderRejected, OrderSubmitted
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId, PositionId, TraderId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.model.orders import Order
from nautilus_trader.model.position import Position

from catalog.instruments import VENUE, binance_perpetual
from factors.inputs import bar_type_for
from strategies.ats import AtsStrategy
from strategies.config import AtsStrategyConfig, parse_strategy_config, with_overrides
from strategies.control import CONTROL_ENDPOINT, ControlRequest
from strategies.events import ALL_EVENT_TYPES

MINUTE_NS = 60_000_000_000
SEC = 1_000_000_000
T0 = 1_700_006_400_000_000_000  # 2023-11-15 00:00 UTC: the scenarios' first bar


def perp(symbol: str) -> Instrument:
    return binance_perpetual(symbol)


def ats_config(instruments: Sequence[Instrument], settings: Mapping[str, Any] | None = None) -> AtsStrategyConfig:
    """The strategy config for ``instruments`` with dotted settings, e.g. ``{"exits.stop_pct": 0.05}``."""
    table = with_overrides({"instrument_ids": [i.id.value for i in instruments]}, settings or {})
    return parse_strategy_config(table)


def make_engine(
    instruments: Sequence[Instrument],
    balance: float = 100_000.0,
    oms: OmsType = OmsType.NETTING,
    modules: list[SimulationModule] | None = None,
) -> BacktestEngine:
    engine = BacktestEngine(
        BacktestEngineConfig(
            trader_id=TraderId("ATS-TEST"),
            logging=LoggingConfig(log_level="ERROR"),
        )
    )
    engine.add_venue(
        venue=VENUE,
        oms_type=oms,
        account_type=AccountType.MARGIN,
        base_currency=USDT,
        starting_balances=[Money(balance, USDT)],
        default_leverage=Decimal(1),
        modules=modules or [],
        bar_execution=True,
    )
    for instrument in instruments:
        engine.add_instrument(instrument)
    return engine


def bar_type(instrument: Instrument, spec: str = "1-MINUTE") -> BarType:
    return bar_type_for(instrument.id, spec)


def make_bars(
    instrument: Instrument,
    ohlc: Iterable[tuple[float, float, float, float]],
    start_ns: int,
    step_ns: int = MINUTE_NS,
    volume: float = 1_000_000.0,
    spec: str = "1-MINUTE",
) -> list[Bar]:
    """Bars from (open, high, low, close) rows; ``start_ns`` is the first bar's close time."""
    bt = bar_type(instrument, spec)
    p = instrument.price_precision
    out = []
    for i, (o, h, lo, c) in enumerate(ohlc):
        ts = start_ns + i * step_ns
        out.append(
            Bar(
                bt,
                Price(o, p),
                Price(max(o, h, lo, c), p),
                Price(min(o, h, lo, c), p),
                Price(c, p),
                Quantity(volume, instrument.size_precision),
                ts,
                ts,
            )
        )
    return out


def path_bars(
    instrument: Instrument, closes: Sequence[float], start_ns: int, wick: float = 0.0005, **kwargs: Any
) -> list[Bar]:
    """Bars walking through ``closes``: each opens at the previous close, wicks ``wick`` beyond both ends."""
    rows = []
    prev = closes[0]
    for c in closes:
        hi, lo = max(prev, c) * (1 + wick), min(prev, c) * (1 - wick)
        rows.append((prev, hi, lo, c))
        prev = c
    return make_bars(instrument, rows, start_ns, **kwargs)


class RecorderConfig(ActorConfig, frozen=True):
    pass


class EventRecorder(Actor):
    """Subscribes to every strategy event type, exactly as the Telegram actor does, and keeps them."""

    def __init__(self, config: RecorderConfig | None = None) -> None:
        super().__init__(config or RecorderConfig())
        self.events: list[Data] = []

    def on_start(self) -> None:
        # The topic ``subscribe_data(DataType(T))`` listens on; subscribing on the bus directly avoids the
        # "client_id or instrument_id need to be specified" error Actor.subscribe_data logs for custom data.
        for t in ALL_EVENT_TYPES:
            self.msgbus.subscribe(topic=f"data.{DataType(t).topic}", handler=self.events.append)

    def of(self, cls: type, **match: Any) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls) and all(getattr(e, k) == v for k, v in match.items())]


class CommanderConfig(ActorConfig, frozen=True):
    # (time ns, command, args): sent to the control endpoint at that time
    schedule: tuple[tuple[int, str, tuple[str, ...]], ...] = ()


class Commander(Actor):
    """Sends ``ControlRequest``s at given times over the message bus and keeps the answers."""

    def __init__(self, config: CommanderConfig) -> None:
        super().__init__(config)
        self.schedule = list(config.schedule)
        self.replies: list[tuple[int, str, dict[str, Any]]] = []

    def on_start(self) -> None:
        for i, (ts, _, _) in enumerate(self.schedule):
            self.clock.set_time_alert_ns(name=f"cmd-{i}", alert_time_ns=ts, callback=self._fire)

    def _fire(self, event: Any) -> None:
        i = int(event.name.split("-")[1])
        ts, command, args = self.schedule[i]

        def reply(answer: dict[str, Any]) -> None:
            self.replies.append((ts, command, answer))

        self.msgbus.send(endpoint=CONTROL_ENDPOINT, msg=ControlRequest(command, tuple(args), reply, "test"))


class InvariantCheckerConfig(ActorConfig, frozen=True):
    bar_types: tuple[str, ...] = ()
    max_notional: float = 10_000.0
    max_leverage: float = 10.0


# A stop protects only in these states: accepted on the venue (a triggered or partly filled one is closing).
WORKING = frozenset({OrderStatus.ACCEPTED, OrderStatus.TRIGGERED, OrderStatus.PARTIALLY_FILLED})
# Sent and not answered yet: the venue may still refuse it (or, for a cancel, not have acted on it).
IN_FLIGHT = frozenset({OrderStatus.SUBMITTED, OrderStatus.PENDING_UPDATE, OrderStatus.PENDING_CANCEL})


class InvariantChecker(Actor):
    """Checks what must always hold for the positions and orders, at every order event (but ``OrderInitialized``,
    published before its order is in the cache), every position event and every bar, after the strategy has
    handled the event (its handlers run first).

    A stop *works* only while the venue has accepted it and no cancel is pending; it must be on the closing
    side, reduce-only, with its trigger on the losing side of the entry (at the entry for break-even; past the
    entry only when tightened into profit, and then still on the losing side of the last close). Then:

    - every open position has a working stop for at least its quantity, at every event. The allowances, before
      the position's first stop works only: while the entry is still filling (the stop covers the whole entry,
      placed when it has filled) and while its first stop is on its way to the venue; at any time, a position
      being closed at market (a reduce-only market order for all of it on its way) is not flagged.
    - at each bar, once nothing of the instrument is in flight (the venue has answered every order sent, and
      has finished the bar's fills), the position has exactly one working stop, for exactly its quantity: a
      moved stop replaced, the old one gone. (Not at the fill events themselves: the simulated venue shrinks a
      position's reduce-only orders right after the fill that reduced it.)
    - at bars: no position above the notional cap or the leverage cap (notional / equity); no instrument
      without a position keeps an open order.

    Violations are collected, not raised, so a test can print them all.
    """

    def __init__(self, config: InvariantCheckerConfig) -> None:
        super().__init__(config)
        self.violations: list[str] = []
        self.bars_checked = 0
        self.position_bars = 0
        self.events_checked = 0
        self.max_open = 0
        self._armed: set[tuple[PositionId, int]] = set()  # positions (NETTING reuses ids) seen with a working stop
        self._last_close: dict[InstrumentId, float] = {}

    def on_start(self) -> None:
        for bt in self.config.bar_types:
            self.subscribe_bars(BarType.from_str(bt))
        # Handlers of equal priority run in the order they subscribed: a strategy subscribes when it is added,
        # before the engine starts this actor, so the checker sees the state the strategy's handler left.
        self.msgbus.subscribe(topic="events.order.*", handler=self._on_order_event)
        self.msgbus.subscribe(topic="events.position.*", handler=self._on_position_event)

    def _on_order_event(self, event: Any) -> None:
        if isinstance(event, OrderInitialized):
            return  # published before the order enters the cache; its submission follows at once
        self._check(event.instrument_id, f"{type(event).__name__} {event.client_order_id}", event.ts_event)

    def _on_position_event(self, event: Any) -> None:
        self._check(event.instrument_id, f"{type(event).__name__} {event.position_id}", event.ts_event)

    def _sent(self, instrument_id: InstrumentId) -> list[Order]:
        """The instrument's orders that are not closed: working, or sent and not answered yet."""
        orders = self.cache.orders_open(instrument_id=instrument_id)
        orders += self.cache.orders_inflight(instrument_id=instrument_id)
        unique = {o.client_order_id: o for o in orders if not o.is_closed}
        return list(unique.values())

    def _stop_fault(self, stop: Order, position: Position) -> str:
        """Why ``stop`` cannot protect ``position`` (empty when it can)."""
        closing = OrderSide.SELL if position.is_long else OrderSide.BUY
        if stop.side != closing:
            return f"stop {stop.client_order_id} on the {stop.side.name} side of a {position.side.name} position"
        if not stop.is_reduce_only:
            return f"stop {stop.client_order_id} not reduce-only"
        sign = 1 if position.is_long else -1
        trigger, entry = stop.trigger_price.as_double(), position.avg_px_open
        tick = self.cache.instrument(position.instrument_id).price_increment.as_double()
        if (trigger - entry) * sign > tick / 2:  # past the entry: only a stop tightened into profit
            last = self._last_close.get(position.instrument_id)
            if last is None or (trigger - last) * sign >= 0:
                return f"stop {stop.client_order_id} trigger {trigger} past the entry {entry} (last close {last})"
        return ""

    def _check(self, instrument_id: InstrumentId, where: str, ts: int, at_bar: bool = False) -> None:
        self.events_checked += 1
        positions = self.cache.positions_open(instrument_id=instrument_id)
        if not positions:
            return
        sent = self._sent(instrument_id)
        settled = at_bar and not any(o.status in IN_FLIGHT for o in sent)
        for position in positions:
            self._check_position(position, sent, settled, f"{ts} {instrument_id} at {where}")

    def _check_position(self, position: Position, sent: list[Order], settled: bool, where: str) -> None:
        qty = position.quantity
        stops = [o for o in sent if o.order_type == OrderType.STOP_MARKET]
        working = []
        for stop in (o for o in stops if o.status in WORKING):
            fault = self._stop_fault(stop, position)
            if fault:
                self.violations.append(f"{where}: {fault}")
            else:
                working.append(stop)
        if any(o.leaves_qty >= qty for o in working):
            self._armed.add((position.id, position.ts_opened))
        else:
            closing = OrderSide.SELL if position.is_long else OrderSide.BUY
            being_closed = any(
                o.order_type == OrderType.MARKET and o.is_reduce_only and o.side == closing and o.leaves_qty >= qty
                for o in sent
            )
            opening = OrderSide.BUY if position.is_long else OrderSide.SELL
            arming = (position.id, position.ts_opened) not in self._armed and (
                any(o.status in IN_FLIGHT and not self._stop_fault(o, position) and o.leaves_qty >= qty for o in stops)
                or any(o.status == OrderStatus.PARTIALLY_FILLED and o.side == opening for o in sent)
            )
            if being_closed:
                return
            if not arming:
                held = [(str(o.client_order_id), o.status.name, str(o.leaves_qty)) for o in stops]
                self.violations.append(f"{where}: position {qty} without a working stop (stops {held})")
                return
        if settled and (position.id, position.ts_opened) in self._armed:
            if len(working) != 1:
                ids = [str(o.client_order_id) for o in working]
                self.violations.append(f"{where}: {len(working)} working stops once settled {ids}")
            elif working[0].leaves_qty != qty:
                self.violations.append(f"{where}: stop for {working[0].leaves_qty}, position {qty}")

    def on_bar(self, bar: Bar) -> None:
        self.bars_checked += 1
        instrument_id = bar.bar_type.instrument_id
        self._last_close[instrument_id] = bar.close.as_double()
        positions = self.cache.positions_open(instrument_id=instrument_id)
        live = [o for o in self.cache.orders_open(instrument_id=instrument_id) if not o.is_pending_cancel]
        self.max_open = max(self.max_open, len(self.cache.positions_open()))
        if not positions:
            if live:
                self.violations.append(f"{bar.ts_event} {instrument_id}: orphan orders {live}")
            return
        self.position_bars += 1
        self._check(instrument_id, "bar", bar.ts_event, at_bar=True)
        account = self.cache.account_for_venue(VENUE)
        equity = account.balance_total(USDT).as_double()
        for p in positions:
            notional = p.quantity.as_double() * p.avg_px_open
            if notional > self.config.max_notional * (1 + 1e-9):
                self.violations.append(f"{bar.ts_event} {instrument_id}: notional {notional:.2f} over the cap")
            if equity > 0 and notional / equity > self.config.max_leverage:
                self.violations.append(f"{bar.ts_event} {instrument_id}: leverage {notional / equity:.2f}")
            lev = account.leverage(instrument_id) if hasattr(account, "leverage") else None
            if lev is not None and float(lev) > self.config.max_leverage:
                self.violations.append(f"{bar.ts_event} {instrument_id}: account leverage {lev}")


def invariant_checker(instruments: Sequence[Instrument]) -> InvariantChecker:
    return InvariantChecker(InvariantCheckerConfig(bar_types=tuple(str(bar_type(i)) for i in instruments)))


@dataclass
class ScenarioRun:
    engine: BacktestEngine
    strategy: AtsStrategy
    events: EventRecorder
    commander: Commander
    checker: InvariantChecker

    def replies(self, command: str = "signal") -> list[dict[str, Any]]:
        return [a for _, c, a in self.commander.replies if c == command]


def run_scenario(
    paths: dict[Any, list[float]],
    schedule: list[tuple[int, str, tuple[str, ...]]],
    balance: float = 100_000.0,
    oms: OmsType = OmsType.NETTING,
    start: int = T0,
    settings: dict[str, Any] | None = None,
    prepare: Callable[[BacktestEngine, AtsStrategy], None] | None = None,
    errors: int = 0,
    strict: bool = True,
) -> ScenarioRun:
    """Run the strategy on ``paths`` (closes per instrument) with dotted ``settings`` (e.g.
    ``{"exits.stop_pct": 0.05}``; no scan entries unless they ask for them), control commands at given times,
    the event recorder and the invariant checker. ``prepare`` sees the engine and the strategy before the run
    (to inject a fault). The run must end with ``errors`` handler errors and, when ``strict``, no violation."""
    instruments = list(paths)
    engine = make_engine(instruments, balance=balance, oms=oms)
    for instrument, closes in paths.items():
        engine.add_data(path_bars(instrument, closes, start))
    defaults = {"scan.entries": "NONE", "scan.interval_minutes": 1440, "oms_type": oms.name}
    strategy = AtsStrategy(ats_config(instruments, {**defaults, **(settings or {})}))
    recorder = EventRecorder()
    commander = Commander(CommanderConfig(schedule=tuple(schedule)))
    checker = invariant_checker(instruments)
    engine.add_actor(recorder)
    engine.add_actor(commander)
    engine.add_actor(checker)
    engine.add_strategy(strategy)
    if prepare is not None:
        prepare(engine, strategy)
    engine.run()
    assert strategy.errors == errors
    if strict:
        assert checker.violations == [], checker.violations
    return ScenarioRun(engine, strategy, recorder, commander, checker)


def at(minute: int, start: int = T0) -> int:
    """A time between bars: one second after the close of bar ``minute`` (0-based)."""
    return start + minute * MINUTE_NS + SEC


def ramp(a: float, b: float, n: int) -> list[float]:
    return [a + (b - a) * i / n for i in range(1, n + 1)]


class StopRefusals:
    """The venue refuses chosen stop orders (or, with ``which``, other orders), as Binance answers an order
    with an error.

    Installed on the execution engine's command endpoint (the one the RiskEngine sends to): the ``refuse``-th
    submissions of orders ``which`` selects (stop-market orders by default; 1-based, counted over the run) are
    answered ``OrderSubmitted`` + ``OrderRejected`` with ``reason`` and go no further; every other command goes
    to the engine and the simulated exchange. The answer comes at once, inside the strategy's own submit: the
    hardest ordering for its handlers.
    """

    def __init__(
        self,
        engine: BacktestEngine,
        refuse: Iterable[int],
        reason: str,
        which: Callable[[Order], bool] = lambda order: order.order_type == OrderType.STOP_MARKET,
    ) -> None:
        self.engine = engine
        self.refuse = set(refuse)
        self.reason = reason
        self.which = which
        self.stops_seen = 0
        self.refused: list[ClientOrderId] = []
        kernel = engine.kernel
        self._execute = kernel.exec_engine.execute
        kernel.msgbus.deregister(endpoint="ExecEngine.execute", handler=self._execute)
        kernel.msgbus.register(endpoint="ExecEngine.execute", handler=self._on_command)

    def _on_command(self, command: Any) -> None:
        if isinstance(command, SubmitOrder) and self.which(command.order):
            self.stops_seen += 1
            if self.stops_seen in self.refuse:
                self._reject(command)
                return
        self._execute(command)

    def _reject(self, command: SubmitOrder) -> None:
        kernel, order = self.engine.kernel, command.order
        account_id = self.engine.cache.account_for_venue(order.instrument_id.venue).id
        ts = kernel.clock.timestamp_ns()
        ids = (command.trader_id, command.strategy_id, order.instrument_id, order.client_order_id, account_id)
        kernel.msgbus.send(endpoint="ExecEngine.process", msg=OrderSubmitted(*ids, UUID4(), ts, ts))
        kernel.msgbus.send(endpoint="ExecEngine.process", msg=OrderRejected(*ids, self.reason, UUID4(), ts, ts))
        self.refused.append(order.client_order_id)
