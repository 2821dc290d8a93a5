"""Mitigations that keep a backtest's cost linear in its number of trades, with identical results.

Nautilus 1.231 does per-trade work proportional to everything before it (docs/backtest_speed.md has the
profiles and figures):

- its PortfolioAnalyzer grows pandas Series by one ``pd.concat`` per closed position, while the run goes and
  again at the end: ``BufferedPortfolioAnalyzer`` builds the same series once, when first read;
- Python's cyclic garbage collector sweeps every tracked object at each full collection, and a backtest
  keeps every order, fill, position and account state (each account state with a copy of every
  instrument's margin) to the end: ``survivors_frozen`` moves the objects that survived a full collection
  out of later sweeps for the length of the run;
- its portfolio formats each account state into an INFO line, every instrument's margin included, even when
  the log level drops it: ``quiet_account_state_logging`` skips that when nothing at INFO is written;
- each strategy formats every event it receives and command it sends into an INFO line before the level filter:
  ``quiet_strategy_event_logging`` turns that off when nothing at INFO is written;
- every account state holds its own copy of every instrument's margin, most of them equal to the state before's:
  ``SharedMargins`` lets a state hold the previous state's equal copy instead, once no one updates it any more;
- under a NETTING OMS every closed cycle is kept as a pickled position snapshot, and with two or more
  instruments the portfolio's snapshot cache forgets the other instruments' progress on each position event
  and unpickles their whole history again: ``hedging_run_config`` runs the backtest with a HEDGING OMS, where
  each cycle is its own position and no snapshots are taken.

HEDGING gives the same fills, fees and PnL as NETTING only for strategies that close a position before
opening the opposite one and pass ``position_id`` on orders that reduce an open position (our strategies
do; tests/test_backtest_speed.py checks it). ``NettingGuard`` watches every fast run for the cases where it
would not, and ``nodes.backtest.run_backtest`` then runs the backtest again plain. Of these only the buffered
analyzer is applied to the live node (``nodes/live/config.py``: a closed position's concats would run inside the
fill's handler); the live node stays NETTING (Binance one-way mode).
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import msgspec
import pandas as pd
from nautilus_trader.analysis.analyzer import PortfolioAnalyzer
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig, BacktestRunConfig, ImportableActorConfig, ImportableStrategyConfig
from nautilus_trader.model.events import (
    OrderCanceled,
    OrderDenied,
    OrderEvent,
    OrderPendingCancel,
    OrderRejected,
    PositionEvent,
    PositionOpened,
)
from nautilus_trader.model.identifiers import PositionId, Venue
from nautilus_trader.model.objects import Currency, MarginBalance, Money
from nautilus_trader.portfolio.config import PortfolioConfig
from numpy import float64

# (position id, realized PnL, event timestamp or None), per currency, in arrival order
_Rows = dict[Currency, list[tuple[str, float, int | None]]]


def _flushed_series(
    series: dict[Currency, pd.Series],
    timestamps: dict[Currency, pd.Series],
    pending: _Rows,
) -> None:
    """Append the pending rows to the per-currency series exactly as one concat per row would have."""
    for currency, rows in pending.items():
        if not rows:
            continue
        ids = [row[0] for row in rows]
        pnls = pd.Series([row[1] for row in rows], index=ids, dtype=float64)
        stamps = pd.Series([row[2] for row in rows], index=ids, dtype=object)
        existing, existing_stamps = series.get(currency), timestamps.get(currency)
        series[currency] = pnls if existing is None else pd.concat([existing, pnls])
        timestamps[currency] = stamps if existing_stamps is None else pd.concat([existing_stamps, stamps])
    pending.clear()


class BufferedPortfolioAnalyzer(PortfolioAnalyzer):
    """Nautilus's analyzer with trades and position returns buffered in lists until something reads them.

    The base class reads and assigns its private series directly; here those attributes are properties that
    flush the buffers on read, and drop them on assignment (the base class only assigns to reset). So every
    inherited method sees exactly the series the original would have built, row by row.
    """

    _state_names = (
        "_realized_pnls",
        "_realized_pnl_timestamps",
        "_recorded_realized_pnls",
        "_recorded_realized_pnl_timestamps",
        "_position_returns",
        "_returns",
    )

    def __init__(self) -> None:
        self._init_buffers()
        super().__init__()

    @classmethod
    def adopt(cls, analyzer: PortfolioAnalyzer) -> "BufferedPortfolioAnalyzer":
        """Turn an existing analyzer into a buffered one in place: the portfolio's attribute is read-only."""
        if isinstance(analyzer, cls):
            return analyzer
        state = {name: analyzer.__dict__.pop(name) for name in cls._state_names}
        analyzer.__class__ = cls
        assert isinstance(analyzer, cls)
        analyzer._init_buffers()
        for name, value in state.items():
            analyzer.__dict__[name] = value
        return analyzer

    def _init_buffers(self) -> None:
        self._pending_added: _Rows = {}
        self._pending_recorded: _Rows = {}
        self._pending_returns: list[tuple[datetime, float]] = []

    # -- buffered writers ------------------------------------------------------------------------------

    def add_trade(self, position_id: PositionId, realized_pnl: Money, ts_event: int | None = None) -> None:
        self._pending_added.setdefault(realized_pnl.currency, []).append(
            (position_id.value, realized_pnl.as_double(), None if ts_event is None else int(ts_event)),
        )

    def record_trade(self, position_id: PositionId, realized_pnl: Money, ts_event: int | None = None) -> None:
        self._pending_recorded.setdefault(realized_pnl.currency, []).append(
            (position_id.value, realized_pnl.as_double(), None if ts_event is None else int(ts_event)),
        )

    def add_position_return(self, timestamp: datetime, value: float) -> None:
        self._pending_returns.append((timestamp, float(value)))

    # -- flushing state ------------------------------------------------------------------------------

    def _flush_returns(self) -> None:
        if not self._pending_returns:
            return
        series: pd.Series = self.__dict__["_position_returns"]
        # Same additions in the same order as the base class's `.loc[ts] += value`, so the sums match bit
        # for bit; new timestamps are appended in first-seen order as enlargement by `.loc` does.
        sums: dict[Any, float] = dict(series.items())
        for timestamp, value in self._pending_returns:
            sums[timestamp] = sums.get(timestamp, 0.0) + value
        self._pending_returns = []
        index = pd.DatetimeIndex(list(sums)) if sums else None
        self.__dict__["_position_returns"] = pd.Series(list(sums.values()), index=index, dtype=float64)
        self._sync_returns_alias()

    def _flush_added(self) -> None:
        _flushed_series(
            self.__dict__["_realized_pnls"],
            self.__dict__["_realized_pnl_timestamps"],
            self._pending_added,
        )

    def _flush_recorded(self) -> None:
        _flushed_series(
            self.__dict__["_recorded_realized_pnls"],
            self.__dict__["_recorded_realized_pnl_timestamps"],
            self._pending_recorded,
        )


