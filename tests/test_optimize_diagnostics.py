"""The overfitting diagnostics against cases computed by hand (and the published DSR example)."""

import math

import numpy as np
import pytest

from nodes.research.optimize.diagnostics import (
    deflated_sharpe,
    deflated_sharpe_of,
    expected_max_sharpe,
    moments,
    pbo_cscv,
    probabilistic_sharpe,
    sharpe,
    verdict,
)


def test_probabilistic_sharpe_by_hand() -> None:
    # SR 0.1 over 101 returns, normal: z = 0.1 * sqrt(100) / sqrt(1 + (3 - 1) / 4 * 0.01) = 1 / 1.002497 = 0.997509
    # Phi(0.997509) = Phi(1) - 0.002491 * phi(1) = 0.841345 - 0.000603 = 0.840742
    assert probabilistic_sharpe(0.1, 101, 0.0, 3.0) == pytest.approx(0.840742, abs=2e-6)
    # against its own value as benchmark: exactly one half
    assert probabilistic_sharpe(0.1, 101, 0.0, 3.0, benchmark=0.1) == pytest.approx(0.5)
    # negative skew and fat tails widen the estimate's error: the same Sharpe is less convincing
    assert probabilistic_sharpe(0.1, 101, -3.0, 10.0) < probabilistic_sharpe(0.1, 101, 0.0, 3.0)


def test_deflated_sharpe_matches_the_papers_example() -> None:
    # Bailey and Lopez de Prado (2014), numerical example: 100 trials whose annualised Sharpe ratios vary with
    # variance 1/2, the best at 2.5 annualised over 1,250 daily returns with skewness -3 and kurtosis 10.
    # By hand: sqrt(0.5/250) = 0.0447214; Z^-1(1 - 1/100) = 2.326348; Z^-1(1 - 1/(100 e)) = 2.680282;
    # SR0 = 0.0447214 * (0.4227843 * 2.326348 + 0.5772157 * 2.680282) = 0.0447214 * 2.530647 = 0.113174.
    # SR = 2.5 / sqrt(250) = 0.1581139; denominator sqrt(1 + 3 * 0.1581139 + 9 / 4 * 0.025) = 1.2371708;
    # z = (0.1581139 - 0.113174) * sqrt(1249) / 1.2371708 = 1.283763; DSR = Phi(1.283763) = 0.9004.
    assert expected_max_sharpe(100, 0.5 / 250) == pytest.approx(0.113174, abs=2e-6)
    assert deflated_sharpe(2.5 / math.sqrt(250), 1250, -3.0, 10.0, 100, 0.5 / 250) == pytest.approx(0.9004, abs=1e-4)
    # one trial has nothing to deflate: the DSR is the PSR against zero
    assert expected_max_sharpe(1, 0.5 / 250) == 0.0


def test_deflated_sharpe_of_trial_returns_uses_their_own_moments() -> None:
    rng = np.random.default_rng(7)
    returns = rng.normal(0.0, 0.01, size=(500, 20))
    returns[:, 3] += 0.002  # the "chosen" trial has a small edge
    result = deflated_sharpe_of(returns[:, 3], returns)
    sharpes = [sharpe(returns[:, i]) for i in range(20)]
    skew, kurtosis = moments(returns[:, 3])
    assert result.trials == 20 and result.observations == 500
    assert result.sharpe == pytest.approx(sharpes[3])
    assert result.sharpe_variance == pytest.approx(np.var(sharpes, ddof=1))
    assert result.value == pytest.approx(
        deflated_sharpe(sharpes[3], 500, skew, kurtosis, 20, float(np.var(sharpes, ddof=1)))
    )
    assert 0.0 < result.value < 1.0


def test_moments_by_hand() -> None:
    # [1, 2, 3, 10]: mean 4, deviations -3 -2 -1 6; m2 = 50/4 = 12.5, m3 = 180/4 = 45, m4 = 1394/4 = 348.5
    skew, kurtosis = moments(np.array([1.0, 2.0, 3.0, 10.0]))
    assert skew == pytest.approx(45 / 12.5**1.5)
    assert kurtosis == pytest.approx(348.5 / 12.5**2)
    assert moments(np.zeros(5)) == (0.0, 3.0)


