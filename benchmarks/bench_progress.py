"""What the backtest progress bar costs: the EMA(10/20) cross on real 1m bars with and without it, alternated,
each run in a fresh process (16 symbols x 25 days; --quick: 4 x 5 days). ``uv run python -m benchmarks progress``.
"""

import statistics

import pandas as pd

from benchmarks.bench_backtest import COMMON, SYMBOLS, ema_settings
from benchmarks.table import Row

RUNS = 3


def _measure(settings, progress_bar: bool) -> tuple[float, float]:  # noqa: ANN001
    import time

    from nodes.backtest.runner import run_backtest

    cpu = time.process_time()
    outcome = run_backtest(settings, progress_bar=progress_bar)
    return outcome.wall_seconds, time.process_time() - cpu


def _fresh(settings, progress_bar: bool) -> tuple[float, float]:  # noqa: ANN001
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_measure, settings, progress_bar).result()


def tick_cost_us(calls: int = 20_000) -> float:
    """Microseconds one progress redraw costs (formatting the line and writing it), the work of each timer tick."""
    import io
    import time

    from nodes.backtest.progress import progress_line

    sink = io.StringIO()
    started = time.perf_counter()
    for i in range(calls):
        sink.write("\r\033[K" + progress_line(i / calls, 1_746_835_200_000_000_000 + i * 60_000_000_000, 577_949, 1.5))
    return (time.perf_counter() - started) / calls * 1e6


def rows(quick: bool) -> list[Row]:
    symbols = SYMBOLS[:4] if quick else SYMBOLS
    window = (COMMON[0], COMMON[0] + pd.Timedelta(days=5)) if quick else COMMON
    settings = ema_settings(symbols, window)
    without, with_bar = [], []
    for _ in range(RUNS):  # alternated, so a change of load on a shared machine hits both alike
        without.append(_fresh(settings, False))
        with_bar.append(_fresh(settings, True))
    days = (window[1] - window[0]) / pd.Timedelta(days=1)
    label = f"EMA cross, {len(symbols)} symbols x {days:g} d 1m"
    from nodes.backtest.progress import TICKS

    cost = tick_cost_us()
    out = [
        Row(
            "progress bar: one timer tick (format + write the line)",
            "us",
            cost,
            note=f"{TICKS} ticks per run whatever its length: {TICKS * cost / 1000:.1f} ms per run",
        )
    ]
    for name, runs in (("no progress bar", without), ("with progress bar", with_bar)):
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        out.append(
            Row(
                f"{label}, {name}",
                "node.run s (median)",
                statistics.median(walls),
                note=f"runs {', '.join(f'{w:.1f}' for w in walls)} s; cpu median {statistics.median(cpus):.1f} s",
            )
        )
    return out
