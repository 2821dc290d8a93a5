"""Backtest speed (issues #2 and #8): the EMA(10/20) cross on real 1m bars of 16 Binance perpetuals.

Rows: the baseline bars/s of the EMA cross through BacktestNode (16 symbols x 30 days); the 16-symbol run on
the common window with and without orders; seconds per closed position as symbols go 1, 2, 4, 8, 16.
All runs use ``run_backtest`` as ``ats backtest`` does (the fast path of nodes/backtest/speed.py).

``uv run python -m benchmarks.bench_backtest --verify`` compares the fast and the plain Nautilus runs on the
full common window for 1, 2 and 4 symbols (slow: the plain 4-symbol run takes minutes).

``uv run python -m benchmarks.bench_backtest --per-instrument`` prints what one trade costs (with-orders run
minus no-orders run, per position) in settings that separate the instrument count from the time between
trades: the diagnosis of docs/backtest_speed.md, "Cost per position and the number of instruments".
"""

import argparse
import dataclasses
import gc
import multiprocessing
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from benchmarks.table import Row, format_table
from catalog.ingest import ingest
from catalog.instruments import instrument_id_for
from factors.inputs import bar_type_for
from nodes.backtest.runner import run_backtest
from nodes.settings import PACKAGE_DIR, BacktestSettings, load_backtest_settings

ROOT = PACKAGE_DIR.parent
SOURCE = ROOT.parent / "shared" / "data" / "binance" / "ohlcv_2025-03_2025-06"
CATALOG = ROOT / "data" / "bench_catalog"  # 1m bars only: the workload is bars and orders, nothing else
SYMBOLS = tuple(f"{s}USDT" for s in "BTC ETH SOL XRP BNB ADA AVAX BCH ENA ETC LAYER LINK LTC SUI XLM XMR".split())
COMMON = (pd.Timestamp("2025-05-09", tz="UTC"), pd.Timestamp("2025-06-03", tz="UTC"))  # ADA starts 05-09
# 30 days of every symbol's file (ADA's starts 05-09, ETH's runs on to 06-15: cut at the others' end)
THIRTY_DAYS = (pd.Timestamp("2025-05-04 16:00", tz="UTC"), pd.Timestamp("2025-06-03 15:30", tz="UTC"))
FREQTRADE_16 = "freqtrade 46 s, 16 symbols x 25 days (measured once, docs/backtest_speed.md)"


def bench_catalog() -> Path:
    """The benchmark catalog under data/ (not in git), ingested from ../shared/data on first use."""
    known = set()
    if (CATALOG / "data").is_dir():
        known = {i.raw_symbol.value for i in ParquetDataCatalog(str(CATALOG)).instruments()}
    missing = [s for s in SYMBOLS if s not in known]
    if missing:
        ingest([SOURCE / f"{s}-1m.csv.gz" for s in missing], CATALOG)
    return CATALOG


Window = tuple[pd.Timestamp, pd.Timestamp]


def ema_settings(
    symbols: tuple[str, ...],
    window: Window,
    trade: bool = True,
    traded_symbols: tuple[str, ...] = (),
    actors: tuple[dict, ...] = (),
) -> BacktestSettings:
    base = load_backtest_settings(PACKAGE_DIR / "configs" / "ema_cross.toml")
    return dataclasses.replace(
        base,
        catalog=bench_catalog(),
        sources=(),
        symbols=symbols,
        start=window[0],
        end=window[1],
        strategy_config={**base.strategy_config, "trade": trade, "traded_symbols": list(traded_symbols)},
        actors=actors,
    )


@dataclasses.dataclass(frozen=True)
class Timed:
    wall: float  # the engine run, as BacktestOutcome.wall_seconds
    cpu: float  # process CPU time around the whole call: less sensitive to other work on a shared machine
    gc_full: float  # seconds in the cyclic GC's full (generation 2) collections during the call
    positions: int
    bars: int
    peak_rss_mb: float  # of the process that ran it: one backtest per process, as `ats backtest` runs


