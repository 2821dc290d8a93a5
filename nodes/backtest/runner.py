"""Run a backtest config through Nautilus's BacktestNode on catalogued Binance data."""

import ctypes
import platform
import time
from collections.abc import Callable, Hashable
from contextlib import nullcontext
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.backtest.results import BacktestResult
from nautilus_trader.config import (
    ActorFactory,
    BacktestDataConfig,
    BacktestEngineConfig,
    BacktestRunConfig,
    BacktestVenueConfig,
    ImportableActorConfig,
    ImportableStrategyConfig,
    LoggingConfig,
    StrategyFactory,
)
from nautilus_trader.model.data import FundingRateUpdate, MarkPriceUpdate
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.instruments import CryptoPerpetual

from catalog.aggregate import BarsReady, ensure_bars
from catalog.convert import interval_of_spec
from catalog.files import identify
from catalog.ingest import expand, ingest, not_yet_ingested
from catalog.instruments import VENUE, instrument_id_for
from catalog.inventory import (
    bar_class_in,
    bar_step_ns,
    catalog_symbols,
    instrument_for_period,
    list_series,
    series_timestamps,
)
from factors.inputs import bar_type_for
from nodes.backtest.factor_coverage import FACTOR_COVERAGE, FactorCoverage, attach_strategy
from nodes.backtest.frames import account_frame, account_totals, order_fills_frame, positions_frame
from nodes.backtest.funding import FundingSettlementModule, funding_module
from nodes.backtest.speed import (
    SharedMargins,
    linear_run_config,
    netting_guard,
    prepare_engine,
    survivors_frozen,
)
from nodes.backtest.streaming import stream_data
from nodes.settings import BacktestSettings


class CatalogMissingDataError(RuntimeError):
    """The catalog lacks what the config asks for; the message says what to run to fill it."""


@dataclass(frozen=True)
class RunRecord:
    """What the engine's cache held when the run ended, kept apart from the engine: a reused engine's next run
    clears its cache, and the reports are built from these only when something reads them."""

    orders: list[Any]
    positions: list[Any]
    position_snapshots: list[Any]
    account_states: list[Any]  # the venue account's events, in order

    @classmethod
    def of(cls, engine: BacktestEngine) -> "RunRecord":
        account = engine.cache.account_for_venue(Venue(VENUE.value))
        return cls(
            orders=engine.cache.orders(),
            positions=engine.cache.positions(),
            position_snapshots=engine.cache.position_snapshots(),
            account_states=account.events if account is not None else [],
        )


@dataclass
class BacktestOutcome:
    """A run's results. ``positions``, ``fills`` and ``account`` are Nautilus's positions, order fills and account
    reports (``trader.generate_*_report``, built faster by frames.py), made on first use: ``ats backtest`` writes
    the large ones from the record straight to Parquet and never needs them."""

    settings: BacktestSettings
    result: BacktestResult
    engine: BacktestEngine
    wall_seconds: float
    data_points: int  # bars, funding rates and mark prices the engine replayed
    record: RunRecord
    instruments: dict[str, CryptoPerpetual] = field(default_factory=dict)  # the definitions the run used
    replayed: dict[str, BarsReady] = field(default_factory=dict)  # per symbol: bar type, class, count, span
    funding: FundingSettlementModule | None = None  # what the venue settled
    factor_coverage: FactorCoverage | None = None  # which factors were missing, sampled through the run
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def bars(self) -> dict[str, int]:
        """Bars replayed per symbol."""
        return {symbol: ready.rows for symbol, ready in self.replayed.items()}

    @cached_property
    def positions(self) -> pd.DataFrame:
        return positions_frame(self.record.positions, self.record.position_snapshots)

    @cached_property
    def fills(self) -> pd.DataFrame:
        return order_fills_frame(self.record.orders)

    @cached_property
    def account(self) -> pd.DataFrame:
        return account_frame(self.record.account_states)

    @cached_property
    def balances(self) -> pd.Series:
        """The account report's ``total`` column as floats (the balance after each account state), by time."""
        return account_totals(self.record.account_states)

    @cached_property
    def orders_filled(self) -> int:
        """Rows of the fills report."""
        return sum(1 for order in self.record.orders if order.filled_qty.raw > 0)  # raw: no Decimal per order


