"""Overfitting diagnostics: how much of the chosen settings' performance the search itself explains.

- Probabilistic Sharpe ratio (Bailey and Lopez de Prado, 2012): the probability that the true Sharpe ratio
  exceeds a benchmark, given the observed one, the number of returns and their skewness and kurtosis.
- Deflated Sharpe ratio (Bailey and Lopez de Prado, 2014): the probabilistic Sharpe ratio against the Sharpe
  ratio that the best of N trials with no skill would show (the expected maximum of N draws).
- Probability of backtest overfitting by combinatorially symmetric cross-validation (Bailey, Borwein,
  Lopez de Prado and Zhu, 2015): cut the trials' returns into S blocks; for every half of the blocks taken as
  "in sample", find the best trial there and rank it on the other half; PBO is the share of splits where it
  ranks in the bottom half.

All Sharpe ratios here are per period (not annualised), of the returns given.
"""

import math
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist

import numpy as np
import pandas as pd

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def sharpe(returns: np.ndarray) -> float:
    """Mean over standard deviation (ddof 1); 0 when the returns do not vary."""
    returns = np.asarray(returns, dtype=float)
    if len(returns) < 2:
        return 0.0
    std = returns.std(ddof=1)
    return float(returns.mean() / std) if std > 0 else 0.0


def moments(returns: np.ndarray) -> tuple[float, float]:
    """Skewness and (non-excess, normal = 3) kurtosis, as population moments; (0, 3) when flat."""
    returns = np.asarray(returns, dtype=float)
    centred = returns - returns.mean()
    m2 = float((centred**2).mean())
    if m2 <= 0:
        return 0.0, 3.0
    return float((centred**3).mean() / m2**1.5), float((centred**4).mean() / m2**2)


def probabilistic_sharpe(sr: float, observations: int, skew: float, kurtosis: float, benchmark: float = 0.0) -> float:
    """P(true Sharpe > benchmark) for an observed per-period Sharpe over ``observations`` returns."""
    if observations < 2:
        return float("nan")
    variance = 1 - skew * sr + (kurtosis - 1) / 4 * sr**2
    if variance <= 0:
        return float("nan")
    return _NORMAL.cdf((sr - benchmark) * math.sqrt(observations - 1) / math.sqrt(variance))


def expected_max_sharpe(trials: int, sharpe_variance: float) -> float:
    """The Sharpe ratio the best of ``trials`` skill-less trials is expected to show (the DSR's benchmark)."""
    if trials < 2 or sharpe_variance <= 0:
        return 0.0
    return math.sqrt(sharpe_variance) * (
        (1 - EULER_GAMMA) * _NORMAL.inv_cdf(1 - 1 / trials) + EULER_GAMMA * _NORMAL.inv_cdf(1 - 1 / (trials * math.e))
    )


def deflated_sharpe(
    sr: float, observations: int, skew: float, kurtosis: float, trials: int, sharpe_variance: float
) -> float:
    return probabilistic_sharpe(sr, observations, skew, kurtosis, expected_max_sharpe(trials, sharpe_variance))


@dataclass(frozen=True)
class DeflatedSharpe:
    sharpe: float  # per period, of the chosen trial
    observations: int
    skew: float
    kurtosis: float
    trials: int
    sharpe_variance: float  # across the trials
    benchmark: float  # expected maximum Sharpe of that many skill-less trials
    value: float  # the DSR: probability that the chosen trial's true Sharpe beats the benchmark


def deflated_sharpe_of(chosen: np.ndarray, all_trials: np.ndarray) -> DeflatedSharpe:
    """DSR of the chosen trial's returns among the returns of every trial (one column per trial)."""
    sr = sharpe(chosen)
    skew, kurtosis = moments(chosen)
    sharpes = [sharpe(all_trials[:, i]) for i in range(all_trials.shape[1])]
    variance = float(np.var(sharpes, ddof=1)) if len(sharpes) > 1 else 0.0
    trials = len(sharpes)
    benchmark = expected_max_sharpe(trials, variance)
    value = probabilistic_sharpe(sr, len(chosen), skew, kurtosis, benchmark)
    return DeflatedSharpe(sr, len(chosen), skew, kurtosis, trials, variance, benchmark, value)


@dataclass(frozen=True)
class Pbo:
    value: float  # share of splits whose in-sample best ranks at or below the out-of-sample median
    logits: tuple[float, ...]  # one per split: log(w / (1 - w)) of the relative out-of-sample rank w
    splits: int


