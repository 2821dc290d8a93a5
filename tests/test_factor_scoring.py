"""The score as a plain function: renormalisation over live factors, thresholds, F modulation, gates, JSON."""

import json

import pytest

from factors.config import DEFAULT_WEIGHTS, FactorConfig
from factors.scoring import FLAT, LONG, SHORT, rank, score

C = FactorConfig()


def test_all_signed_factors_live_is_the_weighted_mean() -> None:
    values = {"T": 80.0, "M": 40.0, "C": -20.0, "S": 10.0, "V": 50.0, "O": 30.0, "B": 0.0, "Q": -100.0}
    r = score(values, C)
    expected = sum(DEFAULT_WEIGHTS[k] * v for k, v in values.items()) / sum(DEFAULT_WEIGHTS.values())
    assert r.score == pytest.approx(expected)
    assert sum(r.contributions.values()) == pytest.approx(r.score)
    assert r.contributions["T"] == pytest.approx(25 * 80 / 130)
    assert r.direction == LONG and r.strength == pytest.approx(abs(expected))


def test_missing_factors_renormalise_and_are_listed() -> None:
    r = score({"T": 60.0, "M": 60.0, "C": None}, C)
    # only T and M are live: their weighted mean is 60, not diluted by the missing six
    assert r.score == pytest.approx(60.0)
    assert r.available == ("T", "M")
    assert set(r.missing) == {"C", "S", "V", "O", "B", "Q", "L", "I", "F"}
    assert r.values["C"] is None
    assert json.loads(r.to_json()) == {
        "T": {"value": 60.0, "contribution": pytest.approx(60 * 25 / 40)},
        "M": {"value": 60.0, "contribution": pytest.approx(60 * 15 / 40)},
    }


def test_nothing_live_is_flat_with_a_note() -> None:
    r = score({}, C)
    assert r.direction == FLAT and r.score == 0.0 and r.strength == 0.0
    assert "no weighted factor" in r.notes["score"]


@pytest.mark.parametrize(("t", "direction"), [(10.0, FLAT), (10.5, LONG), (-10.0, FLAT), (-10.5, SHORT)])
def test_thresholds_are_strict(t: float, direction: str) -> None:
    assert score({"T": t}, C).direction == direction


def test_fund_leading_boosts_agreement_and_cuts_contradiction() -> None:
    base = score({"T": 50.0}, C)
    boosted = score({"T": 50.0, "F": 50.0}, C)
    cut = score({"T": 50.0, "F": -50.0}, C)
    assert boosted.strength == pytest.approx(50.0 * (1 + 0.2 * 0.5))
    assert cut.strength == pytest.approx(50.0 * (1 - 0.3 * 0.5))
    assert base.strength == 50.0
    # F is a modulator: no contribution, direction unchanged
    assert boosted.contributions.get("F", 0.0) == 0.0 and cut.direction == LONG
    short = score({"T": -50.0, "F": -50.0}, C)
    assert short.strength == pytest.approx(55.0)
    assert score({"T": 100.0, "F": 100.0}, C).strength == 100.0  # capped


def test_quality_gates_flatten_but_keep_the_breakdown() -> None:
    gated = FactorConfig(liquidity_gate=40.0, independence_gate=20.0)
    r = score({"T": 60.0, "L": 30.0, "I": 80.0}, gated)
    assert r.direction == FLAT and r.gated == ("L",) and "below gate" in r.notes["L"]
    assert r.score == pytest.approx(60.0)
    # a gate only closes on a live value: unknown liquidity does not block (it is listed as missing)
    assert score({"T": 60.0}, gated).direction == LONG
    # L and I never vote
    assert score({"T": 60.0, "L": 0.0, "I": 0.0}, C).score == pytest.approx(60.0)


def test_weights_from_config_and_zero_weight_removes_a_factor() -> None:
    c = FactorConfig(weights={"T": 0.0})
    r = score({"T": 90.0, "M": -30.0}, c)
    assert r.score == pytest.approx(-30.0)
    assert c.weight("M") == DEFAULT_WEIGHTS["M"]


def test_bad_input_is_rejected_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="unknown factor key"):
        score({"X": 1.0}, C)
    with pytest.raises(ValueError, match="must be finite"):
        score({"T": float("nan")}, C)
    with pytest.raises(ValueError, match="unknown factor"):
        FactorConfig(weights={"L": 10.0})
    with pytest.raises(ValueError, match="thresholds"):
        FactorConfig(long_threshold=-5.0)
    with pytest.raises(ValueError, match="unknown FactorConfig key"):
        FactorConfig.from_dict({"trend_ema_slw": 40})


def test_top_factors_and_rank() -> None:
    r = score({"T": 80.0, "M": -40.0, "C": 30.0}, C, instrument_id="A")
    assert [k for k, _ in r.top_factors(2)] == ["T", "C"]
    assert [k for k, _ in r.top_factors(5)] == ["T", "C"]  # M pushed against the LONG: not a reason for it
    assert [k for k, _ in score({"T": 5.0, "M": -20.0}, C).top_factors(5)] == ["M", "T"]  # FLAT: by size
    a = score({"T": 30.0}, C, instrument_id="A")
    b = score({"T": -60.0}, C, instrument_id="B")
    flat = score({"T": 5.0}, C, instrument_id="C")
    assert [x.instrument_id for x in rank([flat, a, b])] == ["B", "A", "C"]


def test_config_round_trips_through_json_like_a_strategy_config() -> None:
    c = FactorConfig.from_dict({"weights": {"T": 30.0}, "cvd_window": 30})
    assert FactorConfig.parse(c.json()) == c