def _state_property(name: str, flush: str, pending: str, empty: object) -> property:
    def getter(self: BufferedPortfolioAnalyzer) -> Any:
        getattr(self, flush)()
        return self.__dict__[name]

    def setter(self: BufferedPortfolioAnalyzer, value: Any) -> None:
        # The base class assigns these only to start over: rows buffered before belong to the old state.
        setattr(self, pending, empty() if callable(empty) else empty)
        self.__dict__[name] = value

    return property(getter, setter)


for _name, _flush, _pending, _empty in (
    ("_realized_pnls", "_flush_added", "_pending_added", dict),
    ("_realized_pnl_timestamps", "_flush_added", "_pending_added", dict),
    ("_recorded_realized_pnls", "_flush_recorded", "_pending_recorded", dict),
    ("_recorded_realized_pnl_timestamps", "_flush_recorded", "_pending_recorded", dict),
    ("_position_returns", "_flush_returns", "_pending_returns", list),
):
    setattr(BufferedPortfolioAnalyzer, _name, _state_property(_name, _flush, _pending, _empty))


def _returns_getter(self: BufferedPortfolioAnalyzer) -> pd.Series:
    self._flush_returns()
    return self.__dict__["_returns"]


def _returns_setter(self: BufferedPortfolioAnalyzer, value: pd.Series) -> None:
    self.__dict__["_returns"] = value


BufferedPortfolioAnalyzer._returns = property(_returns_getter, _returns_setter)  # type: ignore[assignment]


