"""Run a backtest config through Nautilus's BacktestNode on catalogued Binance data."""

import time
from collections.abc import Callable, Hashable
from contextlib import nullcontext
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd
from nautilus_trader.adapters.binance.common.types import BinanceBar
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
from nautilus_trader.model.data import Bar, FundingRateUpdate, MarkPriceUpdate
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.convert import interval_of_spec
from catalog.ingest import ingest
from catalog.instruments import VENUE, instrument_id_for
from factors.inputs import bar_type_for
from nodes.backtest.speed import linear_run_config, netting_guard, prepare_engine, survivors_frozen
from nodes.settings import BacktestSettings


class CatalogMissingDataError(RuntimeError):
    """The catalog lacks what the config asks for; the message says what to run to fill it."""


@dataclass
class BacktestOutcome:
    settings: BacktestSettings
    result: BacktestResult
    engine: BacktestEngine
    wall_seconds: float
    data_points: int  # bars, funding rates and mark prices the engine replayed
    positions: pd.DataFrame
    fills: pd.DataFrame
    account: pd.DataFrame
    extras: dict[str, Any] = field(default_factory=dict)


def _bar_class_in(catalog_dir: Path, bar_type: str) -> type | None:
    """BinanceBar when the catalog holds klines with taker-buy volume for this bar type, else plain Bar."""
    if (catalog_dir / "data" / "binance_bar" / bar_type).is_dir():
        return BinanceBar
    if (catalog_dir / "data" / "bar" / bar_type).is_dir():
        return Bar
    return None


def _missing_symbols(settings: BacktestSettings) -> list[str]:
    catalog_dir = settings.catalog
    known = set()
    if (catalog_dir / "data").is_dir():
        known = {i.id.value for i in ParquetDataCatalog(str(catalog_dir)).instruments()}
    missing = []
    for symbol in settings.symbols:
        instrument_id = instrument_id_for(symbol)
        bar_type = str(bar_type_for(instrument_id, settings.bar_spec))
        if instrument_id.value not in known or _bar_class_in(catalog_dir, bar_type) is None:
            missing.append(symbol)
    return missing


def ensure_catalog(settings: BacktestSettings, progress: Callable[[str], None] | None = None) -> None:
    """Fill the catalog from the config's source folders when it lacks the configured data; else say how."""
    missing = _missing_symbols(settings)
    if not missing:
        return
    sources = [s for s in settings.sources if s.is_dir()]
    if sources:
        files = [p for s in sources for p in s.rglob("*") if p.is_file() and p.name.split("-")[0] in missing]
        if files:
            if progress:
                progress(f"catalog {settings.catalog} lacks {', '.join(missing)}: ingesting {len(files)} files")
            ingest(files, settings.catalog, progress)
            missing = _missing_symbols(settings)
    if missing:
        interval = interval_of_spec(settings.bar_spec)
        start = settings.start.strftime("%Y-%m-%d") if settings.start is not None else "2025-05-01"
        end = settings.end.strftime("%Y-%m-%d") if settings.end is not None else "2025-05-31"
        raise CatalogMissingDataError(
            f"the catalog {settings.catalog} has no {settings.bar_spec} bars for {', '.join(missing)}.\n"
            f"Fill it with one of:\n"
            f"  uv run ats data download {' '.join(missing)} --start {start} --end {end} --interval {interval}"
            f" --catalog {settings.catalog}\n"
            f"  uv run ats data ingest FOLDER_WITH_BINANCE_FILES --catalog {settings.catalog}",
        )


def _strategy_configs(settings: BacktestSettings) -> list[ImportableStrategyConfig]:
    return [
        ImportableStrategyConfig(
            strategy_path=settings.strategy_path, config_path=settings.strategy_config_path, config=config
        )
        for config in settings.strategy_instance_configs()
    ]


