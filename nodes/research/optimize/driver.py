"""Run a walk-forward study: one Optuna study per fold, all in one journal file, trials run by Ray workers.

Folds are searched in time order; as soon as a fold has used its trials, its best in-sample settings run on
its out-of-sample window while the next fold's trials go on. Every result is written to the journal as it
arrives, so Ctrl-C, a killed driver or a dead worker loses at most the trials in flight: those are marked
failed, and an interrupted run puts their settings back in the queue for ``--resume``.
"""

import json
import logging
import math
import os
import shutil
import socket
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import optuna
import pandas as pd
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from nodes.research.optimize.bars import check_bar_sizes
from nodes.research.optimize.config import OptimizeSettings, load_optimize_settings
from nodes.research.optimize.folds import Fold, Window
from nodes.research.optimize.objective import TrialMetrics, objective_value, too_few_trades
from nodes.research.optimize.progress import ProgressState
from nodes.research.optimize.worker import IN_SAMPLE, OUT_OF_SAMPLE, TrialJob, TrialResult, TrialRunner

STORAGE_FILE = "study.journal"
CONFIG_COPY = "config.toml"
RUN_FILE = "run.json"
OOS_ATTEMPTS = 3  # an out-of-sample run is part of the result, not a trial: a dead worker's is run again


class OptimizeError(RuntimeError):
    """A study that cannot start: the message says why and what to do."""


class ClusterError(OptimizeError):
    """Ray could not be started or reached; the message says how to fix it."""


class StudyInterrupted(Exception):
    def __init__(self, folder: Path) -> None:
        super().__init__(f"interrupted; continue with: uv run ats optimize --resume {folder}")
        self.folder = folder


@dataclass
class FoldOutcome:
    fold: Fold
    study: optuna.Study
    chosen: FrozenTrial | None  # the best in-sample trial, None when none reached min_trades
    out_of_sample: dict[str, Any]  # metrics, hourly equity, or why it did not run


@dataclass
class StudyOutcome:
    settings: OptimizeSettings
    folder: Path
    folds: list[FoldOutcome]
    workers: int
    wall_seconds: float  # this session's, Ray's start included
    search_seconds: float = 0.0  # this session's, from the first trial sent to the last trial's result
    trials_run: int = 0  # in-sample trials finished in this session


# -- run folder -------------------------------------------------------------------------------------------


def new_run_folder(settings: OptimizeSettings) -> Path:
    stamp = pd.Timestamp.now("UTC").strftime("%Y%m%d-%H%M%S")
    folder = settings.base.report_dir / f"optimize-{settings.config_path.stem}-{stamp}"
    folder.mkdir(parents=True, exist_ok=False)
    shutil.copyfile(settings.config_path, folder / CONFIG_COPY)
    (folder / RUN_FILE).write_text(
        json.dumps({"config": str(settings.config_path), "started": pd.Timestamp.now("UTC").isoformat()}, indent=2)
    )
    return folder


def load_resumed_settings(folder: Path, trials: int | None) -> OptimizeSettings:
    """The settings of the run in ``folder``: its saved copy of the config, paths resolved as the original's."""
    folder = Path(folder)
    run_file, copy = folder / RUN_FILE, folder / CONFIG_COPY
    if not run_file.is_file() or not copy.is_file() or not (folder / STORAGE_FILE).is_file():
        raise FileNotFoundError(
            f"{folder} is not an ats optimize run folder (it lacks {RUN_FILE}, {CONFIG_COPY} or {STORAGE_FILE})"
        )
    original = Path(json.loads(run_file.read_text())["config"])
    return load_optimize_settings(original, trials, raw=tomllib.loads(copy.read_text()))


def storage_of(folder: Path) -> JournalStorage:
    return JournalStorage(JournalFileBackend(str(folder / STORAGE_FILE)))


# -- Ray ----------------------------------------------------------------------------------------------------


def check_ray_address(address: str) -> None:
    """Fail fast with a clear message when nothing listens at a host:port address (Ray would retry for long)."""
    if address == "auto":
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    if parsed.hostname is None or parsed.port is None:
        raise ClusterError(f"--ray-address {address!r}: write it as HOST:PORT (e.g. 10.0.0.5:6379) or auto")
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=5):
            pass
    except OSError as exc:
        raise ClusterError(
            f"no Ray cluster reachable at {address} ({exc.strerror or exc}). Start the head node with"
            " `uv run ray start --head --port=6379` and pass its address, or leave out --ray-address to run"
            " on this machine"
        ) from exc


def _import_ray() -> Any:
    # Started under `uv run`, Ray would ship this folder to every worker and start each through `uv run`:
    # every node of a cluster runs the same checkout instead (docs/research.md). Read when Ray is imported.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    import ray

    return ray