def _measure(settings: BacktestSettings, fast: bool) -> Timed:
    full_collections = [0.0, 0.0]  # started at, total

    def clock_full_collections(phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                full_collections[0] = time.perf_counter()
            else:
                full_collections[1] += time.perf_counter() - full_collections[0]

    gc.callbacks.append(clock_full_collections)
    try:
        cpu = time.process_time()
        outcome = run_backtest(settings, fast=fast)
        cpu = time.process_time() - cpu
    finally:
        gc.callbacks.remove(clock_full_collections)
    return Timed(
        wall=outcome.wall_seconds,
        cpu=cpu,
        gc_full=full_collections[1],
        positions=len(outcome.positions),
        bars=outcome.data_points,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


def timed_run(settings: BacktestSettings, fast: bool = True) -> Timed:
    """One backtest in a fresh process, as a trader runs it: no earlier run's engine or heap weighs on it."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_measure, settings, fast).result()


def _label(symbols: int, window: Window) -> str:
    days = (window[1] - window[0]) / pd.Timedelta(days=1)
    return f"{symbols} symbols x {round(days, 1):g} d 1m"


def rows(quick: bool) -> list[Row]:
    window = (COMMON[0], COMMON[0] + pd.Timedelta(days=5)) if quick else COMMON
    top = 4 if quick else 16
    out: list[Row] = []

    if not quick:
        base = timed_run(ema_settings(SYMBOLS, THIRTY_DAYS))
        out.append(
            Row(
                f"EMA cross baseline, BacktestNode, {_label(16, THIRTY_DAYS)}",
                "bars/s",
                base.bars / base.wall,
                note=f"{base.bars:,} bars, {base.positions:,} positions, {base.wall:.1f} s wall, {base.cpu:.1f} s cpu",
            )
        )

    quiet = timed_run(ema_settings(SYMBOLS[:top], window, trade=False))
    out.append(
        Row(
            f"EMA cross no orders, {_label(top, window)}",
            "wall s",
            quiet.wall,
            note=f"{quiet.bars / quiet.wall:,.0f} bars/s, {quiet.cpu:.1f} s cpu",
        )
    )

    scaling: list[Timed] = []
    for count in (1, 2, 4) if quick else (1, 2, 4, 8, 16):
        scaling.append(timed_run(ema_settings(SYMBOLS[:count], window)))
    full = scaling[-1]
    out.append(
        Row(
            f"EMA cross with orders, {_label(top, window)}",
            "wall s",
            full.wall,
            target=f"<= 4x no orders ({4 * quiet.wall:.0f} s)",
            baseline=FREQTRADE_16 if not quick else "",
            note=f"{full.wall / quiet.wall:.2f}x; {full.bars / full.wall:,.0f} bars/s; {full.positions:,} positions;"
            f" {full.cpu:.1f} s cpu; peak RSS {full.peak_rss_mb:,.0f} MB",
        )
    )

    # Before: Nautilus as configured (NETTING, its own analyzer), the same 2-symbol run
    plain = timed_run(ema_settings(SYMBOLS[:2], window), fast=False)
    out.append(
        Row(
            f"EMA cross plain Nautilus (before), {_label(2, window)}",
            "wall s",
            plain.wall,
            baseline=f"fast: {scaling[1].wall:.1f} s",
            note=f"{plain.positions:,} positions, {plain.wall / scaling[1].wall:.0f}x the fast run;"
            f" {plain.cpu:.1f} s cpu",
        )
    )
    out += _per_position_rows(
        "symbols", [(f"{_label(n, window)}", t) for n, t in zip((1, 2, 4, 8, 16), scaling, strict=False)]
    )
    # The same symbols over a longer and longer window: history grows while the instrument count stays
    history = [
        (
            f"{_label(top, (window[0], window[0] + span))}",
            timed_run(ema_settings(SYMBOLS[:top], (window[0], window[0] + span))),
        )
        for span in (pd.Timedelta(days=d) for d in ((1.25, 2.5) if quick else (6, 12)))
    ]
    out += _per_position_rows("days", [*history, (_label(top, window), full)])
    return out


def _per_position_rows(axis: str, runs: list[tuple[str, Timed]]) -> list[Row]:
    per_position = [t.wall / t.positions for _, t in runs]
    out = [
        Row(
            f"EMA cross scaling in {axis}, {label}",
            "ms/position",
            1000 * seconds,
            target="flat within 25%",
            note=f"{timed.positions:,} positions, {timed.wall:.1f} s wall,"
            f" {1000 * timed.cpu / timed.positions:.2f} ms cpu/position, {timed.gc_full:.2f} s in full GC",
        )
        for (label, timed), seconds in zip(runs, per_position, strict=True)
    ]
    out.append(
        Row(
            f"EMA cross scaling in {axis}, {runs[0][0]} .. {runs[-1][0]}",
            "max/min - 1",
            max(per_position) / min(per_position) - 1,
            target="<= 0.25",
            note="wall per closed position (shared 2-core machine: compare the cpu figures too)",
        )
    )
    return out


def per_instrument_rows() -> list[Row]:
    """Cost of one trade as the instruments around it and the time between trades change."""
    first = SYMBOLS[:1]
    idle = {
        "actor_path": "benchmarks.idle:IdlePerBar",
        "config_path": "benchmarks.idle:IdlePerBarConfig",
        "config": {"bar_type": str(bar_type_for(instrument_id_for(first[0]), "1-MINUTE")), "microseconds": 300},
    }
    cases = [
        ("1 symbol, trading", ema_settings(first, COMMON), ema_settings(first, COMMON, trade=False)),
        (
            "1 symbol, trading, 300 us idle per bar",
            ema_settings(first, COMMON, actors=(idle,)),
            ema_settings(first, COMMON, trade=False, actors=(idle,)),
        ),
        (
            "16 symbols, only BTCUSDT trading",
            ema_settings(SYMBOLS, COMMON, traded_symbols=first),
            ema_settings(SYMBOLS, COMMON, trade=False),
        ),
        ("16 symbols, all trading", ema_settings(SYMBOLS, COMMON), ema_settings(SYMBOLS, COMMON, trade=False)),
    ]
    out = []
    for label, with_orders, without in cases:
        traded, quiet = timed_run(with_orders), timed_run(without)
        out.append(
            Row(
                f"EMA cross cost of one trade (with orders - without), {label}",
                "ms/position",
                1000 * (traded.wall - quiet.wall) / traded.positions,
                note=f"{traded.positions:,} positions; wall {traded.wall:.1f} s with orders, {quiet.wall:.1f} s"
                f" without; cpu {traded.cpu:.1f} s, {quiet.cpu:.1f} s",
            )
        )
    return out


def verify_full_window(counts: tuple[int, ...] = (1, 2, 4)) -> int:
    """Fast vs plain on the full common window, with the equality checks of tests/test_backtest_speed.py."""
    from tests.test_backtest_speed import assert_same_results

    for count in counts:
        settings = ema_settings(SYMBOLS[:count], COMMON)
        plain, fast = run_backtest(settings, fast=False), run_backtest(settings, fast=True)
        assert_same_results(plain, fast)
        print(
            f"{count} symbols: identical, {len(fast.positions):,} positions;"
            f" plain {plain.wall_seconds:.1f} s wall, fast {fast.wall_seconds:.1f} s wall",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verify", action="store_true", help="full-window equality of fast and plain runs")
    parser.add_argument("--symbols", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--per-instrument", action="store_true", help="cost of one trade vs instruments and time")
    args = parser.parse_args()
    if args.verify:
        sys.exit(verify_full_window(tuple(args.symbols)))
    if args.per_instrument:
        print(format_table(per_instrument_rows()))
        sys.exit(0)
    parser.print_help()
