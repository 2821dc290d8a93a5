"""One research worker: runs trials on engines it keeps loaded, one per (symbols, bar size, data span).

The driver makes one Ray actor of ``TrialRunner`` per worker slot. Each engine holds the data of the whole
walk-forward span, so every fold's in-sample and out-of-sample windows run on it after a ``reset()``: the
catalog is read once per bar size per worker, not once per trial (``nodes.backtest.runner.load_engine`` and
``run_on_engine``, the same code ``ats backtest`` runs). The factor values are computed once per window and
factor settings, and replayed by the worker's later trials that would compute the same numbers
(``factor_replay``).
"""

import os
import socket
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from nodes.backtest.runner import (
    BacktestOutcome,
    LoadedEngine,
    engine_key,
    fast_path_mismatch,
    load_engine,
    run_on_engine,
    window_range,
)
from nodes.research.optimize.factor_replay import COMPUTED, FactorRecordings
from nodes.research.optimize.folds import Window
from nodes.research.optimize.objective import hourly_equity, metrics_of
from nodes.research.optimize.space import trial_settings
from nodes.settings import BacktestSettings

IN_SAMPLE = "in_sample"
OUT_OF_SAMPLE = "out_of_sample"
ENGINES_KEPT = 2  # per worker: enough for two bar sizes in turn, without holding every one in memory


@dataclass(frozen=True)
class TrialJob:
    fold: int
    kind: str  # IN_SAMPLE or OUT_OF_SAMPLE
    trial: int | None  # the Optuna trial number (in-sample jobs)
    values: dict[str, Any]  # search-space key -> value
    window: Window
    span: Window  # the data every engine of this study holds
    config_path: Path
    raw: dict[str, Any]  # the config file's table


@dataclass
class TrialResult:
    job: TrialJob
    metrics: dict[str, Any]
    equity: list[float]  # hourly, from the window's first whole hour
    equity_start: str
    wall_seconds: float  # the backtest on a loaded engine
    cpu_seconds: float  # this worker's CPU time for it: what a busy machine does not stretch
    load_seconds: float  # reading the catalog into a new engine (0 when the engine was warm)
    worker: str
    extras: dict[str, Any] = field(default_factory=dict)
    factors: str = COMPUTED  # how the factor values were had: computed, recorded (and kept) or replayed
    recordings_mb: float = 0.0  # factor recordings this worker holds after the trial


class TrialRunner:
    """Runs trial jobs; keeps the last ``ENGINES_KEPT`` loaded engines for the next ones."""

    def __init__(self, silent: bool = False) -> None:
        """``silent``: the engines log nothing (``load_engine``); for a Ray worker, whose output nobody reads."""
        self.silent = silent
        self._engines: OrderedDict[Hashable, LoadedEngine] = OrderedDict()
        self.recordings = FactorRecordings()
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def pid(self) -> int:
        return os.getpid()

    def _engine(self, span_settings: BacktestSettings, fast: bool) -> tuple[LoadedEngine, float]:
        key = engine_key(span_settings, fast)
        if key in self._engines:
            self._engines.move_to_end(key)
            return self._engines[key], 0.0
        while len(self._engines) >= ENGINES_KEPT:
            _, oldest = self._engines.popitem(last=False)
            oldest.dispose()
        started = time.perf_counter()
        loaded = load_engine(span_settings, fast, silent=self.silent)
        self._engines[key] = loaded
        return loaded, time.perf_counter() - started

    def run(self, job: TrialJob) -> TrialResult:
        settings = trial_settings(job.config_path, job.raw, job.values, job.window)
        span_settings = trial_settings(job.config_path, job.raw, job.values, job.span)
        loaded, load_seconds = self._engine(span_settings, fast=True)
        started, cpu = time.perf_counter(), time.process_time()
        outcome, factors = self._run_on(loaded, settings)
        extras: dict[str, Any] = {}
        mismatch = fast_path_mismatch(outcome)
        if mismatch is not None:  # as run_backtest: the results are always those of the NETTING run
            plain, plain_load = self._engine(span_settings, fast=False)
            load_seconds += plain_load
            outcome, factors = self._run_on(plain, settings)
            extras["fast_path_rejected"] = mismatch
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        equity = hourly_equity(outcome, job.window.start, job.window.end)
        return TrialResult(
            job=job,
            metrics=metrics_of(outcome).as_dict(),
            equity=[float(v) for v in equity],
            equity_start=pd.Timestamp(equity.index[0]).isoformat() if len(equity) else job.window.start.isoformat(),
            wall_seconds=wall,
            cpu_seconds=cpu,
            load_seconds=load_seconds,
            worker=self.name,
            extras=extras,
            factors=factors,
            recordings_mb=self.recordings.nbytes / 2**20,
        )

    def _run_on(self, loaded: LoadedEngine, settings: BacktestSettings) -> tuple[BacktestOutcome, str]:
        """The trial on a loaded engine, its strategy's factors recorded or replayed for the window."""
        trial = self.recordings.for_trial((loaded.key, settings.start, settings.end))
        outcome = run_on_engine(loaded, settings, prepare=trial.attach)
        # every data point of the window replayed (an account error stops a run early): the recording is whole
        low, high = window_range(loaded.data_ts, settings)
        trial.finish(complete=outcome.data_points == high - low)
        return outcome, trial.mode