def _period_ns(settings: BacktestSettings) -> tuple[int | None, int | None]:
    return (
        settings.start.value if settings.start is not None else None,
        settings.end.value if settings.end is not None else None,
    )


def period_instruments(settings: BacktestSettings) -> dict[str, CryptoPerpetual]:
    """Each symbol's instrument as Binance defined it nearest the run's period (the catalog keeps one definition
    per ingested exchangeInfo; Nautilus's node would load the oldest)."""
    start_ns, end_ns = _period_ns(settings)
    chosen = {}
    for symbol in settings.symbols:
        instrument = instrument_for_period(settings.catalog, symbol, start_ns, end_ns)
        if instrument is not None:
            chosen[symbol] = instrument
    return chosen


def _use_instruments(engine: BacktestEngine, instruments: dict[str, CryptoPerpetual]) -> None:
    for instrument in instruments.values():
        loaded = engine.cache.instrument(instrument.id)
        if loaded is None or loaded.ts_init != instrument.ts_init:
            engine.add_instrument(instrument)  # replaces the definition in the cache and the simulated venue


def _lacking(settings: BacktestSettings, ready: dict[str, BarsReady]) -> list[str]:
    known = catalog_symbols(settings.catalog)
    return [s for s in settings.symbols if s not in known or ready[s].rows == 0]


def _day(ns: int | None) -> str:
    return "-" if ns is None else pd.Timestamp(ns, tz="UTC").strftime("%Y-%m-%d %H:%M")


def catalog_holdings(catalog_dir: Path, symbols: list[str]) -> list[str]:
    """One line per symbol: the catalogued series and the span each covers (what a refused run could use)."""
    by_symbol: dict[str, list[str]] = {s: [] for s in symbols}
    for series in list_series(catalog_dir):
        if series.symbol in by_symbol:
            stamps = series_timestamps(catalog_dir, series.folder, series.identifier)
            if len(stamps):
                by_symbol[series.symbol].append(
                    f"{series.label} {_day(int(stamps[0]))} -> {_day(int(stamps[-1]))} ({len(stamps):,})"
                )
    return [f"  {s}: {'; '.join(found) if found else 'nothing'}" for s, found in by_symbol.items()]


def _period_text(settings: BacktestSettings) -> str:
    return f"{_day(_period_ns(settings)[0])} -> {_day(_period_ns(settings)[1])}"


def ensure_catalog(settings: BacktestSettings, progress: Callable[[str], None] | None = None) -> dict[str, BarsReady]:
    """Make sure the catalog has bars of the configured size in the period for every symbol.

    Bars of the size are built from finer catalogued bars (``catalog.aggregate.ensure_bars``); for symbols still
    lacking, the config's source folders are ingested (only files the catalog does not hold yet). A symbol with
    no bars in the period is refused with what the catalog does hold, and the command that fills it.
    """
    start_ns, end_ns = _period_ns(settings)
    ready = ensure_bars(settings.catalog, settings.symbols, settings.bar_spec, start_ns, end_ns, progress)
    lacking = _lacking(settings, ready)
    sources = [s for s in settings.sources if s.is_dir()]
    if lacking and sources:
        found = expand(sources)
        files = [p for p in found.data_files if identify(p).symbol in lacking]
        files = not_yet_ingested(settings.catalog, files)
        if files:
            if progress:
                progress(
                    f"catalog {settings.catalog} lacks {', '.join(lacking)}: ingesting {len(files)} files "
                    f"from {', '.join(str(s) for s in sources)}"
                )
            ingest(files, settings.catalog, progress)
            ready = ensure_bars(settings.catalog, settings.symbols, settings.bar_spec, start_ns, end_ns, progress)
            lacking = _lacking(settings, ready)
    if lacking:
        interval = interval_of_spec(settings.bar_spec)
        start = settings.start.strftime("%Y-%m-%d") if settings.start is not None else "2025-05-01"
        end = settings.end.strftime("%Y-%m-%d") if settings.end is not None else "2025-05-31"
        raise CatalogMissingDataError(
            f"the catalog {settings.catalog} has no {settings.bar_spec} bars (nor finer bars to build them from) "
            f"for {', '.join(lacking)} in {_period_text(settings)}. It holds:\n"
            + "\n".join(catalog_holdings(settings.catalog, lacking))
            + "\nChange --start/--end (or [backtest] start/end) to a period it covers, or fill it with one of:\n"
            f"  uv run ats data download {' '.join(lacking)} --start {start} --end {end} --interval {interval}"
            f" --catalog {settings.catalog}\n"
            f"  uv run ats data ingest FOLDER_WITH_BINANCE_FILES --catalog {settings.catalog}",
        )
    if progress:
        for line in partial_coverage(settings, ready):
            progress(line)
    return ready


