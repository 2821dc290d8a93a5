"""Research speed: walk-forward trials per hour with 1 and 2 Ray workers, and a warm trial against a process.

Workload: the main strategy (``nodes/configs/backtest.toml``: 16 symbols, 1m bars, funding settled) with one
walk-forward fold over the common window 2025-05-09 -> 06-03 (25 days): 20 days in sample, 5 out of sample,
so every trial is a 16-symbol x 20-day backtest; the space is min_score x scan interval x a trend weight.

Rows:
- trials per hour of the search (first trial sent to last trial's result, engine loading on each worker
  included, Ray's own start not), with 1 worker and with 2, and their ratio (target >= 1.8 on 2 cores);
- one trial on a warm worker (its engine already loaded: ``run_on_engine`` after ``reset()``; the factor values
  of its window and factor settings recorded by an earlier trial and replayed) against one ``ats backtest`` of
  the same settings as a process, interpreter start and report included (target <= 0.6);
- the same trial on a warm engine with factor settings new to the worker (computed, and recorded for later).

``uv run python -m benchmarks optimize`` (``--quick``: 4 symbols, 4 + 1 days, 4 trials).
"""

import multiprocessing
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import tomli_w

from benchmarks.table import Row
from nodes.research.optimize.config import OptimizeSettings, load_optimize_settings
from nodes.research.optimize.driver import new_run_folder, run_study
from nodes.research.optimize.folds import Window
from nodes.research.optimize.space import with_values
from nodes.research.optimize.worker import IN_SAMPLE, TrialJob, TrialRunner
from nodes.settings import DEFAULT_BACKTEST_CONFIG, PACKAGE_DIR, read_config_file

ROOT = PACKAGE_DIR.parent
SPACE = {
    "min_score": {"low": 40.0, "high": 80.0},
    "scan.interval_minutes": [15, 30, 60],
    "factors.trend_w_dist": {"low": 0.2, "high": 0.6},
}


def study_config(folder: Path, quick: bool) -> Path:
    """The default backtest config with an [optimize] table; paths kept pointing at the project's data."""
    _, raw = read_config_file(DEFAULT_BACKTEST_CONFIG, DEFAULT_BACKTEST_CONFIG)
    backtest = raw["backtest"]
    backtest["catalog"] = str(ROOT / backtest["catalog"])
    backtest["sources"] = [str((ROOT / s).resolve()) for s in backtest["sources"]]
    backtest["report_dir"] = str(folder / "reports")
    backtest["bar"] = "1-MINUTE"  # the named workload: trials as heavy as the 1-minute backtests they were measured on
    if quick:
        backtest["symbols"] = backtest["symbols"][:4]
        backtest["end"] = "2025-05-14"
    raw["optimize"] = {
        "objective": "sharpe",
        "min_trades": 0,
        "in_sample_days": 4 if quick else 20,
        "out_of_sample_days": 1 if quick else 5,
        "folds": 1,
        "trials": 4 if quick else 6,
        "seed": 1,
        "space": SPACE,
    }
    path = folder / "study.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


def _search(settings: OptimizeSettings, workers: int) -> tuple[float, float, float]:
    """(trials per hour, search seconds, median cpu seconds per trial) of one study on ``workers`` workers."""
    outcome = run_study(settings, new_run_folder(settings), workers=workers)
    trials = [t for f in outcome.folds for t in f.study.get_trials(deepcopy=False) if "cpu_seconds" in t.user_attrs]
    cpu = statistics.median(t.user_attrs["cpu_seconds"] for t in trials)
    return outcome.trials_run / outcome.search_seconds * 3600, outcome.search_seconds, cpu


