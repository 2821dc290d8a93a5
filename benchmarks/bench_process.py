"""Whole-process cost of the command line (issue #18): ``ats --help`` and ``ats backtest`` on the EMA cross.

Each row runs the installed ``ats`` script in a fresh process and reads its CPU time (user + sys, from
``os.wait4``), which a shared machine's load disturbs far less than wall time, beside the wall time and the peak
memory. For the backtest the run's own time (catalog read and replay, ``summary.json``'s ``wall_seconds``) is
taken from the wall time: what is left is everything outside the loop (interpreter start, imports, settings, the
catalog check, the report and its files, the exit). ``ats backtest`` writes the raw tables in a second process
that it waits for: the cpu row includes that process's cpu (``os.wait4`` counts reaped descendants), the peak RSS
row is the larger of the two processes' peaks (pages they share counted in both).

``uv run python -m benchmarks process`` (16 symbols x 25 days, the peer harness's EMA workload, leverage 1);
``--quick``: 4 symbols x 5 days.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.bench_backtest import COMMON, SYMBOLS, bench_catalog
from benchmarks.table import Row

ATS = Path(sys.executable).parent / "ats"
SECOND_PROCESS_STEP = "(with a second process)"  # ats backtest's step line when a forked child wrote tables
FREQTRADE_PEAK_MB = 1_014  # freqtrade's lowest peak on the 16 symbols x 25 days EMA cross (../shared/peers/freqtrade)


def run_timed(argv: list[str]) -> tuple[float, float, float]:
    """(cpu s = user + sys, wall s, peak RSS MB) of one process; its output discarded, its failure raised."""
    cpu, wall, rss, _ = run_timed_with_errors(argv)
    return cpu, wall, rss


def run_timed_with_errors(argv: list[str]) -> tuple[float, float, float, str]:
    """``run_timed``, and what the process wrote on stderr."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {process.returncode}: {errors[-2000:]}")
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024, errors


def help_rows(repeats: int = 5) -> list[Row]:
    runs = [run_timed([str(ATS), "--help"]) for _ in range(repeats)]
    cpu = statistics.median(r[0] for r in runs)
    wall = statistics.median(r[1] for r in runs)
    return [
        Row(
            "ats --help",
            "cpu s",
            cpu,
            "<= 0.5 s",
            "before #18: 5.2 s cpu (every subcommand imported pandas and Nautilus)",
            f"median of {repeats}; wall {wall:.2f} s",
        )
    ]


def ema_config(folder: Path, symbols: tuple[str, ...], days: int) -> Path:
    start = COMMON[0]
    end = min(COMMON[1], start + pd.Timedelta(days=days))
    quoted = ", ".join(f'"{s}"' for s in symbols)
    path = folder / "ema_cross.toml"
    path.write_text(
        f"""[backtest]
catalog = "{bench_catalog()}"
sources = []
symbols = [{quoted}]
bar = "1-MINUTE"
start = "{start:%Y-%m-%d}"
end = "{end:%Y-%m-%d}"
report_dir = "{folder / "reports"}"

[venue]
starting_balance = 100000
default_leverage = 1

[strategy]
path = "benchmarks.ema_cross:EMACrossNotional"
config_path = "benchmarks.ema_cross:EMACrossNotionalConfig"
per_instrument = true

[strategy.config]
notional_usdt = "1000"
fast_ema_period = 10
slow_ema_period = 20
"""
    )
    return path


def backtest_rows(quick: bool) -> list[Row]:
    symbols, days = (SYMBOLS[:4], 5) if quick else (SYMBOLS, 25)
    with tempfile.TemporaryDirectory(prefix="bench_process_") as tmp:
        config = ema_config(Path(tmp), symbols, days)
        cpu, wall, rss, errors = run_timed_with_errors([str(ATS), "backtest", str(config)])
        (report,) = (Path(tmp) / "reports").iterdir()
        summary = json.loads((report / "summary.json").read_text())
        trades = sum(1 for _ in (report / "trades.csv").open()) - 1
    run_wall = summary["run"]["wall_seconds"]
    name = f"ats backtest EMA cross, {len(symbols)} symbols x {days} d 1m (whole process)"
    return [
        Row(name, "cpu s", cpu, "", "", f"wall {wall:.1f} s; {trades:,} trades; peak RSS {rss:,.0f} MB"),
        Row(
            name,
            "wall s outside the run",
            wall - run_wall,
            "<= 3 s",
            "",
            f"process wall {wall:.1f} s minus the run's {run_wall:.1f} s (catalog read + replay); "
            + ("tables by a second process" if SECOND_PROCESS_STEP in errors else "one process (no idle core)"),
        ),
        Row(
            name,
            "peak RSS MB",
            rss,
            f"<= {FREQTRADE_PEAK_MB:,} MB" if not quick else "",
            "before: 1,007-1,028 MB (the data loaded at once; earlier 1,364 MB with CSV tables)" if not quick else "",
            "freqtrade 2026.9 on the same work: 1,014-1,081 MB (peer harness, by load)" if not quick else "",
        ),
    ]


def rows(quick: bool = False) -> list[Row]:
    return help_rows() + backtest_rows(quick)


if __name__ == "__main__":
    from benchmarks.table import format_table

    print(format_table(rows(quick="--quick" in sys.argv)))