def partial_coverage(settings: BacktestSettings, ready: dict[str, BarsReady]) -> list[str]:
    """A warning per symbol whose bars start later or end earlier than the period (by more than a bar)."""
    start_ns, end_ns = _period_ns(settings)
    lines = []
    for symbol, r in ready.items():
        step = bar_step_ns(r.bar_type) or 0
        late = start_ns is not None and r.first_ns is not None and r.first_ns - start_ns > step
        early = end_ns is not None and r.last_ns is not None and end_ns - r.last_ns > step
        if late or early:
            lines.append(
                f"warning: {symbol} has {settings.bar_spec} bars for {_day(r.first_ns)} -> {_day(r.last_ns)} "
                f"only, of the period {_period_text(settings)}"
            )
    return lines


def _strategy_configs(settings: BacktestSettings) -> list[ImportableStrategyConfig]:
    return [
        ImportableStrategyConfig(
            strategy_path=settings.strategy_path, config_path=settings.strategy_config_path, config=config
        )
        for config in settings.strategy_instance_configs()
    ]


class BarTypeDataConfig(BacktestDataConfig, frozen=True):
    """Bars of exactly the configured bar types. Nautilus's own config asks the catalog for a ``Bar`` subclass
    (``BinanceBar``) by instrument id, which matches every bar size of the symbol: with 1m and 5m klines
    catalogued, both would be replayed."""

    @property
    def query(self) -> dict[str, Any]:
        query = super().query
        if self.bar_types:
            query["identifiers"] = [str(bar_type) for bar_type in self.bar_types]
        return query