def start_ray(address: str | None, workers: int | None) -> tuple[int, bool]:
    """Join the cluster at ``address`` or start a local Ray; (worker count, whether this call started Ray)."""
    ray = _import_ray()

    if address is not None:
        check_ray_address(address)
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterError(
                f"could not join the Ray cluster at {address}: {_error_text(exc)}. A cluster started with token"
                " authentication needs RAY_AUTH_MODE=token and its RAY_AUTH_TOKEN in this environment"
                " (docs/research.md)"
            ) from exc
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < 1:
            ray.shutdown()
            raise ClusterError(f"the Ray cluster at {address} has no CPUs to run trials on")
        return min(workers or cpus, cpus), True
    if ray.is_initialized():
        cpus = int(ray.cluster_resources().get("CPU", 1))
        return min(workers or cpus, cpus), False
    count = workers or os.cpu_count() or 1
    # "local": a new instance of our own, even when a `ray start` cluster runs on this machine
    ray.init(
        address="local",
        num_cpus=count,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    return count, True


# -- one fold -----------------------------------------------------------------------------------------------


@dataclass
class _FoldRun:
    fold: Fold
    study: optuna.Study
    budget: int
    counted: int = 0  # finished trials (complete, pruned, failed; interrupted ones excluded)
    in_flight: dict[int, optuna.Trial] = field(default_factory=dict)
    oos_attempts: int = 0
    oos_running: bool = False
    best: float | None = None
    failed: int = 0
    pruned: int = 0

    @property
    def can_ask(self) -> bool:
        return self.counted + len(self.in_flight) < self.budget

    @property
    def searched(self) -> bool:
        return self.counted >= self.budget and not self.in_flight

    @property
    def oos_done(self) -> bool:
        return "out_of_sample" in self.study.user_attrs


def _sampler(settings: OptimizeSettings, fold: int, trials_before: int) -> optuna.samplers.BaseSampler:
    # A resumed study must not replay the random draws it made before: the seed moves on with its history.
    seed = None if settings.seed is None else settings.seed + 1_000_003 * fold + trials_before
    name = settings.sampler
    try:
        if name == "tpe":
            # constant_liar: trials in flight count as bad guesses, so parallel workers do not all try one spot
            return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed)
        if name == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        return optuna.samplers.BruteForceSampler(seed=seed)
    except ImportError as exc:  # pragma: no cover - depends on optional packages
        raise ClusterError(f"sampler {name!r} needs a package that is not installed: {exc}") from exc


def _open_fold(storage: JournalStorage, settings: OptimizeSettings, fold: Fold) -> _FoldRun:
    study = optuna.create_study(
        study_name=f"fold-{fold.number}", storage=storage, direction="maximize", load_if_exists=True
    )
    study.sampler = _sampler(settings, fold.number, len(study.get_trials(deepcopy=False)))
    if not study.user_attrs:
        study.set_user_attr("in_sample", [fold.in_sample.start.isoformat(), fold.in_sample.end.isoformat()])
        study.set_user_attr("objective", settings.objective)
    run = _FoldRun(fold, study, settings.trials)
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.RUNNING:  # the driver died with it in flight: run its settings again
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            storage.set_trial_user_attr(trial_id, "interrupted", True)
            study.tell(trial.number, state=TrialState.FAIL)
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        elif trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
            if trial.user_attrs.get("interrupted"):
                continue
            run.counted += 1
            run.failed += trial.state == TrialState.FAIL
            run.pruned += trial.state == TrialState.PRUNED
            if trial.state == TrialState.COMPLETE and (run.best is None or trial.value > run.best):
                run.best = trial.value
    return run


def _record_in_sample(run: _FoldRun, trial: optuna.Trial, result: TrialResult, settings: OptimizeSettings) -> None:
    metrics = TrialMetrics.from_dict(result.metrics)
    for key, value in (
        ("metrics", result.metrics),
        ("equity", result.equity),
        ("equity_start", result.equity_start),
        ("wall_seconds", result.wall_seconds),
        ("cpu_seconds", result.cpu_seconds),
        ("load_seconds", result.load_seconds),
        ("worker", result.worker),
        ("factors", result.factors),
        ("factor_recordings_mb", round(result.recordings_mb, 1)),
        *(("fast_path_rejected", v) for v in result.extras.values()),
    ):
        trial.set_user_attr(key, value)
    reason = too_few_trades(metrics, settings.min_trades)
    if reason is not None:
        trial.set_user_attr("pruned", reason)
        run.study.tell(trial, state=TrialState.PRUNED)
        run.pruned += 1
        return
    value = objective_value(metrics, settings.objective)
    if math.isnan(value):
        trial.set_user_attr("error", f"{settings.objective} is not a number")
        run.study.tell(trial, state=TrialState.FAIL)
        run.failed += 1
        return
    run.study.tell(trial, value)
    run.best = value if run.best is None else max(run.best, value)


