"""Walk-forward folds: each fold's in-sample window is searched, the next out-of-sample window judges the winner."""

from dataclasses import dataclass

import pandas as pd

SCHEMES = ("rolling", "anchored")


@dataclass(frozen=True)
class Window:
    """A half-open time window [start, end)."""

    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def days(self) -> float:
        return (self.end - self.start) / pd.Timedelta(days=1)

    @property
    def last(self) -> pd.Timestamp:
        """The last instant inside the window: a backtest's inclusive ``end``."""
        return self.end - pd.Timedelta(1, "ns")

    def __str__(self) -> str:
        return f"{_short(self.start)} -> {_short(self.end)}"


def _short(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%d %H:%M") if (stamp.hour or stamp.minute) else stamp.strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Fold:
    number: int  # 1-based, in time order
    in_sample: Window
    out_of_sample: Window


def walk_forward(
    start: pd.Timestamp,
    end: pd.Timestamp,
    scheme: str,
    in_sample: pd.Timedelta,
    out_of_sample: pd.Timedelta,
    folds: int | None,
) -> list[Fold]:
    """The folds, laid back from ``end`` so the last out-of-sample window holds the most recent data.

    rolling: every in-sample window has the same length and moves forward by one out-of-sample length.
    anchored: every in-sample window starts where the first one does and grows by one out-of-sample length.
    ``folds`` None: as many as fit. Raises ValueError (with what fits) when the span is too short.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme {scheme!r}: use {' or '.join(SCHEMES)}")
    if in_sample <= pd.Timedelta(0) or out_of_sample <= pd.Timedelta(0):
        raise ValueError("in-sample and out-of-sample lengths must be positive")
    span = end - start
    fit = int((span - in_sample) // out_of_sample) if span >= in_sample + out_of_sample else 0
    if fit < 1 or (folds is not None and folds > fit):
        wanted = folds or 1
        need = in_sample + wanted * out_of_sample
        raise ValueError(
            f"{wanted} fold(s) of {_days(in_sample)} in sample + {_days(out_of_sample)} out of sample need"
            f" {_days(need)}, but [backtest] start..end spans {_days(span)} ({fit} fold(s) fit)"
        )
    count = folds or fit
    first_start = end - in_sample - count * out_of_sample
    result = []
    for k in range(count):
        oos_start = first_start + in_sample + k * out_of_sample
        is_start = first_start if scheme == "anchored" else oos_start - in_sample
        result.append(
            Fold(k + 1, Window(is_start, oos_start), Window(oos_start, oos_start + out_of_sample)),
        )
    return result


def _days(delta: pd.Timedelta) -> str:
    return f"{delta / pd.Timedelta(days=1):g} days"