def build_run_config(settings: BacktestSettings) -> BacktestRunConfig:
    catalog_dir = settings.catalog
    start = settings.start.isoformat() if settings.start is not None else None
    end = settings.end.isoformat() if settings.end is not None else None
    data: list[BacktestDataConfig] = []
    for symbol in settings.symbols:
        instrument_id = instrument_id_for(symbol)
        bar_type = str(bar_type_for(instrument_id, settings.bar_spec))
        data.append(
            BarTypeDataConfig(
                catalog_path=str(catalog_dir),
                data_cls=bar_class_in(catalog_dir, bar_type),
                instrument_id=instrument_id,
                bar_types=[bar_type],
                start_time=start,
                end_time=end,
            ),
        )
        for cls, folder in (
            (FundingRateUpdate, "funding_rate_update"),
            (MarkPriceUpdate, "mark_price_update"),
        ):
            if (catalog_dir / "data" / folder / instrument_id.value).is_dir():
                data.append(
                    BacktestDataConfig(
                        catalog_path=str(catalog_dir),
                        data_cls=cls,
                        instrument_id=instrument_id,
                        start_time=start,
                        end_time=end,
                    ),
                )
    venue = BacktestVenueConfig(
        name=VENUE.value,
        oms_type=settings.oms_type,
        account_type="MARGIN",
        base_currency="USDT",
        starting_balances=[f"{settings.starting_balance} USDT"],
        default_leverage=Decimal(str(settings.default_leverage)),
        # Within one bar, visit the extreme nearer the open first: a fixed O-H-L-C order would let a long's
        # take-profit fill before its stop in every bar that touches both.
        bar_adaptive_high_low_ordering=True,
        # Nautilus's simulated exchange does not settle perpetual funding: this module does, from the
        # catalogued funding rates, so a backtest pays and receives what Binance would have booked.
        modules=[
            ImportableActorConfig(
                actor_path="nodes.backtest.funding:FundingSettlementModule",
                config_path="nodes.backtest.funding:FundingSettlementConfig",
                config={},
            ),
        ],
    )
    engine = BacktestEngineConfig(
        strategies=_strategy_configs(settings),
        actors=[ImportableActorConfig(**actor) for actor in (FACTOR_COVERAGE, *settings.actors)],
        logging=LoggingConfig(log_level=settings.log_level),
    )
    return BacktestRunConfig(
        engine=engine,
        venues=[venue],
        data=data,
        raise_exception=True,
        dispose_on_completion=False,
    )


def run_backtest(
    settings: BacktestSettings,
    progress: Callable[[str], None] | None = None,
    fast: bool = True,
    progress_bar: bool = False,
) -> BacktestOutcome:
    """Run the config. ``fast`` applies nodes.backtest.speed (linear in trades, same results); False runs plain.
    ``progress`` receives one-line messages (catalog filling); ``progress_bar`` draws the replay's progress on
    stderr (simulated time, bars/s, time left).

    When the fast run's guard sees a position pattern on which its HEDGING OMS would differ from NETTING,
    the run is repeated plain, so the results are always those of the NETTING run.
    """
    ready = ensure_catalog(settings, progress)
    bar = _progress_actor(ready) if progress_bar else None
    outcome = _run(settings, fast, bar)
    mismatch = fast_path_mismatch(outcome)
    if mismatch is not None:
        if progress:
            progress(f"fast backtest not equivalent to NETTING: {mismatch}; running it again plain")
        outcome = _run(settings, False, bar)
        outcome.extras["fast_path_rejected"] = mismatch
    outcome.replayed = ready
    return outcome


def _progress_actor(ready: dict[str, BarsReady]) -> ImportableActorConfig:
    firsts = [r.first_ns for r in ready.values() if r.first_ns is not None]
    lasts = [r.last_ns for r in ready.values() if r.last_ns is not None]
    return ImportableActorConfig(
        actor_path="nodes.backtest.progress:BacktestProgress",
        config_path="nodes.backtest.progress:BacktestProgressConfig",
        config={"start_ns": min(firsts), "end_ns": max(lasts), "bars": sum(r.rows for r in ready.values())},
    )


def fast_path_mismatch(outcome: BacktestOutcome) -> str | None:
    """Why a fast run's results are not those of the NETTING run (then run it plain), or None."""
    if outcome.settings.oms_type != "NETTING":
        return None
    guard = netting_guard(outcome.engine)
    return guard.mismatch if guard is not None else None


def _run(settings: BacktestSettings, fast: bool, progress_bar: ImportableActorConfig | None = None) -> BacktestOutcome:
    started = time.perf_counter()
    loaded = load_engine(settings, fast, streamed=True)
    outcome = run_on_engine(loaded, settings, progress_bar)
    loaded.engine.clear_data()  # a one-off run: drop the data now, as Nautilus's BacktestNode does
    return_freed_memory()  # and what the report does not reuse of it
    outcome.wall_seconds = time.perf_counter() - started  # reading the catalog included, as before
    return outcome