def build_run_config(settings: BacktestSettings) -> BacktestRunConfig:
    catalog_dir = settings.catalog
    start = settings.start.isoformat() if settings.start is not None else None
    end = settings.end.isoformat() if settings.end is not None else None
    data: list[BacktestDataConfig] = []
    for symbol in settings.symbols:
        instrument_id = instrument_id_for(symbol)
        bar_type = bar_type_for(instrument_id, settings.bar_spec)
        bar_class = _bar_class_in(catalog_dir, str(bar_type))
        data.append(
            BacktestDataConfig(
                catalog_path=str(catalog_dir),
                data_cls=bar_class,
                instrument_id=instrument_id,
                bar_spec=str(bar_type.spec) if bar_class is Bar else None,
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
        actors=[ImportableActorConfig(**actor) for actor in settings.actors],
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
    settings: BacktestSettings, progress: Callable[[str], None] | None = None, fast: bool = True
) -> BacktestOutcome:
    """Run the config. ``fast`` applies nodes.backtest.speed (linear in trades, same results); False runs plain.

    When the fast run's guard sees a position pattern on which its HEDGING OMS would differ from NETTING,
    the run is repeated plain, so the results are always those of the NETTING run.
    """
    ensure_catalog(settings, progress)
    outcome = _run(settings, fast)
    mismatch = fast_path_mismatch(outcome)
    if mismatch is not None:
        if progress:
            progress(f"fast backtest not equivalent to NETTING: {mismatch}; running it again plain")
        outcome = _run(settings, fast=False)
        outcome.extras["fast_path_rejected"] = mismatch
    return outcome


def fast_path_mismatch(outcome: BacktestOutcome) -> str | None:
    """Why a fast run's results are not those of the NETTING run (then run it plain), or None."""
    if outcome.settings.oms_type != "NETTING":
        return None
    guard = netting_guard(outcome.engine)
    return guard.mismatch if guard is not None else None


def _run(settings: BacktestSettings, fast: bool) -> BacktestOutcome:
    started = time.perf_counter()
    loaded = load_engine(settings, fast)
    outcome = run_on_engine(loaded, settings)
    loaded.engine.clear_data()  # a one-off run: drop the data now, as Nautilus's BacktestNode does
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
    runs: int = 0

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


def load_engine(settings: BacktestSettings, fast: bool = True) -> LoadedEngine:
    """Build the engine of ``settings`` and load its data (the settings' start to end) from the catalog."""
    run_config = _components_config(settings, fast)
    bare = msgspec.structs.replace(
        run_config, engine=msgspec.structs.replace(run_config.engine, strategies=[], actors=[])
    )
    node = BacktestNode(configs=[bare])
    node.build()
    engine = node.get_engine(bare.id)
    stamps: list[np.ndarray] = []
    for data_config in bare.data:  # as BacktestNode's one-shot run loads them, sorted once at the end
        result = BacktestNode.load_data_config(data_config)
        if not result.data:
            continue
        engine.add_data(result.data, client_id=result.client_id, sort=False)
        stamps.append(np.fromiter((d.ts_init for d in result.data), dtype=np.int64, count=len(result.data)))
    engine.sort_data()
    if fast:
        prepare_engine(engine)
    data_ts = np.sort(np.concatenate(stamps)) if stamps else np.empty(0, dtype=np.int64)
    return LoadedEngine(engine=engine, node=node, key=engine_key(settings, fast), fast=fast, data_ts=data_ts)


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


def _window(data_ts: np.ndarray, settings: BacktestSettings) -> tuple[int, int]:
    """The first and last data point inside the settings' window: where a run on only that data starts and ends."""
    low = 0 if settings.start is None else int(np.searchsorted(data_ts, settings.start.value, side="left"))
    high = len(data_ts) if settings.end is None else int(np.searchsorted(data_ts, settings.end.value, side="right"))
    if low >= high:
        raise CatalogMissingDataError(
            f"no data between {settings.start} and {settings.end} for {', '.join(settings.symbols)}"
            f" in the catalog {settings.catalog}"
        )
    return int(data_ts[low]), int(data_ts[high - 1])


def run_on_engine(loaded: LoadedEngine, settings: BacktestSettings) -> BacktestOutcome:
    """Run the settings' strategy and actors over the settings' window on an engine loaded by ``load_engine``.

    The results equal those of a fresh engine loaded with only that window's data.
    """
    key = engine_key(settings, loaded.fast)
    if key != loaded.key:
        raise ValueError(f"engine loaded for {loaded.key}, not for {key}")
    engine = loaded.engine
    if loaded.runs:
        engine.reset()
    run_config = _components_config(settings, loaded.fast)
    _replace_components(engine, run_config.engine)
    first, last = _window(loaded.data_ts, settings)
    started = time.perf_counter()
    with survivors_frozen() if loaded.fast else nullcontext():
        engine.run(start=first, end=last, run_config_id=run_config.id)
    wall = time.perf_counter() - started
    loaded.runs += 1
    trader = engine.trader
    return BacktestOutcome(
        settings=settings,
        result=engine.get_result(),
        engine=engine,
        wall_seconds=wall,
        data_points=int(engine.iteration),
        positions=trader.generate_positions_report(),
        fills=trader.generate_order_fills_report(),
        account=trader.generate_account_report(Venue(VENUE.value)),
    )
