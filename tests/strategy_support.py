"""Building blocks for running the strategy in a real in-process ``BacktestEngine`` (tests and benchmarks).

Hand-made bars, an engine with a Binance-like venue, an actor that records the strategy's events and one
that sends control commands at given times: the same entry points the Telegram actor uses.
"""

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.backtest.modules import SimulationModule
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.core.data import Data
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import Bar, BarType, DataType
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.identifiers import TraderId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Money, Price, Quantity

from catalog.instruments import VENUE, binance_perpetual
from factors.inputs import bar_type_for
from strategies.config import AtsStrategyConfig, parse_strategy_config, with_overrides
from strategies.control import CONTROL_ENDPOINT, ControlRequest
from strategies.events import ALL_EVENT_TYPES

MINUTE_NS = 60_000_000_000


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


class InvariantChecker(Actor):
    """Checks, at every bar, what must always hold for the strategy's positions and orders.

    Every open position has a working reduce-only stop for at least its quantity; no position is above the
    notional cap or the leverage cap (notional / equity); no instrument without a position keeps an open
    order. Violations are collected, not raised, so a test can print them all.
    """

    def __init__(self, config: InvariantCheckerConfig) -> None:
        super().__init__(config)
        self.cfg = config
        self.violations: list[str] = []
        self.bars_checked = 0
        self.position_bars = 0
        self.max_open = 0

    def on_start(self) -> None:
        for bt in self.cfg.bar_types:
            self.subscribe_bars(BarType.from_str(bt))

    def on_bar(self, bar: Bar) -> None:
        self.bars_checked += 1
        instrument_id = bar.bar_type.instrument_id
        positions = self.cache.positions_open(instrument_id=instrument_id)
        # Commands sent while the bar's fills were handled reach the simulated exchange after this handler: a
        # stop being replaced is still PENDING_CANCEL (so still working) and its successor still SUBMITTED.
        live = [o for o in self.cache.orders_open(instrument_id=instrument_id) if not o.is_pending_cancel]
        sent = self.cache.orders_open(instrument_id=instrument_id) + self.cache.orders_inflight(
            instrument_id=instrument_id
        )
        self.max_open = max(self.max_open, len(self.cache.positions_open()))
        if not positions:
            if live:
                self.violations.append(f"{bar.ts_event} {instrument_id}: orphan orders {live}")
            return
        self.position_bars += 1
        qty = sum(p.quantity.as_double() for p in positions)
        stops = [
            o
            for o in sent
            if o.order_type.name == "STOP_MARKET" and o.is_reduce_only and o.quantity.as_double() >= qty - 1e-12
        ]
        if not stops:
            self.violations.append(f"{bar.ts_event} {instrument_id}: position {qty} without a working stop")
        account = self.cache.account_for_venue(VENUE)
        equity = account.balance_total(USDT).as_double()
        for p in positions:
            notional = p.quantity.as_double() * p.avg_px_open
            if notional > self.cfg.max_notional * (1 + 1e-9):
                self.violations.append(f"{bar.ts_event} {instrument_id}: notional {notional:.2f} over the cap")
            if equity > 0 and notional / equity > self.cfg.max_leverage:
                self.violations.append(f"{bar.ts_event} {instrument_id}: leverage {notional / equity:.2f}")
            lev = account.leverage(instrument_id) if hasattr(account, "leverage") else None
            if lev is not None and float(lev) > self.cfg.max_leverage:
                self.violations.append(f"{bar.ts_event} {instrument_id}: account leverage {lev}")