def _blocks(means: list[tuple[float, float]]) -> np.ndarray:
    """Two trials; each block two rows (mean + 0.5, mean - 0.5) for A and (0.5, -0.5) for B (mean 0)."""
    rows = []
    for a, _ in means:
        rows += [[a + 0.5, 0.5], [a - 0.5, -0.5]]
    return np.array(rows)


def test_pbo_by_hand() -> None:
    # Trial A's block means 2, 2, -1, -1; trial B's 0 everywhere, so a split ranks A above B exactly when A's
    # mean there is positive. The six splits (in sample | out of sample), in itertools order:
    #   {1,2}|{3,4}: A best in sample (+4 > 0), worse out of sample (-2)   -> overfit, w = 1/3
    #   {1,3}|{2,4}: A (+1), better out of sample (+1)                     -> w = 2/3
    #   {1,4}|{2,3}: A (+1), better (+1)                                   -> w = 2/3
    #   {2,3}|{1,4}: A (+1), better (+1)                                   -> w = 2/3
    #   {2,4}|{1,3}: A (+1), better (+1)                                   -> w = 2/3
    #   {3,4}|{1,2}: B (A is -2), worse out of sample (A +4)              -> overfit, w = 1/3
    # PBO = 2 / 6.
    result = pbo_cscv(_blocks([(2, 0), (2, 0), (-1, 0), (-1, 0)]), blocks=4)
    assert result.splits == 6
    assert result.value == pytest.approx(1 / 3)
    down, up = math.log(0.5), math.log(2.0)  # log(w / (1 - w)) for w = 1/3 and 2/3
    assert result.logits == pytest.approx((down, up, up, up, up, down))


def test_pbo_of_a_dominant_trial_is_zero_and_of_a_reversal_is_one() -> None:
    assert pbo_cscv(_blocks([(1, 0), (2, 0), (1, 0), (3, 0)]), blocks=4).value == 0.0
    # A's block means 3, 2, -1, -4 sum to zero with no pair at zero: every half A wins in sample (positive
    # there) it loses out of sample (the other half is its negative), and every half it loses, B wins and
    # then loses to A. Splits: 5|-5, 2|-2, -1|1, 1|-1, -2|2, -5|5 -> all six overfit.
    assert pbo_cscv(_blocks([(3, 0), (2, 0), (-1, 0), (-4, 0)]), blocks=4).value == 1.0


def test_pbo_needs_enough_rows_and_trials() -> None:
    with pytest.raises(ValueError, match="2 or more trials"):
        pbo_cscv(np.zeros((20, 1)), blocks=4)
    with pytest.raises(ValueError, match="8 or more rows"):
        pbo_cscv(np.zeros((7, 3)), blocks=4)
    with pytest.raises(ValueError, match="even"):
        pbo_cscv(np.zeros((20, 3)), blocks=3)


def test_verdict_in_plain_words() -> None:
    chance = verdict(oos_psr=0.62, oos_return_pct=1.5, oos_trades=12, pbo=0.7, dsr=0.3, trials=50)
    assert not chance.better_than_chance
    assert "NO BETTER THAN CHANCE" in chance.lines[-1]
    assert any("not distinguishable from zero" in line for line in chance.lines)
    assert any("no better than a coin" in line for line in chance.lines)
    assert any("within what luck alone would produce" in line for line in chance.lines)
    edge = verdict(oos_psr=0.99, oos_return_pct=8.0, oos_trades=40, pbo=0.2, dsr=0.97, trials=50)
    assert edge.better_than_chance and edge.lines[-1] == "Verdict: the out-of-sample result is better than chance."
    # a significant out-of-sample result picked by an overfit search is still not trusted
    assert not verdict(oos_psr=0.99, oos_return_pct=8.0, oos_trades=40, pbo=0.6, dsr=0.97, trials=50).better_than_chance
    idle = verdict(oos_psr=float("nan"), oos_return_pct=0.0, oos_trades=0, pbo=None, dsr=None, trials=10)
    assert not idle.better_than_chance and "did not trade" in idle.lines[0]
