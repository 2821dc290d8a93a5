"""The score as a plain function: renormalisation over live factors, thresholds, F modulation, gates, JSON."""

import json
from pathlib import Path

import pytest

from factors.book import FactorBook
from factors.config import DEFAULT_WEIGHTS, FactorConfig
from factors.scoring import FLAT, LONG, SHORT, directed, factor_sign, rank, score
from strategies.config import StrategyConfigError, parse_strategy_config
from strategies.market import Market
from tests.factors_data import load_bars

# The hand-computed cases below use the original design's weights (nodes/configs/original.toml), given here
# explicitly: the package's default weights count O, B and Q 0 (test_default_weights_count_only_tested_factors).
ORIGINAL_WEIGHTS = {"T": 25.0, "M": 15.0, "C": 20.0, "S": 10.0, "V": 15.0, "O": 20.0, "B": 15.0, "Q": 10.0}
C = FactorConfig(weights=ORIGINAL_WEIGHTS, direction="follow")


def test_all_signed_factors_live_is_the_weighted_mean() -> None:
    values = {"T": 80.0, "M": 40.0, "C": -20.0, "S": 10.0, "V": 50.0, "O": 30.0, "B": 0.0, "Q": -100.0}
    r = score(values, C)
    expected = sum(ORIGINAL_WEIGHTS[k] * v for k, v in values.items()) / sum(ORIGINAL_WEIGHTS.values())
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
    gated = FactorConfig(direction="follow", liquidity_gate=40.0, independence_gate=20.0)
    r = score({"T": 60.0, "L": 30.0, "I": 80.0}, gated)
    assert r.direction == FLAT and r.gated == ("L",) and "below gate" in r.notes["L"]
    assert r.score == pytest.approx(60.0)
    # a gate only closes on a live value: unknown liquidity does not block (it is listed as missing)
    assert score({"T": 60.0}, gated).direction == LONG
    # L and I never vote
    assert score({"T": 60.0, "L": 0.0, "I": 0.0}, C).score == pytest.approx(60.0)


def test_weights_from_config_and_zero_weight_removes_a_factor() -> None:
    c = FactorConfig(weights={"T": 0.0}, direction="follow")
    r = score({"T": 90.0, "M": -30.0}, c)
    assert r.score == pytest.approx(-30.0)
    assert c.weight("M") == DEFAULT_WEIGHTS["M"]


def test_default_weights_count_only_tested_factors() -> None:
    """O and Q (no data in any backtest) and B (no information in the study) count 0 by default: a live O or Q
    value does not move the default score, which stays the one the backtests measured."""
    assert DEFAULT_WEIGHTS == {"T": 25.0, "M": 15.0, "C": 20.0, "S": 10.0, "V": 15.0, "O": 0.0, "B": 0.0, "Q": 0.0}
    follow = FactorConfig(direction="follow")
    backtest = score({"T": 40.0, "S": 20.0}, follow)  # (25*40 + 10*20) / 35
    live = score({"T": 40.0, "S": 20.0, "O": 90.0, "B": -50.0, "Q": 100.0}, follow)
    assert backtest.score == pytest.approx(1200 / 35) and live.score == pytest.approx(backtest.score)
    assert live.contributions["O"] == live.contributions["Q"] == 0.0


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


# -- direction: "follow" (the original design) or "fade" (T, M, C, V and F read contrarian) ------------------


FADE = FactorConfig(weights=ORIGINAL_WEIGHTS, direction="fade")


def test_fade_flips_the_trend_type_factors_and_keeps_the_others() -> None:
    values = {"T": 80.0, "M": 40.0, "C": -20.0, "S": 10.0, "V": 50.0, "O": 30.0, "B": 0.0, "Q": -100.0}
    # by hand, weights T25 M15 C20 S10 V15 O20 B15 Q10 (130):
    # follow: 25*80 + 15*40 - 20*20 + 10*10 + 15*50 + 20*30 + 0 - 10*100 = 2650 -> +20.3846
    # fade:  -25*80 - 15*40 + 20*20 + 10*10 - 15*50 + 20*30 + 0 - 10*100 = -3250 -> -25.0
    follow = score(values, C)
    fade = score(values, FADE)
    assert follow.score == pytest.approx(2650 / 130) and follow.direction == LONG
    assert fade.score == pytest.approx(-25.0) and fade.direction == SHORT and fade.strength == pytest.approx(25.0)
    assert fade.contributions["T"] == pytest.approx(-25 * 80 / 130)
    assert fade.contributions["C"] == pytest.approx(+20 * 20 / 130)
    assert fade.contributions["S"] == pytest.approx(+10 * 10 / 130)  # S is a reversion measure already
    assert fade.contributions["Q"] == pytest.approx(-10 * 100 / 130)  # O, B, Q keep their sign
    assert sum(fade.contributions.values()) == pytest.approx(fade.score)
    # the values stay as measured; the JSON shows the value and the contribution it made
    assert fade.values["T"] == 80.0
    assert json.loads(fade.to_json())["T"] == {"value": 80.0, "contribution": pytest.approx(-15.3846, abs=1e-4)}
    assert fade.top_factors(2) == [("T", pytest.approx(-2000 / 130)), ("Q", pytest.approx(-1000 / 130))]