def pbo_cscv(returns: np.ndarray, blocks: int) -> Pbo:
    """PBO of the trials whose returns are the columns of ``returns`` (rows in time order).

    The rows are cut into ``blocks`` equal consecutive blocks (the first rows that do not divide evenly are
    dropped). Each split takes half the blocks as in sample, in time order, the rest as out of sample; the
    performance of a trial on a set of blocks is the Sharpe ratio of its returns there. The rank of the
    in-sample best among the out-of-sample performances (1 = worst, ties averaged) over ``trials + 1`` is w.
    """
    matrix = np.asarray(returns, dtype=float)
    rows, trials = matrix.shape
    if blocks % 2 or blocks < 2:
        raise ValueError("blocks must be even and at least 2")
    if trials < 2 or rows < 2 * blocks:
        raise ValueError(f"CSCV needs 2 or more trials and {2 * blocks} or more rows; got {trials} and {rows}")
    size = rows // blocks
    matrix = matrix[rows - size * blocks :]
    parts = [matrix[i * size : (i + 1) * size] for i in range(blocks)]
    logits = []
    for chosen in combinations(range(blocks), blocks // 2):
        train = np.vstack([parts[i] for i in chosen])
        test = np.vstack([parts[i] for i in range(blocks) if i not in chosen])
        in_sample = np.array([sharpe(train[:, j]) for j in range(trials)])
        out_of_sample = pd.Series([sharpe(test[:, j]) for j in range(trials)])
        best = int(np.argmax(in_sample))  # the first of equals, as a search keeps its first best
        w = out_of_sample.rank(method="average").iloc[best] / (trials + 1)
        logits.append(math.log(w / (1 - w)))
    return Pbo(float(np.mean([lam <= 0 for lam in logits])), tuple(logits), len(logits))


@dataclass(frozen=True)
class Verdict:
    better_than_chance: bool
    lines: tuple[str, ...]


def verdict(
    oos_psr: float,
    oos_return_pct: float,
    oos_trades: int,
    pbo: float | None,
    dsr: float | None,
    trials: int,
    buy_and_hold_pct: float | None = None,
    confidence: float = 0.95,
) -> Verdict:
    """The diagnostics in plain words, and whether the out-of-sample result is better than chance."""
    lines = []
    significant = oos_trades > 0 and not math.isnan(oos_psr) and oos_psr >= confidence and oos_return_pct > 0
    if oos_trades == 0:
        lines.append("Out of sample the chosen settings did not trade at all: there is nothing to judge.")
    elif significant:
        lines.append(
            f"Out of sample the stitched result is positive with {oos_psr:.0%} probability that its true"
            f" Sharpe ratio is above zero (probabilistic Sharpe ratio, {confidence:.0%} needed)."
        )
    else:
        shown = "n/a" if math.isnan(oos_psr) else f"{oos_psr:.0%}"
        lines.append(
            f"Out of sample the stitched result ({oos_return_pct:+.2f} %) is not distinguishable from zero:"
            f" the probability that its true Sharpe ratio is above zero is {shown}, below the {confidence:.0%}"
            " a real edge would show."
        )
    if pbo is not None:
        if pbo >= 0.5:
            lines.append(
                f"Probability of backtest overfitting {pbo:.0%}: the settings that were best in sample rank in the"
                " bottom half on unseen blocks at least as often as not, so the search picks no better than a coin."
            )
        else:
            lines.append(
                f"Probability of backtest overfitting {pbo:.0%}: the in-sample best mostly stays in the top half"
                " on unseen blocks."
            )
    if dsr is not None and not math.isnan(dsr):
        if dsr < confidence:
            lines.append(
                f"Deflated Sharpe ratio {dsr:.2f}: after {trials} trials, the chosen settings' in-sample Sharpe"
                " ratio is within what luck alone would produce."
            )
        else:
            lines.append(
                f"Deflated Sharpe ratio {dsr:.2f}: the chosen settings' in-sample Sharpe ratio beats the best that"
                f" {trials} skill-less trials would show."
            )
    if buy_and_hold_pct is not None and not math.isnan(buy_and_hold_pct) and oos_trades > 0:
        side = "more" if oos_return_pct > buy_and_hold_pct else "less"
        lines.append(
            f"Holding the same symbols in equal parts over the same windows returned {buy_and_hold_pct:+.2f} %:"
            f" the walk-forward earned {side} ({oos_return_pct:+.2f} %)."
        )
    better = significant and (pbo is None or pbo < 0.5)
    if better:
        lines.append("Verdict: the out-of-sample result is better than chance.")
    else:
        lines.append(
            "Verdict: the out-of-sample result is NO BETTER THAN CHANCE. Do not trade these settings on the"
            " strength of this study."
        )
    return Verdict(better, tuple(lines))