@dataclass
class LoadedEngine:
    """A built engine holding a config's venue, instruments and data, and no strategy yet.

    ``run_on_engine`` runs any strategy config over any window inside the loaded data, as often as needed:
    ``BacktestEngine.reset()`` keeps data, instruments and venues, so a research worker reads the catalog once
    per (symbols, bar size, span) instead of once per trial.
    """

    engine: BacktestEngine
    node: BacktestNode  # holds Nautilus's logging guard for as long as the engine lives
    key: Hashable  # engine_key() of the settings it was loaded for
    fast: bool
    data_ts: np.ndarray  # ts_init of every loaded data point, ascending
    instruments: dict[str, CryptoPerpetual] = field(default_factory=dict)  # the definitions nearest the period
    runs: int = 0
    streamed: bool = False  # the data is read while the engine runs: one run only

    def dispose(self) -> None:
        self.engine.dispose()


def engine_key(settings: BacktestSettings, fast: bool) -> Hashable:
    """Everything an engine is built from except the strategy, its actors and the window to run."""
    return (
        str(settings.catalog),
        settings.symbols,
        settings.bar_spec,
        settings.starting_balance,
        settings.default_leverage,
        settings.oms_type,
        settings.log_level,
        fast,
    )


def _components_config(settings: BacktestSettings, fast: bool) -> BacktestRunConfig:
    run_config = build_run_config(settings)
    return linear_run_config(run_config) if fast else run_config


def load_engine(
    settings: BacktestSettings, fast: bool = True, silent: bool = False, streamed: bool = False
) -> LoadedEngine:
    """Build the engine of ``settings`` and load its data (the settings' start to end) from the catalog.

    ``silent``: Nautilus logging bypassed, for a process whose log nobody reads (a research worker). Whenever
    logging is on, whatever its level, the simulated exchange formats a debug line for every bar and price it
    matches (about 8 us a 1-minute bar). Logging is set up once per process, by its first engine.
    ``streamed``: the data is read a chunk at a time while the engine runs (nodes/backtest/streaming.py), and
    each point is freed once replayed: the same run with a fraction of the data in memory, for one run only.
    """
    run_config = _components_config(settings, fast)
    engine_config = msgspec.structs.replace(run_config.engine, strategies=[], actors=[])
    if silent:
        engine_config = msgspec.structs.replace(engine_config, logging=LoggingConfig(bypass_logging=True))
    bare = msgspec.structs.replace(run_config, engine=engine_config)
    node = BacktestNode(configs=[bare])
    node.build()
    engine = node.get_engine(bare.id)
    instruments = period_instruments(settings)
    _use_instruments(engine, instruments)
    if streamed:
        data_ts = stream_data(engine, bare.data, between_chunks=SharedMargins(engine, Venue(VENUE.value)))
    else:
        data_ts = _load_data(engine, bare.data)
    if fast:
        prepare_engine(engine)
    return_freed_memory()
    return LoadedEngine(
        engine=engine,
        node=node,
        key=engine_key(settings, fast),
        fast=fast,
        data_ts=data_ts,
        instruments=instruments,
        streamed=streamed,
    )


def _load_data(engine: BacktestEngine, data_configs: list[BacktestDataConfig]) -> np.ndarray:
    """Load every config's data into the engine at once; the ``ts_init`` of every point, sorted."""
    stamps: list[np.ndarray] = []
    for data_config in data_configs:  # as BacktestNode's one-shot run loads them, sorted once at the end
        result = BacktestNode.load_data_config(data_config)
        if not result.data:
            continue
        engine.add_data(result.data, client_id=result.client_id, sort=False)
        stamps.append(np.fromiter((d.ts_init for d in result.data), dtype=np.int64, count=len(result.data)))
    engine.sort_data()
    return np.sort(np.concatenate(stamps)) if stamps else np.empty(0, dtype=np.int64)