def buffer_analyzer(engine: BacktestEngine) -> BufferedPortfolioAnalyzer:
    """Swap the engine portfolio's analyzer for the buffered one, keeping its registered statistics."""
    return BufferedPortfolioAnalyzer.adopt(engine.portfolio.analyzer)


def hedging_run_config(run_config: BacktestRunConfig) -> BacktestRunConfig:
    """The same run with a HEDGING OMS on every venue and strategy, watched by a ``NettingGuard``.

    See the module notes for when it is exact; the guard reports when it was not.
    """
    venues = [msgspec.structs.replace(v, oms_type="HEDGING") for v in run_config.venues]
    strategies = [
        ImportableStrategyConfig(
            strategy_path=s.strategy_path,
            config_path=s.config_path,
            config={**s.config, "oms_type": "HEDGING"},
        )
        for s in run_config.engine.strategies
    ]
    guard = ImportableActorConfig(
        actor_path=f"{__name__}:NettingGuard",
        config_path=f"{__name__}:NettingGuardConfig",
        config={},
    )
    engine = msgspec.structs.replace(
        run_config.engine,
        strategies=strategies,
        actors=[*run_config.engine.actors, guard],
    )
    return msgspec.structs.replace(run_config, venues=venues, engine=engine)


_QUIET_LEVELS = ("WARNING", "WARN", "ERROR", "OFF")
_NEVER_MS = 10**12  # 31 years, longer than any backtest: "log the first account state only"


def _info_dropped(run_config: BacktestRunConfig) -> bool:
    """Whether neither the console nor the log file keeps INFO lines."""
    logging = run_config.engine.logging
    levels = [logging.log_level, logging.log_level_file or "OFF"] if logging is not None else ["INFO"]
    return all(str(level).upper() in _QUIET_LEVELS for level in levels)


def quiet_account_state_logging(run_config: BacktestRunConfig) -> BacktestRunConfig:
    """Skip formatting the per-fill account-state INFO lines when the log level drops them anyway."""
    engine = run_config.engine
    if not _info_dropped(run_config):
        return run_config
    portfolio = engine.portfolio or PortfolioConfig()
    if portfolio.min_account_state_logging_interval_ms is not None:
        return run_config  # the config chose its own interval
    portfolio = msgspec.structs.replace(portfolio, min_account_state_logging_interval_ms=_NEVER_MS)
    return msgspec.structs.replace(run_config, engine=msgspec.structs.replace(engine, portfolio=portfolio))


def quiet_strategy_event_logging(run_config: BacktestRunConfig) -> BacktestRunConfig:
    """Skip formatting each strategy's per-event and per-command INFO lines when the log level drops them anyway.

    A strategy formats every order and position event it receives, and every command it sends, into text before
    the logger's level filter (in Rust) sees it: about a fifth of a millisecond per EMA-cross trade. Warnings
    (rejected, denied orders...) are logged whatever ``log_events`` says. A config that sets either key keeps it.
    """
    if not _info_dropped(run_config):
        return run_config
    strategies = [
        ImportableStrategyConfig(
            strategy_path=s.strategy_path,
            config_path=s.config_path,
            config={"log_events": False, "log_commands": False, **s.config},
        )
        for s in run_config.engine.strategies
    ]
    return msgspec.structs.replace(run_config, engine=msgspec.structs.replace(run_config.engine, strategies=strategies))


def _freeze_after_full_collection(phase: str, info: dict[str, int]) -> None:
    # Just after a full collection every tracked object is alive: freezing then never keeps garbage.
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


@contextmanager
def survivors_frozen() -> Iterator[None]:
    """For the block, keep objects that survived a full collection out of later full collections.

    A backtest retains everything it creates, so each full collection would sweep the whole history:
    with this, each object is swept about once and the collector's cost stays linear in the run. Cycles
    among frozen objects that die later are freed when the block ends (unfreeze, then collect as usual).
    """
    gc.callbacks.append(_freeze_after_full_collection)
    try:
        yield
    finally:
        gc.callbacks.remove(_freeze_after_full_collection)
        gc.unfreeze()


