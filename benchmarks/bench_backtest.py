"""Backtest speed (issues #2 and #8): the EMA(10/20) cross on real 1m bars of 16 Binance perpetuals.

Rows: the baseline bars/s of the EMA cross through BacktestNode (16 symbols x 30 days); the 16-symbol run on
the common window with and without orders; seconds per closed position as symbols go 1, 2, 4, 8, 16.
All runs use ``run_backtest`` as ``ats backtest`` does (the fast path of nodes/backtest_speed.py).

``uv run python -m benchmarks.bench_backtest --verify`` compares the fast and the plain Nautilus runs on the
full common window for 1, 2 and 4 symbols (slow: the plain 4-symbol run takes minutes).
"""

import argparse
import dataclasses
import resource
import sys
import time
from pathlib import Path

import pandas as pd
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from benchmarks.table import Row
from catalog.ingest import ingest
from nodes.backtest import BacktestOutcome, run_backtest
from nodes.settings import PACKAGE_DIR, BacktestSettings, load_backtest_settings

ROOT = PACKAGE_DIR.parent
SOURCE = ROOT.parent / "shared" / "data" / "binance" / "ohlcv_2025-03_2025-06"
CATALOG = ROOT / "data" / "bench_catalog"  # 1m bars only: the workload is bars and orders, nothing else
SYMBOLS = tuple(f"{s}USDT" for s in "BTC ETH SOL XRP BNB ADA AVAX BCH ENA ETC LAYER LINK LTC SUI XLM XMR".split())
COMMON = (pd.Timestamp("2025-05-09", tz="UTC"), pd.Timestamp("2025-06-03", tz="UTC"))  # ADA starts 05-09
# 30 days of every symbol's file (ADA's starts 05-09, ETH's runs on to 06-15: cut at the others' end)
THIRTY_DAYS = (pd.Timestamp("2025-05-04 16:00", tz="UTC"), pd.Timestamp("2025-06-03 15:30", tz="UTC"))
FREQTRADE_16 = "freqtrade 46 s, 16 symbols x 25 days (NAUTILUS_NOTES)"


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


def ema_settings(symbols: tuple[str, ...], window: Window, trade: bool = True) -> BacktestSettings:
    base = load_backtest_settings(PACKAGE_DIR / "configs" / "ema_cross.toml")
    return dataclasses.replace(
        base,
        catalog=bench_catalog(),
        sources=(),
        symbols=symbols,
        start=window[0],
        end=window[1],
        strategy_config={**base.strategy_config, "trade": trade},
    )


@dataclasses.dataclass(frozen=True)
class Timed:
    outcome: BacktestOutcome
    wall: float  # the engine run, as BacktestOutcome.wall_seconds
    cpu: float  # process CPU time around the whole call: less sensitive to other work on a shared machine

    @property
    def positions(self) -> int:
        return len(self.outcome.positions)

    @property
    def bars(self) -> int:
        return self.outcome.data_points


def timed_run(settings: BacktestSettings, fast: bool = True) -> Timed:
    cpu = time.process_time()
    outcome = run_backtest(settings, fast=fast)
    return Timed(outcome, outcome.wall_seconds, time.process_time() - cpu)


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
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # this process so far, all runs
    out.append(
        Row(
            f"EMA cross with orders, {_label(top, window)}",
            "wall s",
            full.wall,
            target=f"<= 4x no orders ({4 * quiet.wall:.0f} s)",
            baseline=FREQTRADE_16 if not quick else "",
            note=f"{full.wall / quiet.wall:.2f}x; {full.bars / full.wall:,.0f} bars/s; {full.positions:,} positions;"
            f" {full.cpu:.1f} s cpu; peak RSS {peak_mb:,.0f} MB",
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
            f" {1000 * timed.cpu / timed.positions:.2f} ms cpu/position",
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


def verify_full_window(counts: tuple[int, ...] = (1, 2, 4)) -> int:
    """Fast vs plain on the full common window, with the equality checks of tests/test_backtest_speed.py."""
    from tests.test_backtest_speed import assert_same_results

    for count in counts:
        settings = ema_settings(SYMBOLS[:count], COMMON)
        plain, fast = timed_run(settings, fast=False), timed_run(settings, fast=True)
        assert_same_results(plain.outcome, fast.outcome)
        print(
            f"{count} symbols: identical, {fast.positions:,} positions; plain {plain.wall:.1f} s wall"
            f" ({plain.cpu:.1f} cpu), fast {fast.wall:.1f} s wall ({fast.cpu:.1f} cpu)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verify", action="store_true", help="full-window equality of fast and plain runs")
    parser.add_argument("--symbols", type=int, nargs="*", default=[1, 2, 4])
    args = parser.parse_args()
    if args.verify:
        sys.exit(verify_full_window(tuple(args.symbols)))
    parser.print_help()
