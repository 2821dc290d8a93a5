"""The progress line of a study: jobs done / total, best in-sample value so far, failures, ETA."""

import sys
import time
from dataclasses import dataclass
from typing import TextIO


@dataclass
class ProgressState:
    done: int  # trials and out-of-sample runs finished (this session and before)
    total: int
    fold: int
    folds: int
    best: float | None  # the current fold's best in-sample objective value
    objective: str
    failed: int
    pruned: int
    done_this_session: int
    elapsed_s: float

    @property
    def eta_s(self) -> float | None:
        if self.done_this_session == 0:
            return None
        return self.elapsed_s / self.done_this_session * max(self.total - self.done, 0)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def format_progress(state: ProgressState, width: int = 24) -> str:
    filled = int(width * state.done / state.total) if state.total else width
    bar = "#" * filled + "." * (width - filled)
    best = "-" if state.best is None else f"{state.best:.4g}"
    return (
        f"[{bar}] {state.done}/{state.total}  fold {state.fold}/{state.folds}  best {state.objective} {best}"
        f"  failed {state.failed}  too few trades {state.pruned}  ETA {_duration(state.eta_s)}"
    )


class ProgressLine:
    """Redraws one line on a terminal; elsewhere (a log file, CI) prints a line at most every ``every_s``."""

    def __init__(self, stream: TextIO = sys.stderr, every_s: float = 10.0) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.every_s = every_s
        self._last = 0.0

    def __call__(self, state: ProgressState) -> None:
        now = time.monotonic()
        final = state.done >= state.total
        if self.tty:
            # carriage return, the line, then erase what a longer previous line left on the right
            self.stream.write("\r" + format_progress(state) + "\x1b[K" + ("\n" if final else ""))
        elif final or now - self._last >= self.every_s:
            self.stream.write(format_progress(state) + "\n")
            self._last = now
        self.stream.flush()