def return_freed_memory() -> bool:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``); whether it could.

    Reading the catalog leaves about 20 MB (16 symbols x 25 days) freed but held in the C heap: the buffers the
    Parquet decoding allocated through ``malloc``. The replay's own objects come from Python's allocator (its own
    mapped arenas), so those pages would stay unused, and counted in the process's memory, until the end."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    ctypes.CDLL(None).malloc_trim(0)
    return True


def _replace_components(engine: BacktestEngine, config: BacktestEngineConfig) -> None:
    """Swap the previous run's actors and strategies for new ones built from ``config``, in the kernel's order."""
    trader = engine.trader
    old = {id(c) for c in (*trader.actors(), *trader.strategies())}
    if old:
        # Disposing a component leaves its message-bus handlers subscribed: drop them, or every later run
        # would dispatch each bar and event to every strategy that ever ran on this engine.
        msgbus = engine.kernel.msgbus
        for subscription in msgbus.subscriptions():
            if id(getattr(subscription.handler, "__self__", None)) in old:
                msgbus.unsubscribe(subscription.topic, subscription.handler)
        engine.clear_actors()
        engine.clear_strategies()
    for actor_config in config.actors:
        engine.add_actor(ActorFactory.create(actor_config))
    for strategy_config in config.strategies:
        engine.add_strategy(StrategyFactory.create(strategy_config))


def window_range(data_ts: np.ndarray, settings: BacktestSettings) -> tuple[int, int]:
    """The indices of the loaded data points inside the settings' window: ``data_ts[low:high]``."""
    low = 0 if settings.start is None else int(np.searchsorted(data_ts, settings.start.value, side="left"))
    high = len(data_ts) if settings.end is None else int(np.searchsorted(data_ts, settings.end.value, side="right"))
    return low, high


def _window(data_ts: np.ndarray, settings: BacktestSettings) -> tuple[int, int]:
    """The first and last data point inside the settings' window: where a run on only that data starts and ends."""
    low, high = window_range(data_ts, settings)
    if low >= high:
        raise CatalogMissingDataError(
            f"no data between {settings.start} and {settings.end} for {', '.join(settings.symbols)}"
            f" in the catalog {settings.catalog}"
        )
    return int(data_ts[low]), int(data_ts[high - 1])


def run_on_engine(
    loaded: LoadedEngine,
    settings: BacktestSettings,
    progress_bar: ImportableActorConfig | None = None,
    prepare: Callable[[BacktestEngine], None] | None = None,
) -> BacktestOutcome:
    """Run the settings' strategy and actors over the settings' window on an engine loaded by ``load_engine``.

    The results equal those of a fresh engine loaded with only that window's data. ``prepare`` sees the engine
    with its new strategy and actors built, before it runs (research workers hand the strategy recorded factors).
    """
    key = engine_key(settings, loaded.fast)
    if key != loaded.key:
        raise ValueError(f"engine loaded for {loaded.key}, not for {key}")
    engine = loaded.engine
    if loaded.runs and loaded.streamed:
        raise ValueError("a streamed engine runs once: its data was read and freed by the first run")
    if loaded.runs:
        engine.reset()
    run_config = _components_config(settings, loaded.fast)
    engine_config = run_config.engine
    if progress_bar is not None:
        engine_config = msgspec.structs.replace(engine_config, actors=[*engine_config.actors, progress_bar])
    _replace_components(engine, engine_config)
    coverage = attach_strategy(engine)
    if prepare is not None:
        prepare(engine)
    first, last = _window(loaded.data_ts, settings)
    started = time.perf_counter()
    with survivors_frozen() if loaded.fast else nullcontext():
        engine.run(start=first, end=last, run_config_id=run_config.id)
    wall = time.perf_counter() - started
    loaded.runs += 1
    return BacktestOutcome(
        settings=settings,
        result=engine.get_result(),
        engine=engine,
        wall_seconds=wall,
        data_points=int(engine.iteration),
        record=RunRecord.of(engine),
        instruments=loaded.instruments,
        funding=funding_module(engine),
        factor_coverage=coverage,
    )
