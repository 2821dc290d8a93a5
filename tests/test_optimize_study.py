"""Walk-forward studies end to end on a real local Ray (2 CPUs) and real Binance data (3 symbols, 1h/15m bars).

Also: a warm worker's results equal a fresh ``ats backtest``; Ctrl-C then ``--resume``; a worker killed with
SIGKILL mid-trial.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from catalog.ingest import ingest
from nodes.backtest.runner import load_engine, run_backtest, run_on_engine
from nodes.cli import main
from nodes.live.config import load_live_settings
from nodes.research.optimize.config import load_optimize_settings
from nodes.research.optimize.driver import (
    FoldOutcome,
    StudyInterrupted,
    StudyOutcome,
    chosen_trial,
    load_resumed_settings,
    new_run_folder,
    run_study,
    storage_of,
)
from nodes.research.optimize.folds import Window
from nodes.research.optimize.objective import TrialMetrics, hourly_equity, metrics_of
from nodes.research.optimize.progress import ProgressState
from nodes.research.optimize.report import build_report
from nodes.research.optimize.space import trial_settings
from nodes.research.optimize.worker import IN_SAMPLE, OUT_OF_SAMPLE, TrialJob, TrialRunner
from nodes.settings import load_backtest_settings

SYMBOLS = ("BTC", "ETH", "LTC")
STUDY = """
[backtest]
catalog = "{catalog}"
symbols = ["BTCUSDT", "ETHUSDT", "LTCUSDT"]
bar = "1-HOUR"
start = "2024-01-21"
end = "2024-03-01"
report_dir = "{reports}"

[venue]
starting_balance = 10000

[strategy]
path = "strategies.ats:AtsStrategy"
config_path = "strategies.config:AtsStrategyConfig"

[strategy.config]
min_score = 45.0

[optimize]
objective = "total_return"
min_trades = 3
scheme = "rolling"
in_sample_days = 20
out_of_sample_days = 10
folds = 2
trials = {trials}
seed = 11

[optimize.space]
min_score = {{ low = 30, high = 70 }}
factors.trend_w_dist = {{ low = 0.2, high = 0.6 }}
{bar}
"""


@pytest.fixture(scope="module")
def catalog(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = shared_data / "ohlcv_2023-01_2024-05"
    files = [folder / f"{s}USDT-{k}.csv.gz" for s in SYMBOLS for k in ("1h", "15m", "funding_rate", "mark-8h")]
    path = tmp_path_factory.mktemp("optimize_catalog")
    ingest(files, path)
    return path


@pytest.fixture(scope="module")
def local_ray() -> object:
    """One local Ray with 2 CPUs for the module; nothing of it may outlive the tests."""
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    assert any("raylet" in args for _, _, args in _ray_processes())
    yield ray
    ray.shutdown()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _ray_processes():
        time.sleep(0.5)
    assert not _ray_processes(), "Ray processes survived the test module"


def _ray_processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of the live Ray processes this test process started: a local Ray's
    GCS server and raylet are its children, the workers and agents the raylet's."""
    rows = []
    for line in subprocess.run(
        ["ps", "-ww", "-eo", "pid,ppid,stat,args"], capture_output=True, text=True
    ).stdout.splitlines()[1:]:
        pid, ppid, stat, args = (line.split(None, 3) + [""])[:4]
        if not stat.startswith("Z"):
            rows.append((int(pid), int(ppid), args))
    family, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid, _ in rows if ppid in frontier} - family
        family |= frontier
    return [row for row in rows if row[0] in family and "ray" in row[2]]


def _study(tmp_path: Path, catalog: Path, trials: int = 4, bars: bool = False) -> Path:
    path = tmp_path / "study.toml"
    bar = 'backtest.bar = ["1-HOUR", "15-MINUTE"]' if bars else ""
    path.write_text(STUDY.format(catalog=catalog, reports=tmp_path / "reports", trials=trials, bar=bar))
    return path


def _frames_equal(left: pd.DataFrame, right: pd.DataFrame, drop: tuple[str, ...] = ()) -> None:
    keep = [c for c in left.columns if c not in drop]
    pd.testing.assert_frame_equal(
        left[keep].reset_index(drop=True), right[keep].reset_index(drop=True), check_exact=True
    )


