"""Bars of another size from 1-minute bars: Nautilus's internal aggregation against bars built into the catalog.

The EMA(10/20) cross on 5-minute bars of real 1m data (the shared 16 perpetuals, 25 days; --quick: 4 x 5 days),
three ways, each in a fresh process:

* internal: the 1m bars are replayed and Nautilus aggregates them (``5-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL``);
* catalog, first run: ``catalog.aggregate.ensure_bars`` builds the 5m bars into a copy of the catalog, then
  the 5m bars are replayed;
* catalog, later runs: the 5m bars are already there (``ensure_bars`` only reads timestamps).

Also says whether Nautilus's internal bars keep Binance's taker-buy volume (they do not: they are plain ``Bar``).
``uv run python -m benchmarks bars [--quick]``.
"""

import dataclasses
import multiprocessing
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import msgspec
import pandas as pd
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.data import Bar, BarType

from benchmarks.bench_backtest import COMMON, SYMBOLS, bench_catalog, ema_settings
from benchmarks.table import Row
from catalog.aggregate import ensure_bars
from catalog.inventory import data_dir
from nodes.backtest.runner import build_run_config
from nodes.backtest.speed import linear_run_config, prepare_engine, survivors_frozen
from nodes.settings import BacktestSettings


def _replay(settings: BacktestSettings, internal: bool) -> tuple[float, int, int]:
    """(node.run wall seconds, data points, positions) of the EMA cross on ``settings`` through the fast path."""
    config = build_run_config(settings)
    if internal:  # the strategy subscribes to 5m bars Nautilus builds from the replayed 1m bars
        strategies = [
            msgspec.structs.replace(
                s,
                config={
                    **s.config,
                    "bar_type": s.config["bar_type"].replace("-1-MINUTE-LAST-EXTERNAL", "-5-MINUTE-LAST-INTERNAL")
                    + "@1-MINUTE-EXTERNAL",
                },
            )
            for s in config.engine.strategies
        ]
        config = msgspec.structs.replace(config, engine=msgspec.structs.replace(config.engine, strategies=strategies))
    config = linear_run_config(config)
    node = BacktestNode(configs=[config])
    node.build()
    engine = node.get_engine(config.id)
    prepare_engine(engine)
    started = time.perf_counter()
    with survivors_frozen():
        node.run()
    wall = time.perf_counter() - started
    result = (wall, int(engine.iteration), len(engine.trader.generate_positions_report()))
    engine.dispose()
    return result


def _measure(settings: BacktestSettings, mode: str) -> dict[str, float]:
    """One way of getting 5m bars, timed from the catalog as it is to the end of the replay."""
    started = time.perf_counter()
    cpu = time.process_time()
    if mode == "internal":
        wall, points, positions = _replay(dataclasses.replace(settings, bar_spec="1-MINUTE"), internal=True)
        built = 0
    else:
        ready = ensure_bars(settings.catalog, settings.symbols, "5-MINUTE", settings.start, settings.end)
        built = sum(r.added for r in ready.values())
        wall, points, positions = _replay(dataclasses.replace(settings, bar_spec="5-MINUTE"), internal=False)
    return {
        "total": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "replay": wall,
        "points": points,
        "positions": positions,
        "built": built,
    }


def _fresh(settings: BacktestSettings, mode: str) -> dict[str, float]:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_measure, settings, mode).result()


def _copy_1m(source: Path, symbols: tuple[str, ...], target: Path) -> Path:
    """A catalog holding only the symbols' instruments and 1m bars (no 5m bars yet)."""
    for folder in ("crypto_perpetual", "bar", "binance_bar"):
        root = data_dir(source) / folder
        for path in root.glob("*") if root.is_dir() else []:
            if path.name.split("-")[0] in symbols and ("MINUTE" not in path.name or "-1-MINUTE-" in path.name):
                shutil.copytree(path, data_dir(target) / folder / path.name)
    return target


class _BarTypes(Actor):
    """Records the class of every bar of one bar type it receives."""

    def __init__(self, bar_type: str) -> None:
        super().__init__()
        self.bar_type = BarType.from_str(bar_type)
        self.received: list[type] = []

    def on_start(self) -> None:
        self.subscribe_bars(self.bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.received.append(type(bar))


def internal_bar_class() -> str:
    """The class of Nautilus's internally aggregated 5m bars from one day of real Binance Vision 1m klines
    (``BinanceBar`` would keep the taker-buy volume; Nautilus builds plain ``Bar``)."""
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.enums import AccountType, OmsType
    from nautilus_trader.model.objects import Money

    from catalog.convert import convert_file
    from catalog.files import identify
    from catalog.instruments import VENUE, binance_perpetual

    source = Path(__file__).resolve().parents[2] / "shared/data/binance/klines_1m_vision/FILUSDT-1m-2024-09.csv.gz"
    instrument = binance_perpetual("FILUSDT")
    bars = [b for b in convert_file(identify(source), instrument) if isinstance(b, Bar)][:1440]
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(VENUE, OmsType.NETTING, AccountType.MARGIN, [Money(1000, USDT)], base_currency=USDT)
    engine.add_instrument(instrument)
    engine.add_data(bars)
    actor = _BarTypes("FILUSDT-PERP.BINANCE-5-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL")
    engine.add_actor(actor)
    engine.run()
    kinds = sorted({cls.__name__ for cls in actor.received})
    engine.dispose()
    return f"{len(actor.received)} internal 5m bars from {type(bars[0]).__name__} 1m: {', '.join(kinds)}"


def rows(quick: bool) -> list[Row]:
    symbols = SYMBOLS[:4] if quick else SYMBOLS
    window = (COMMON[0], COMMON[0] + pd.Timedelta(days=5)) if quick else COMMON
    days = (window[1] - window[0]) / pd.Timedelta(days=1)
    label = f"EMA cross on 5m from 1m, {len(symbols)} symbols x {days:g} d"
    with tempfile.TemporaryDirectory(prefix="bench-bars-") as tmp:
        catalog = _copy_1m(bench_catalog(), symbols, Path(tmp) / "catalog")
        settings = dataclasses.replace(ema_settings(symbols, window), catalog=catalog)
        internal = _fresh(settings, "internal")
        cold = _fresh(settings, "catalog")
        warm = _fresh(settings, "catalog")
    out = [Row("Nautilus internal bars keep Binance taker-buy volume?", "yes=1", 0.0, note=internal_bar_class())]
    for name, m in (
        ("Nautilus internal aggregation (1m replayed)", internal),
        ("catalog aggregation, first run (builds 5m)", cold),
        ("catalog aggregation, later runs", warm),
    ):
        out.append(
            Row(
                f"{label}: {name}",
                "total s",
                m["total"],
                note=f"replay {m['replay']:.1f} s, {m['points']:,.0f} data points, {m['positions']:,.0f} positions, "
                f"{m['cpu']:.1f} s cpu" + (f", {m['built']:,.0f} bars built" if m["built"] else ""),
            )
        )
    return out