class SharedMargins:
    """Called now and then during a run, lets each of the venue account's states share the margins it holds
    unchanged from the state before it.

    Each ``AccountState`` copies every instrument's margin (``MarginBalance``, with a ``Currency`` of its own: about
    150 bytes), two states per position: at 16 symbols about 30 copies per position, 4 KB, most of them equal to
    the previous state's copy. A copy is replaced, in the state's list, by the previous state's equal copy, so the
    states' values stay the same and the duplicate is freed. The last state is left alone: the account keeps its
    margins as its own (``MarginAccount.apply``) and updates them in place until the next state replaces them.
    """

    def __init__(self, engine: BacktestEngine, venue: Venue) -> None:
        self._cache = engine.cache
        self._venue = venue
        self._done = 0  # states before this one share what they can
        self._before: dict[Any, MarginBalance] = {}  # the last shared state's margins, by instrument

    def __call__(self) -> None:
        account = self._cache.account_for_venue(self._venue)
        if account is None:
            return
        states = account.events
        before = self._before
        for state in states[self._done : len(states) - 1]:
            margins = state.margins
            mine = {}
            for place, margin in enumerate(margins):
                same = before.get(margin.instrument_id)
                if same is not None and same is not margin and same == margin:
                    margins[place] = margin = same
                mine[margin.instrument_id] = margin
            before = mine
        self._before = before
        self._done = max(self._done, len(states) - 1)


def linear_run_config(run_config: BacktestRunConfig) -> BacktestRunConfig:
    """The configuration half of the mitigations; ``prepare_engine`` is the other half, once the node is built."""
    return quiet_strategy_event_logging(quiet_account_state_logging(hedging_run_config(run_config)))


def prepare_engine(engine: BacktestEngine) -> None:
    """The engine half of the mitigations, applied between ``BacktestNode.build()`` and ``run()``."""
    buffer_analyzer(engine)


class NettingGuardConfig(ActorConfig, frozen=True):
    pass


class NettingGuard(Actor):
    """Watches a HEDGING backtest for what would make it differ from the NETTING run.

    Under NETTING a strategy holds at most one position per instrument and every order nets against it.
    Under HEDGING an order without a ``position_id`` gets a new position: one that flips, adds to or trims a
    position opens a second one beside it, and a reduce-only one is refused ("would increase position").
    So the runs agree when neither a position opens beside an open one of the same strategy and instrument,
    nor a reduce-only order is refused while the instrument has an open position.
    """

    def __init__(self, config: NettingGuardConfig | None = None) -> None:
        super().__init__(config or NettingGuardConfig())
        self.clashes = 0
        self.first_clash: str | None = None

    def on_start(self) -> None:
        self.msgbus.subscribe(topic="events.position.*", handler=self._on_position_event)
        self.msgbus.subscribe(topic="events.order.*", handler=self._on_order_event)

    def _clash(self, what: str, ts_event: int) -> None:
        self.clashes += 1
        if self.first_clash is None:
            self.first_clash = f"{what} at {pd.Timestamp(ts_event, tz='UTC')}"

    def _on_position_event(self, event: PositionEvent) -> None:
        if not isinstance(event, PositionOpened):
            return
        open_now = self.cache.positions_open(instrument_id=event.instrument_id, strategy_id=event.strategy_id)
        if len(open_now) > 1:
            self._clash(f"{event.strategy_id} opened a second {event.instrument_id} position", event.ts_event)

    def _on_order_event(self, event: OrderEvent) -> None:
        if not isinstance(event, OrderCanceled | OrderRejected | OrderDenied):
            return
        order = self.cache.order(event.client_order_id)
        if order is None or not order.is_reduce_only:
            return
        # A cancel the strategy asked for passes through PENDING_CANCEL; the venue's own does not.
        if isinstance(event, OrderCanceled) and any(isinstance(e, OrderPendingCancel) for e in order.events):
            return
        if self.cache.positions_open(instrument_id=order.instrument_id):
            # NETTING would have reduced the open position; this may also flag a reduce-only order that
            # NETTING would refuse too, which costs a plain rerun, never a wrong result.
            self._clash(f"reduce-only {order.client_order_id} refused beside an open position", event.ts_event)

    @property
    def mismatch(self) -> str | None:
        """Why this run is not the NETTING run, or None when it is."""
        if not self.clashes:
            return None
        return f"{self.clashes} event(s) on which HEDGING departs from NETTING (first: {self.first_clash})"


def netting_guard(engine: BacktestEngine) -> NettingGuard | None:
    return next((a for a in engine.trader.actors() if isinstance(a, NettingGuard)), None)
