"""Research speed: walk-forward trials per hour with 1 and 2 Ray workers, and a warm trial against a process.

Workload: the main strategy (``nodes/configs/backtest.toml``: 16 symbols, 1m bars, funding settled) with one
walk-forward fold over the common window 2025-05-09 -> 06-03 (25 days): 20 days in sample, 5 out of sample,
so every trial is a 16-symbol x 20-day backtest; the space is min_score x scan interval x a trend weight.

Rows:
- trials per hour of the search (first trial sent to last trial's result, engine loading on each worker
  included, Ray's own start not), with 1 worker and with 2, and their ratio (target >= 1.8 on 2 cores);
- one trial on a warm worker (its engine already loaded: ``run_on_engine`` after ``reset()``) against one
  ``ats backtest`` of the same settings as a process, interpreter start and report included (target <= 0.6).

``uv run python -m benchmarks optimize`` (``--quick``: 4 symbols, 4 + 1 days, 4 trials).
"""

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomli_w

from benchmarks.table import Row
from nodes.research.optimize.config import OptimizeSettings, load_optimize_settings
from nodes.research.optimize.driver import new_run_folder, run_study
from nodes.research.optimize.space import with_values
from nodes.settings import DEFAULT_BACKTEST_CONFIG, PACKAGE_DIR, read_config_file

ROOT = PACKAGE_DIR.parent
SPACE = {
    "min_score": {"low": 40.0, "high": 80.0},
    "scan_interval_minutes": [15, 30, 60],
    "factors.trend_w_dist": {"low": 0.2, "high": 0.6},
}


def study_config(folder: Path, quick: bool) -> Path:
    """The default backtest config with an [optimize] table; paths kept pointing at the project's data."""
    _, raw = read_config_file(DEFAULT_BACKTEST_CONFIG, DEFAULT_BACKTEST_CONFIG)
    backtest = raw["backtest"]
    backtest["catalog"] = str(ROOT / backtest["catalog"])
    backtest["sources"] = [str((ROOT / s).resolve()) for s in backtest["sources"]]
    backtest["report_dir"] = str(folder / "reports")
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


def _search(settings: OptimizeSettings, workers: int) -> tuple[float, float, list[float]]:
    """(trials per hour, wall seconds, warm-trial seconds) of one study on ``workers`` local workers."""
    outcome = run_study(settings, new_run_folder(settings), workers=workers)
    trials = [t for f in outcome.folds for t in f.study.get_trials(deepcopy=False) if "wall_seconds" in t.user_attrs]
    warm = [t.user_attrs["wall_seconds"] for t in trials if t.user_attrs["load_seconds"] == 0]
    return outcome.trials_run / outcome.search_seconds * 3600, outcome.search_seconds, warm


def _process_seconds(settings: OptimizeSettings, folder: Path) -> float:
    """Wall time of `ats backtest` in a new process, for the first fold's in-sample window at the space's middle."""
    values = {"min_score": 60.0, "scan_interval_minutes": 30, "factors.trend_w_dist": 0.4}
    window = settings.folds[0].in_sample
    table = with_values(settings.raw, values)
    table.pop("optimize")
    table["backtest"]["start"], table["backtest"]["end"] = window.start.isoformat(), window.last.isoformat()
    path = folder / "trial.toml"
    path.write_text(tomli_w.dumps(table))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nodes.cli", "backtest", str(path)], check=True, capture_output=True)
    return time.perf_counter() - started


def rows(quick: bool) -> list[Row]:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        settings = load_optimize_settings(study_config(folder, quick))
        symbols, days = len(settings.base.symbols), settings.in_sample.days
        label = f"ATS strategy, {symbols} symbols x {days:g} d 1m trials"
        one_rate, one_wall, one_warm = _search(settings, 1)
        two_rate, two_wall, two_warm = _search(settings, 2)
        process = _process_seconds(settings, folder)
    warm = statistics.median(one_warm + two_warm) if one_warm + two_warm else float("nan")
    trials = settings.trials
    return [
        Row(f"optimize, {label}, 1 worker", "trials/h", one_rate, note=f"{trials} trials in {one_wall:.0f} s"),
        Row(f"optimize, {label}, 2 workers", "trials/h", two_rate, note=f"{trials} trials in {two_wall:.0f} s"),
        Row(f"optimize, {label}, 2 workers / 1", "speed-up", two_rate / one_rate, target=">= 1.8"),
        Row(
            f"optimize, {label}, warm trial / ats backtest process",
            "ratio",
            warm / process,
            target="<= 0.6",
            note=f"warm trial {warm:.1f} s (median of {len(one_warm + two_warm)}), process {process:.1f} s",
        ),
    ]
