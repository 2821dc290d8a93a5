"""Run a backtest config through Nautilus's BacktestNode on catalogued Binance data."""

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.backtest.results import BacktestResult
from nautilus_trader.config import (
    BacktestDataConfig,
    BacktestEngineConfig,
    BacktestRunConfig,
    BacktestVenueConfig,
    ImportableActorConfig,
    ImportableStrategyConfig,
    LoggingConfig,
)
from nautilus_trader.model.data import Bar, FundingRateUpdate, MarkPriceUpdate
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.convert import bar_type_for, interval_of_spec
from catalog.ingest import ingest
from catalog.instruments import VENUE, instrument_id_for
from catalog.inventory import bar_class_in, instrument_for_period
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
    instruments: dict[str, CryptoPerpetual] = field(default_factory=dict)  # the definitions the run used
    extras: dict[str, Any] = field(default_factory=dict)


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


def _missing_symbols(settings: BacktestSettings) -> list[str]:
    catalog_dir = settings.catalog
    known = set()
    if (catalog_dir / "data").is_dir():
        known = {i.id.value for i in ParquetDataCatalog(str(catalog_dir)).instruments()}
    missing = []
    interval = interval_of_spec(settings.bar_spec)
    for symbol in settings.symbols:
        instrument_id = instrument_id_for(symbol)
        bar_type = str(bar_type_for(instrument_id, interval))
        if instrument_id.value not in known or bar_class_in(catalog_dir, bar_type) is None:
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
    interval = interval_of_spec(settings.bar_spec)
    instrument_ids = [instrument_id_for(s).value for s in settings.symbols]
    if settings.per_instrument_strategy:
        return [
            ImportableStrategyConfig(
                strategy_path=settings.strategy_path,
                config_path=settings.strategy_config_path,
                config={
                    "instrument_id": instrument_id,
                    "bar_type": str(bar_type_for(instrument_id_for(symbol), interval)),
                    **settings.strategy_config,
                },
            )
            for symbol, instrument_id in zip(settings.symbols, instrument_ids, strict=True)
        ]
    config = {"instrument_ids": instrument_ids, "bar_spec": settings.bar_spec, **settings.strategy_config}
    return [
        ImportableStrategyConfig(
            strategy_path=settings.strategy_path, config_path=settings.strategy_config_path, config=config
        ),
    ]


def build_run_config(settings: BacktestSettings) -> BacktestRunConfig:
    catalog_dir = settings.catalog
    interval = interval_of_spec(settings.bar_spec)
    start = settings.start.isoformat() if settings.start is not None else None
    end = settings.end.isoformat() if settings.end is not None else None
    data: list[BacktestDataConfig] = []
    for symbol in settings.symbols:
        instrument_id = instrument_id_for(symbol)
        bar_type = str(bar_type_for(instrument_id, interval))
        bar_class = bar_class_in(catalog_dir, bar_type)
        data.append(
            BacktestDataConfig(
                catalog_path=str(catalog_dir),
                data_cls=bar_class,
                instrument_id=instrument_id,
                bar_spec=f"{settings.bar_spec}-LAST" if bar_class is Bar else None,
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
    guard = netting_guard(outcome.engine) if fast and settings.oms_type == "NETTING" else None
    if guard is not None and guard.mismatch is not None:
        if progress:
            progress(f"fast backtest not equivalent to NETTING: {guard.mismatch}; running it again plain")
        outcome = _run(settings, fast=False)
        outcome.extras["fast_path_rejected"] = guard.mismatch
    return outcome


def _run(settings: BacktestSettings, fast: bool) -> BacktestOutcome:
    run_config = build_run_config(settings)
    if fast:
        run_config = linear_run_config(run_config)
    node = BacktestNode(configs=[run_config])
    node.build()
    instruments = period_instruments(settings)
    _use_instruments(node.get_engine(run_config.id), instruments)
    if fast:
        prepare_engine(node.get_engine(run_config.id))
    started = time.perf_counter()
    with survivors_frozen() if fast else nullcontext():
        results = node.run()
    wall = time.perf_counter() - started
    engine = node.get_engine(run_config.id)
    trader = engine.trader
    return BacktestOutcome(
        settings=settings,
        result=results[0],
        engine=engine,
        wall_seconds=wall,
        data_points=int(engine.iteration),
        positions=trader.generate_positions_report(),
        fills=trader.generate_order_fills_report(),
        account=trader.generate_account_report(Venue(VENUE.value)),
        instruments=instruments,
    )