def test_fade_with_structure_is_not_a_plain_mirror() -> None:
    # T 60 and S 60 (weights 25, 10): follow (1500 + 600) / 35 = +60; fade (-1500 + 600) / 35 = -25.714
    assert score({"T": 60.0, "S": 60.0}, C).score == pytest.approx(60.0)
    assert score({"T": 60.0, "S": 60.0}, FADE).score == pytest.approx(-900 / 35)
    assert score({"S": 60.0}, FADE).score == pytest.approx(60.0)


def test_fade_reads_the_fund_leading_modulator_contrarian_too() -> None:
    # T 50 faded: score -50 (SHORT). Raw F +50 reads -50: it agrees with the short, x (1 + 0.2 * 0.5).
    agree = score({"T": 50.0, "F": 50.0}, FADE)
    assert agree.direction == SHORT and agree.strength == pytest.approx(55.0)
    # raw F -50 reads +50 and contradicts the short: x (1 - 0.3 * 0.5)
    assert score({"T": 50.0, "F": -50.0}, FADE).strength == pytest.approx(42.5)
    assert agree.contributions.get("F", 0.0) == 0.0


@pytest.mark.parametrize(("t", "direction"), [(10.0, FLAT), (10.5, SHORT), (-10.0, FLAT), (-10.5, LONG)])
def test_fade_thresholds_are_strict_on_the_read_score(t: float, direction: str) -> None:
    assert score({"T": t}, FADE).direction == direction


def test_factor_sign_and_directed_value() -> None:
    assert [factor_sign(k, "fade") for k in ("T", "M", "C", "V", "F")] == [-1.0] * 5
    assert [factor_sign(k, "fade") for k in ("S", "O", "B", "Q", "L", "I")] == [1.0] * 6
    assert all(factor_sign(k, "follow") == 1.0 for k in ("T", "M", "C", "S", "V", "O", "B", "Q", "L", "I", "F"))
    assert directed("T", 70.0, FADE) == -70.0 and directed("S", 70.0, FADE) == 70.0
    assert directed("T", None, FADE) is None and directed("T", 70.0, C) == 70.0
    with pytest.raises(ValueError, match="direction 'up'"):
        factor_sign("T", "up")
    with pytest.raises(ValueError, match="unknown factor 'X'"):
        factor_sign("X", "fade")


def test_direction_is_checked_in_the_config() -> None:
    with pytest.raises(ValueError, match=r"direction: 'contrarian' is not one of \['follow', 'fade'\]"):
        FactorConfig(direction="contrarian")
    with pytest.raises(StrategyConfigError, match=r"^factors\.direction: 'up' is not one of"):
        parse_strategy_config({"factors": {"direction": "up"}})
    assert FactorConfig.from_dict({"direction": "fade"}).direction == "fade"
    assert FactorConfig.parse(FADE.json()) == FADE


def test_the_exit_rules_read_the_trend_as_the_score_does(shared_data: Path) -> None:
    """The exit rule "trend > 60 along the trade widens the targets" reads T in the model's direction: under
    "fade" a short entered against a strong rise has the (contrarian) trend with it."""
    bars = load_bars(shared_data / "ohlcv_2023-01_2024-05/BTCUSDT-1h.csv.gz", slice(0, 300))
    instrument_id = bars[0].bar_type.instrument_id
    trends = {}
    for config in (C, FADE):
        book = FactorBook(config, [instrument_id])
        for bar in bars:
            book.handle_bar(bar)
        inputs, atr = Market().factor_inputs(book, instrument_id, 70.0)
        trends[config.direction] = inputs.trend
        assert atr == book.atr(instrument_id)
    raw = trends["follow"]
    assert raw is not None and abs(raw) > 1.0  # a real value on real bars
    assert trends["fade"] == pytest.approx(-raw)