def test_a_warm_engine_gives_what_a_fresh_backtest_gives(tmp_path: Path, catalog: Path) -> None:
    settings = load_optimize_settings(_study(tmp_path, catalog, bars=True))
    span = Window(*settings.span)
    first = {"min_score": 40.0, "factors.trend_w_dist": 0.4}
    trials = [
        (first, settings.folds[0].in_sample, "recorded"),
        ({"min_score": 35.0, "factors.trend_w_dist": 0.25}, settings.folds[1].in_sample, "recorded"),
        (
            {"min_score": 35.0, "factors.trend_w_dist": 0.25, "backtest.bar": "15-MINUTE"},
            settings.folds[1].in_sample,
            "recorded",
        ),
        (first, settings.folds[0].out_of_sample, "recorded"),
        # the first trial's window and factor settings, other scoring and exits: its factor values are replayed
        ({**first, "factors.direction": "fade", "min_score": 30.0}, settings.folds[0].in_sample, "replayed"),
        (
            {**first, "factors.weights.T": 5.0, "factors.weights.S": 30.0, "exits.stop_pct": 0.03},
            settings.folds[0].in_sample,
            "replayed",
        ),
    ]
    loaded = load_engine(trial_settings(settings.config_path, settings.raw, {}, span))
    runner = TrialRunner()
    results = []
    for values, window, factors in trials:
        trial = trial_settings(settings.config_path, settings.raw, values, window)
        fresh = run_backtest(trial)  # what `ats backtest` of this trial's config runs
        if trial.bar_spec == "1-HOUR":  # the engine loaded above holds 1h bars
            warm = run_on_engine(loaded, trial)
            assert warm.data_points == fresh.data_points
            _frames_equal(warm.positions, fresh.positions)
            _frames_equal(warm.fills, fresh.fills, drop=("init_id",))
            _frames_equal(warm.account, fresh.account)
            assert warm.result.stats_pnls == fresh.result.stats_pnls
            assert warm.result.stats_returns == fresh.result.stats_returns
        kind = IN_SAMPLE if window in [f.in_sample for f in settings.folds] else OUT_OF_SAMPLE
        result = runner.run(TrialJob(1, kind, 0, values, window, span, settings.config_path, settings.raw))
        assert result.factors == factors
        assert result.metrics == metrics_of(fresh).as_dict()
        assert result.equity == list(hourly_equity(fresh, window.start, window.end))
        assert len(fresh.positions) > 0  # the runs trade: the equality is not of empty reports
        results.append(result)
    assert loaded.runs == 5 and len(loaded.data_ts) > 0
    # the replayed trials traded otherwise than the one that recorded their factors
    assert len({str(r.metrics) for r in (results[0], results[4], results[5])}) == 3
    assert 0 < results[-1].recordings_mb < 10
    # the worker kept one engine per bar size and loaded each once
    assert len(runner._engines) == 2 and all(engine.runs >= 1 for engine in runner._engines.values())


SILENT_TRIAL = """
import json, sys
from nautilus_trader.common.component import is_logging_initialized
from nodes.research.optimize.config import load_optimize_settings
from nodes.research.optimize.folds import Window
from nodes.research.optimize.worker import IN_SAMPLE, TrialJob, TrialRunner

settings = load_optimize_settings(sys.argv[1])
runner, fold = TrialRunner(silent=True), settings.folds[0]
job = TrialJob(1, IN_SAMPLE, 0, {}, fold.in_sample, Window(*settings.span), settings.config_path, settings.raw)
results = [runner.run(job) for _ in range(2)]
print(json.dumps({"logging": is_logging_initialized(), "factors": [r.factors for r in results],
                  "metrics": [r.metrics for r in results]}))
"""


def test_a_silent_worker_logs_nothing_and_trades_the_same(tmp_path: Path, catalog: Path) -> None:
    """A Ray worker's engines bypass Nautilus logging (which formats a debug line per bar at any level): in a
    process of its own, as a worker is, logging stays off and the trials equal a fresh backtest."""
    config = _study(tmp_path, catalog)
    settings = load_optimize_settings(config)
    done = subprocess.run(
        [sys.executable, "-c", SILENT_TRIAL, str(config)], capture_output=True, text=True, check=True, cwd=Path.cwd()
    )
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    assert printed["logging"] is False and printed["factors"] == ["recorded", "replayed"]
    fresh = run_backtest(trial_settings(settings.config_path, settings.raw, {}, settings.folds[0].in_sample))
    assert len(fresh.positions) > 0
    assert printed["metrics"] == [json.loads(json.dumps(metrics_of(fresh).as_dict()))] * 2