def _trial_config(settings: OptimizeSettings, folder: Path) -> tuple[dict[str, Any], Path]:
    """A trial's settings (the first fold's in sample, the space's middle) and the same as a config file."""
    values = {"min_score": 60.0, "scan.interval_minutes": 30, "factors.trend_w_dist": 0.4}
    window = settings.folds[0].in_sample
    table = with_values(settings.raw, values)
    table.pop("optimize")
    table["backtest"]["start"], table["backtest"]["end"] = window.start.isoformat(), window.last.isoformat()
    path = folder / "trial.toml"
    path.write_text(tomli_w.dumps(table))
    return values, path


def _warm_trial(settings: OptimizeSettings, values: dict[str, Any]) -> dict[str, Any]:
    """(wall, cpu) seconds of the trial on a warm worker: with factor settings new to it (``computed``: its
    engine warmed by a trial of other factor settings) and again (``replayed``), plus the recordings' size."""
    runner = TrialRunner(silent=True)  # as the study's Ray workers run
    fold = settings.folds[0]

    def job(trial_values: dict[str, Any]) -> TrialJob:
        span = Window(*settings.span)
        return TrialJob(1, IN_SAMPLE, 0, trial_values, fold.in_sample, span, settings.config_path, settings.raw)

    runner.run(job({**values, "factors.trend_w_dist": 0.3}))  # loads and warms the engine
    computed, replayed = runner.run(job(values)), runner.run(job(values))
    assert (computed.factors, replayed.factors) == ("recorded", "replayed"), (computed.factors, replayed.factors)
    assert computed.metrics == replayed.metrics
    return {
        "computed": (computed.wall_seconds, computed.cpu_seconds),
        "replayed": (replayed.wall_seconds, replayed.cpu_seconds),
        "recordings_mb": replayed.recordings_mb,
    }


def _process_seconds(path: Path) -> tuple[float, float]:
    """(wall, cpu) seconds of `ats backtest CONFIG` in a new process: interpreter, catalog, run, report."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nodes.cli", "backtest", str(path)], check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def rows(quick: bool) -> list[Row]:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        settings = load_optimize_settings(study_config(folder, quick))
        symbols, days = len(settings.base.symbols), settings.in_sample.days
        label = f"ATS strategy, {symbols} symbols x {days:g} d 1m trials"
        one_rate, one_wall, one_cpu = _search(settings, 1)
        two_rate, two_wall, two_cpu = _search(settings, 2)
        values, path = _trial_config(settings, folder)
        # one after the other, each in its own process, so both see the same machine
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            warm = pool.submit(_warm_trial, settings, values).result()
        process_wall, process_cpu = _process_seconds(path)
    (warm_wall, warm_cpu), (computed_wall, computed_cpu) = warm["replayed"], warm["computed"]
    trials = settings.trials
    return [
        Row(
            f"optimize, {label}, 1 worker",
            "trials/h",
            one_rate,
            note=f"{trials} trials in {one_wall:.0f} s; {one_cpu:.1f} s cpu per trial (median)",
        ),
        Row(
            f"optimize, {label}, 2 workers",
            "trials/h",
            two_rate,
            note=f"{trials} trials in {two_wall:.0f} s; {two_cpu:.1f} s cpu per trial (median)",
        ),
        Row(f"optimize, {label}, 2 workers / 1", "speed-up", two_rate / one_rate, target=">= 1.8"),
        Row(
            f"optimize, {label}, warm trial / ats backtest process",
            "ratio",
            warm_wall / process_wall,
            target="<= 0.6",
            note=f"warm trial, factors replayed, {warm_wall:.1f} s ({warm_cpu:.1f} s cpu), process {process_wall:.1f} s"
            f" ({process_cpu:.1f} s cpu): cpu ratio {warm_cpu / process_cpu:.2f}; recordings held"
            f" {warm['recordings_mb']:.0f} MB",
        ),
        Row(
            f"optimize, {label}, warm trial of new factor settings / ats backtest process",
            "ratio",
            computed_wall / process_wall,
            note=f"factors computed (and recorded) {computed_wall:.1f} s ({computed_cpu:.1f} s cpu):"
            f" cpu ratio {computed_cpu / process_cpu:.2f}",
        ),
    ]