def _fail(run: _FoldRun, trial: optuna.Trial, error: str) -> None:
    trial.set_user_attr("error", error)
    run.study.tell(trial, state=TrialState.FAIL)
    run.failed += 1


def _error_text(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else type(exc).__name__


def chosen_trial(study: optuna.Study) -> FrozenTrial | None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(complete, key=lambda t: t.value) if complete else None


# -- the study -----------------------------------------------------------------------------------------------


def run_study(
    settings: OptimizeSettings,
    folder: Path | None,
    workers: int | None = None,
    ray_address: str | None = None,
    progress: Callable[[ProgressState], None] | None = None,
    messages: Callable[[str], None] | None = None,
) -> StudyOutcome:
    """Search every fold, run each fold's best out of sample, and return what the report needs.

    ``folder`` None: a new run folder, made once Ray is up (a cluster that cannot be joined leaves nothing).
    Raises StudyInterrupted on Ctrl-C (the journal then holds everything finished; ``--resume`` continues).
    """
    started_at = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    check_bar_sizes(settings, messages)
    count, started_ray = start_ray(ray_address, workers)
    try:
        if folder is None:
            folder = new_run_folder(settings)
        if messages:
            messages(f"run folder: {folder}")
            messages(f"{count} worker(s) on Ray {'(local)' if ray_address is None else ray_address}")
        storage = storage_of(folder)
        runs = [_open_fold(storage, settings, fold) for fold in settings.folds]
        scheduler = _Scheduler(settings, runs, progress, messages, started_at)
        try:
            scheduler.run(count)
        except KeyboardInterrupt:
            scheduler.requeue_in_flight()
            raise StudyInterrupted(folder) from None
        finally:
            scheduler.stop_workers()
    finally:
        if started_ray:
            _import_ray().shutdown()
    outcomes = [
        FoldOutcome(run.fold, run.study, chosen_trial(run.study), run.study.user_attrs.get("out_of_sample") or {})
        for run in runs
    ]
    return StudyOutcome(
        settings,
        folder,
        outcomes,
        count,
        time.perf_counter() - started_at,
        scheduler.search_seconds,
        scheduler.trials_run,
    )


class _Scheduler:
    """Keeps every worker busy: out-of-sample runs of searched folds first, then trials of the earliest fold."""

    def __init__(
        self,
        settings: OptimizeSettings,
        runs: list[_FoldRun],
        progress: Callable[[ProgressState], None] | None,
        messages: Callable[[str], None] | None,
        started_at: float,
    ) -> None:
        self.ray = _import_ray()
        self.settings = settings
        self.runs = runs
        self.progress = progress
        self.messages = messages
        self.started_at = started_at
        self.distributions = {p.key: p.distribution for p in settings.space}
        self.span = Window(*settings.span)
        self.actor_class = self.ray.remote(num_cpus=1, max_restarts=0)(TrialRunner)
        self.actors: dict[int, Any] = {}
        self.idle: list[int] = []
        self.next_actor = 0
        self.pending: dict[Any, tuple[int, _FoldRun, optuna.Trial | None, TrialJob]] = {}
        self.total = sum(r.budget + 1 for r in runs)
        self.done_this_session = 0
        self.trials_run = 0
        self.search_started: float | None = None
        self.search_ended = 0.0

    @property
    def search_seconds(self) -> float:
        return max(self.search_ended - self.search_started, 0.0) if self.search_started is not None else 0.0

    # -- workers ------------------------------------------------------------------------------------------

    def add_worker(self) -> None:
        # silent: Ray does not send a worker's output to the driver (log_to_driver=False)
        self.actors[self.next_actor] = self.actor_class.remote(silent=True)
        self.idle.append(self.next_actor)
        self.next_actor += 1

    def replace_worker(self, actor: int) -> None:
        self.ray.kill(self.actors.pop(actor), no_restart=True)
        self.add_worker()

    def stop_workers(self) -> None:
        for handle in self.actors.values():
            self.ray.kill(handle, no_restart=True)
        self.actors.clear()

    # -- jobs ---------------------------------------------------------------------------------------------

    def _job(self, run: _FoldRun, kind: str, number: int, values: dict[str, Any], window: Window) -> TrialJob:
        settings = self.settings
        return TrialJob(run.fold.number, kind, number, values, window, self.span, settings.config_path, settings.raw)

    def next_job(self) -> tuple[_FoldRun, optuna.Trial | None, TrialJob] | None:
        for run in self.runs:  # an out-of-sample run first: it finishes a fold
            if run.searched and not run.oos_done and not run.oos_running:
                chosen = chosen_trial(run.study)
                if chosen is None:
                    reason = f"no in-sample trial reached min_trades {self.settings.min_trades}"
                    run.study.set_user_attr("out_of_sample", {"trial": None, "reason": reason})
                    continue
                values = dict(chosen.params)
                return run, None, self._job(run, OUT_OF_SAMPLE, chosen.number, values, run.fold.out_of_sample)
        for run in self.runs:
            if run.can_ask:
                trial = run.study.ask(self.distributions)
                return run, trial, self._job(run, IN_SAMPLE, trial.number, dict(trial.params), run.fold.in_sample)
        return None

    def dispatch(self) -> None:
        while self.idle:
            work = self.next_job()
            if work is None:
                return
            run, trial, job = work
            actor = self.idle.pop()
            if trial is None:
                run.oos_running = True
                run.oos_attempts += 1
            else:
                run.in_flight[trial.number] = trial
                self.search_started = self.search_started or time.perf_counter()
            self.pending[self.actors[actor].run.remote(job)] = (actor, run, trial, job)

    def collect(self, ref: Any) -> None:
        from ray.exceptions import RayActorError, RayError, RayTaskError

        actor, run, trial, job = self.pending.pop(ref)
        error: str | None = None
        result: TrialResult | None = None
        try:
            result = self.ray.get(ref)
            self.idle.append(actor)
        except RayActorError as exc:  # the worker process died: its engines are gone with it
            error = f"worker died: {_error_text(exc)}"
            self.replace_worker(actor)
        except RayTaskError as exc:  # the trial raised; the worker is fine
            error = _error_text(exc)
            self.idle.append(actor)
        except RayError as exc:
            error = f"{type(exc).__name__}: {_error_text(exc)}"
            self.replace_worker(actor)
        if trial is not None:
            del run.in_flight[trial.number]
            run.counted += 1
            self.trials_run += 1
            self.search_ended = time.perf_counter()
            if result is not None:
                _record_in_sample(run, trial, result, self.settings)
            else:
                _fail(run, trial, error or "unknown error")
        else:
            run.oos_running = False
            if result is not None:
                run.study.set_user_attr(
                    "out_of_sample",
                    {
                        "trial": job.trial,
                        "values": job.values,
                        "metrics": result.metrics,
                        "equity": result.equity,
                        "equity_start": result.equity_start,
                        "wall_seconds": result.wall_seconds,
                    },
                )
            elif run.oos_attempts >= OOS_ATTEMPTS:
                run.study.set_user_attr("out_of_sample", {"trial": job.trial, "reason": f"failed: {error}"})
            elif self.messages:
                self.messages(f"fold {run.fold.number} out-of-sample run failed ({error}); running it again")
        self.done_this_session += 1

    def run(self, workers: int) -> None:
        from ray.exceptions import RayError

        for _ in range(workers):
            self.add_worker()
        try:  # every worker up (its process started, the project imported) before the first trial is timed
            self.ray.get([self.actors[actor].pid.remote() for actor in self.idle])
        except RayError as exc:
            raise OptimizeError(
                f"the Ray workers could not start: {_error_text(exc)}. On a cluster every node needs this"
                " project's checkout and `uv sync` (docs/research.md)"
            ) from exc
        self.report_progress()
        while True:
            self.dispatch()
            if not self.pending:
                return
            ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=1.0)
            for ref in ready:
                self.collect(ref)
                self.report_progress()

    def requeue_in_flight(self) -> None:
        """Interrupted: the trials in flight are failed as interrupted and their settings queued again."""
        for run in self.runs:
            for trial in run.in_flight.values():
                trial.set_user_attr("interrupted", True)
                run.study.tell(trial, state=TrialState.FAIL)
                run.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            run.in_flight.clear()

    def report_progress(self) -> None:
        if self.progress is None:
            return
        runs = self.runs
        current = next((r for r in runs if not (r.searched and r.oos_done)), runs[-1])
        self.progress(
            ProgressState(
                done=sum(min(r.counted, r.budget) + r.oos_done for r in runs),
                total=self.total,
                fold=current.fold.number,
                folds=len(runs),
                best=current.best,
                objective=self.settings.objective,
                failed=sum(r.failed for r in runs),
                pruned=sum(r.pruned for r in runs),
                done_this_session=self.done_this_session,
                elapsed_s=time.perf_counter() - self.started_at,
            )
        )