def test_folds_outside_the_catalogued_data_are_refused(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture
) -> None:
    config = _study(tmp_path, catalog)
    config.write_text(config.read_text().replace('start = "2024-01-21"', 'start = "2024-04-21"').replace(
        'end = "2024-03-01"', 'end = "2024-06-01"'))  # fmt: skip
    assert main(["optimize", str(config)]) == 2
    err = capsys.readouterr().err
    assert "the catalog's 1-HOUR bars of BTCUSDT run from 2023-01-01 01:00:00+00:00 to 2024-05-14" in err
    assert "the window 2024-05-22 -> 2024-06-01 has none" in err
    assert not (tmp_path / "reports").exists()


def test_a_small_study_end_to_end(
    tmp_path: Path, catalog: Path, local_ray: object, capsys: pytest.CaptureFixture
) -> None:
    config = _study(tmp_path, catalog, bars=True)
    assert main(["optimize", str(config), "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    (folder,) = (tmp_path / "reports").iterdir()
    for name in ("report.txt", "report.html", "trials.csv", "folds.csv", "importances.csv", "oos_equity.csv",
                 "diagnostics.json", "best.toml", "study.journal", "config.toml"):  # fmt: skip
        assert (folder / name).is_file(), name
    assert (folder / "report.txt").read_text().strip() == printed.split("\nreport saved to")[0].strip()
    # the report leads with the stitched out-of-sample result; in sample comes after
    assert printed.index("Out of sample (stitched)") < printed.index("Verdict") < printed.index("In sample")
    assert "deflated Sharpe" in printed and "PBO fold 1" in printed and "PBO fold 2" in printed

    settings = load_resumed_settings(folder, None)
    storage = storage_of(folder)

    folds = []
    for fold in settings.folds:
        study = optuna.load_study(study_name=f"fold-{fold.number}", storage=storage)
        trials = study.get_trials(deepcopy=False)
        assert len(trials) == 4 and all(t.state != TrialState.RUNNING for t in trials)
        chosen = chosen_trial(study)
        assert chosen is not None
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        assert chosen.value == max(t.value for t in complete)
        assert all(t.user_attrs["metrics"]["trades"] >= 3 for t in complete)
        assert all(t.user_attrs["metrics"]["trades"] < 3 for t in trials if t.state == TrialState.PRUNED)
        # each trial says how its worker had the factor values (trend_w_dist is searched: never the same twice)
        assert {t.user_attrs["factors"] for t in trials} == {"recorded"}
        oos = study.user_attrs["out_of_sample"]
        assert oos["trial"] == chosen.number and oos["values"] == chosen.params
        # in-sample equity covers the in-sample window hour by hour, the out-of-sample one the next window
        assert pd.Timestamp(chosen.user_attrs["equity_start"]) == fold.in_sample.start
        assert len(chosen.user_attrs["equity"]) == fold.in_sample.days * 24 + 1
        assert pd.Timestamp(oos["equity_start"]) == fold.out_of_sample.start == fold.in_sample.end
        folds.append(FoldOutcome(fold, study, chosen, oos))

    # stitching: fold 2's out-of-sample returns compound on fold 1's final equity
    report = build_report(StudyOutcome(settings, folder, folds, 2, 0.0))
    first, second = (f.out_of_sample for f in folds)
    expected_final = 10_000 * (first["equity"][-1] / first["equity"][0]) * (second["equity"][-1] / second["equity"][0])
    assert report.oos_equity.iloc[-1] == pytest.approx(expected_final)
    assert report.oos_equity.index[0] == settings.folds[0].out_of_sample.start
    assert report.oos_equity.index[-1] == settings.folds[1].out_of_sample.end
    assert report.oos_equity.index.to_series().diff().dropna().eq(pd.Timedelta(hours=1)).all()
    assert report.oos_summary.trades == sum(f.out_of_sample["metrics"]["trades"] for f in folds)
    assert f"{report.oos_summary.total_return_pct:.2f} %" in printed
    for diag in report.diagnostics:
        assert diag.dsr is not None and 0.0 <= diag.dsr.value <= 1.0 and diag.dsr.trials >= 2
        assert diag.pbo is not None and 0.0 <= diag.pbo.value <= 1.0 and diag.pbo.splits == 70
    assert report.verdict.lines[-1].startswith("Verdict: the out-of-sample result")
    assert len(report.buy_and_hold) == len(report.oos_equity)

    # best.toml: the last fold's chosen settings over its out-of-sample window; a backtest gives the printed row
    best = load_backtest_settings(folder / "best.toml")
    chosen = folds[-1].chosen
    assert best.start == settings.folds[-1].out_of_sample.start
    assert best.strategy_config["min_score"] == chosen.params["min_score"]
    assert best.strategy_config["factors"]["trend_w_dist"] == chosen.params["factors.trend_w_dist"]
    assert best.bar_spec == chosen.params["backtest.bar"] and best.catalog == catalog
    assert "optimize" not in tomllib.loads((folder / "best.toml").read_text())
    rerun = TrialMetrics.from_dict(metrics_of(run_backtest(best)).as_dict())
    assert rerun == TrialMetrics.from_dict(folds[-1].out_of_sample["metrics"])
    row = report.folds.iloc[-1]
    assert row["OOS return %"] == round(rerun.total_return_pct, 2) and row["OOS trades"] == rerun.trades
    assert f"{rerun.total_return_pct:.2f}" in (folder / "report.txt").read_text()
    # and `ats live` trades it through strategy_from
    live = tmp_path / "live.toml"
    live.write_text(f'[live]\nstrategy_from = "{folder / "best.toml"}"\nmode = "paper"\n')
    live_settings = load_live_settings(live)
    assert live_settings.strategy_config == best.strategy_config
    assert live_settings.symbols == best.symbols


def test_an_interrupted_study_resumes(tmp_path: Path, catalog: Path, local_ray: object) -> None:
    settings = load_optimize_settings(_study(tmp_path, catalog, trials=4))
    folder = new_run_folder(settings)

    def interrupt_after_three(state: ProgressState) -> None:
        if state.done >= 3:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends

    # Python's own Ctrl-C handler, whatever this process inherited (a background job ignores SIGINT)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(StudyInterrupted) as info:
            run_study(settings, folder, workers=2, progress=interrupt_after_three)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert f"--resume {folder}" in str(info.value)
    study = optuna.load_study(study_name="fold-1", storage=storage_of(folder))
    before = {t.number: (t.state, t.params) for t in study.get_trials() if t.state != TrialState.WAITING}
    finished = [n for n, (state, _) in before.items() if state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) >= 3
    interrupted = [t for t in study.get_trials() if t.user_attrs.get("interrupted")]
    waiting = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert [t.system_attrs["fixed_params"] for t in waiting] == [t.params for t in interrupted]  # queued again

    assert main(["optimize", "--resume", str(folder)]) == 0
    for number in (1, 2):
        study = optuna.load_study(study_name=f"fold-{number}", storage=storage_of(folder))
        counted = [t for t in study.get_trials() if not t.user_attrs.get("interrupted")]
        assert len(counted) == 4 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in counted)
        assert "metrics" in study.user_attrs["out_of_sample"]
    study = optuna.load_study(study_name="fold-1", storage=storage_of(folder))
    for number in finished:  # nothing finished before the interruption was run again or lost
        trial = study.trials[number]
        assert (trial.state, trial.params) == before[number]
    retried = [t for t in study.get_trials() if "retry_of" in t.user_attrs]
    assert sorted(t.user_attrs["retry_of"] for t in retried) == sorted(t.number for t in interrupted)
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in retried)
    # the resumed sampler drew new settings: only retries repeat earlier ones
    drawn = [tuple(sorted(t.params.items())) for t in study.get_trials() if "retry_of" not in t.user_attrs]
    assert len(drawn) == len(set(drawn))
    assert (folder / "best.toml").is_file()


def test_a_killed_worker_fails_its_trial_and_the_study_goes_on(
    tmp_path: Path, catalog: Path, local_ray: object
) -> None:
    settings = load_optimize_settings(_study(tmp_path, catalog, trials=3))
    folder = new_run_folder(settings)
    killed: list[int] = []

    raylet = next(pid for pid, _, args in _ray_processes() if args.split()[0].endswith("/raylet"))

    def kill_first_busy_worker() -> None:
        # only a worker of this test's own Ray (a child of its raylet): never another run's on the machine
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            listing = subprocess.run(["ps", "-ww", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
            for line in listing.splitlines():
                pid, ppid, args = (line.split(None, 2) + ["", "", ""])[:3]
                if ppid == str(raylet) and args.strip() == "ray::TrialRunner.run":
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_busy_worker, daemon=True)
    killer.start()
    outcome = run_study(settings, folder, workers=2)
    killer.join()
    assert killed
    trials = [t for f in outcome.folds for t in f.study.get_trials()]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["error"].startswith("worker died")
    assert len(trials) == 6 and sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 5
    assert all("metrics" in f.out_of_sample for f in outcome.folds)
    assert isinstance(optuna.load_study(study_name="fold-1", storage=storage_of(folder)), optuna.Study)
