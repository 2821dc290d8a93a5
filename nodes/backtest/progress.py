"""Progress of a backtest on stderr: simulated time reached, bars per second, time left; and of the report writing.

``BacktestProgress`` is an actor with a clock timer in simulated time (one tick per 1/200 of the period, so a run
pays a few hundred timer events whatever its length) that redraws one line on a terminal, or prints a line per
tenth of the run otherwise (CI logs). It reads no data and subscribes to nothing: the replay does not slow.
"""

import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TextIO

import pandas as pd
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig

TICKS = 200  # timer events over the whole period
_BAR_WIDTH = 24


class BacktestProgressConfig(ActorConfig, frozen=True):
    start_ns: int  # first bar of the run
    end_ns: int  # last bar of the run
    bars: int  # bars the run replays (all symbols)
    interactive: bool | None = None  # redraw one line; None: when stderr is a terminal


def progress_line(fraction: float, now_ns: int, bars: int, elapsed_s: float) -> str:
    """``[#####-------] 42%  2025-05-19 14:00  21,345 bars/s  ETA 12 s``."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(fraction * _BAR_WIDTH)
    rate = bars * fraction / elapsed_s if elapsed_s > 0 else 0.0
    left = elapsed_s * (1 - fraction) / fraction if fraction > 0 else float("nan")
    eta = f"ETA {left:,.0f} s" if left == left else "ETA -"
    when = pd.Timestamp(now_ns, tz="UTC").strftime("%Y-%m-%d %H:%M")
    return f"[{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] {fraction:4.0%}  {when}  {rate:,.0f} bars/s  {eta}"


class BacktestProgress(Actor):
    def __init__(self, config: BacktestProgressConfig) -> None:
        super().__init__(config)
        self._stream: TextIO = sys.stderr
        self._interactive = self._stream.isatty() if config.interactive is None else config.interactive
        self._span = max(config.end_ns - config.start_ns, 1)
        self._wall_start = 0.0
        self._next_tenth = 1

    def on_start(self) -> None:
        self._wall_start = time.perf_counter()
        step = timedelta(microseconds=max(self._span // TICKS // 1000, 1))
        start = pd.Timestamp(self.config.start_ns, tz="UTC")
        self.clock.set_timer("backtest-progress", step, start_time=start, callback=self._tick, fire_immediately=False)

    def _tick(self, event: object) -> None:
        now = self.clock.timestamp_ns()
        fraction = (now - self.config.start_ns) / self._span
        elapsed = time.perf_counter() - self._wall_start
        if self._interactive:
            self._stream.write("\r\033[K" + progress_line(fraction, now, self.config.bars, elapsed))
            self._stream.flush()
        elif fraction * 10 >= self._next_tenth:
            self._next_tenth = int(fraction * 10) + 1
            print(progress_line(fraction, now, self.config.bars, elapsed), file=self._stream, flush=True)

    def on_stop(self) -> None:
        elapsed = time.perf_counter() - self._wall_start
        if self._interactive:
            self._stream.write("\r\033[K" + progress_line(1.0, self.config.end_ns, self.config.bars, elapsed) + "\n")
            self._stream.flush()


class StepProgress:
    """``writing report [3/7] positions.csv`` per step, on one redrawn line on a terminal."""

    def __init__(self, title: str, steps: int, stream: TextIO | None = None) -> None:
        self.title, self.steps, self.done = title, steps, 0
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()

    def step(self, name: str) -> None:
        self.done += 1
        line = f"{self.title} [{self.done}/{self.steps}] {name}"
        if self.interactive:
            self.stream.write("\r\033[K" + line + ("\n" if self.done == self.steps else ""))
            self.stream.flush()
        else:
            print(line, file=self.stream, flush=True)

    def run(self, name: str, work: Callable[[], object]) -> None:
        self.step(name)
        work()
