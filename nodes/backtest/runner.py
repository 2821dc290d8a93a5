"""Run a backtest config through Nautilus's BacktestNode on catalogued Binance data."""

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from nautilus_trader.adapters.binance.common.types import BinanceBar
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
                progress(
                    f"catalog {settings.catalog} lacks {', '.join(missing)}: ingesting {len(files)} files"
                )
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
    instrument_ids = [instrument_id_for(s).value for s in settings.symbols]
    if settings.per_instrument_strategy:
        return [
            ImportableStrategyConfig(
                strategy_path=settings.strategy_path,
                config_path=settings.strategy_config_path,
                config={
                    "instrument_id": instrument_id,
                    "bar_type": str(bar_type_for(instrument_id_for(symbol), settings.bar_spec)),
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
    )
