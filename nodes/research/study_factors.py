"""Every factor, the score and the signal of one symbol at every bar, from its bars (and funding, marks).

The values come from ``factors/reference.py``, the vectorised restatement of the incremental indicators that
tests/test_factors_reference.py holds equal to the ``FactorBook`` (1e-9, real data). It covers every factor a
catalog can feed: T, M, C (klines with taker-buy volume), S, V and F from bars, B from funding and mark prices.
O, Q and L need open interest, liquidations and quotes, which no catalogued backtest has; I (independence, a
0..100 gate, not a vote) is left out. The score and strength are ``factors.scoring.score`` itself, row by row,
so the study scores exactly as the strategy does.
"""

import numpy as np
import pandas as pd

from factors import reference
from factors.config import FactorConfig
from factors.scoring import FLAT, LONG, score
from nodes.research.study_data import segments

BAR_KEYS = ("T", "M", "C", "S", "V", "F")
SIGNED_STUDIED = ("T", "M", "C", "S", "V", "B")  # the voting factors a catalog can feed
STUDIED = (*SIGNED_STUDIED, "F")  # F: the modulator, signed too (flow ahead of price is bullish)
# Bar factors every symbol has; the strategy only enters when all are past their warm-up (FactorBook.is_warm).
WARM_KEYS = ("T", "M", "S", "V", "F")


def _bar_factors(bars: pd.DataFrame, config: FactorConfig) -> pd.DataFrame:
    out = {}
    for key in BAR_KEYS:
        if key == "C" and "taker_buy" not in bars:
            continue
        out[key] = reference.BAR_FACTORS[key](bars, config).to_numpy()
    return pd.DataFrame(out, index=bars.index)


def factor_frame(
    bars: pd.DataFrame,
    config: FactorConfig,
    interval_ns: int,
    funding: pd.DataFrame | None = None,
    marks: pd.DataFrame | None = None,
    scores: bool = True,
) -> pd.DataFrame:
    """ts, segment, close, one column per available factor (NaN = not available), score, strength, signal.

    Each run of bars without a gap (``segments``) is computed on its own, from its own warm-up, as a backtest
    starting at that run's first bar would. signal = +strength for LONG, -strength for SHORT, 0 for FLAT (what the
    strategy compares with ``min_score``); warm = every bar factor past its warm-up. scores=False: the factor
    columns only (``add_scores`` adds the rest).
    """
    frame = pd.DataFrame({"ts": bars["ts"].to_numpy(), "close": bars["close"].to_numpy()})
    frame["segment"] = segments(frame["ts"].to_numpy(), interval_ns)
    in_bars = config.in_bars(interval_ns / 60e9)  # windows given as durations -> bars of this size
    parts = [
        _bar_factors(bars.iloc[idx].reset_index(drop=True), in_bars).set_index(pd.Index(idx))
        for idx in frame.groupby("segment").indices.values()
    ]
    factors = pd.concat(parts).sort_index() if parts else pd.DataFrame(index=frame.index)
    for key in factors:
        frame[key] = factors[key].to_numpy()
    if funding is not None and len(funding) and len(frame):
        empty_marks = pd.DataFrame({"ts": np.array([], dtype=np.int64), "mark": np.array([], dtype=float)})
        frame["B"] = reference.basis_funding(
            frame[["ts", "close"]], marks if marks is not None else empty_marks, funding, config
        ).to_numpy()
    return add_scores(frame, config) if scores else frame


def add_scores(frame: pd.DataFrame, config: FactorConfig) -> pd.DataFrame:
    """score / strength / signal / warm columns from the factor columns, through ``factors.scoring.score``."""
    keys = [k for k in ("T", "M", "C", "S", "V", "B", "F") if k in frame]
    values = frame[keys].to_numpy(dtype=float)
    scores = np.zeros(len(frame))
    strengths = np.zeros(len(frame))
    signals = np.zeros(len(frame))
    for i, row in enumerate(values):
        result = score({k: (None if v != v else float(v)) for k, v in zip(keys, row, strict=True)}, config)
        scores[i] = result.score
        strengths[i] = result.strength
        if result.direction != FLAT:
            signals[i] = result.strength if result.direction == LONG else -result.strength
    frame = frame.copy()
    frame["score"] = scores
    frame["strength"] = strengths
    frame["signal"] = signals
    frame["warm"] = frame[[k for k in WARM_KEYS if k in frame]].notna().all(axis=1).to_numpy()
    return frame
