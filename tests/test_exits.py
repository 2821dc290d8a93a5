"""Exit levels and the dynamic adjustment, as plain functions."""

import pytest

from strategies.exits import (
    DynamicConfig,
    DynamicKind,
    ExitConfig,
    ExitMode,
    FactorInputs,
    dynamic_adjustment,
    exit_levels,
    factor_multipliers,
    is_breakeven,
)


def test_base_levels_long_and_short() -> None:
    lv = exit_levels(100.0, "LONG", FactorInputs(strength=60))
    assert (lv.stop, lv.tp1, lv.tp2) == pytest.approx((98.0, 104.0, 108.0))
    sv = exit_levels(100.0, "SHORT", FactorInputs(strength=60))
    assert (sv.stop, sv.tp1, sv.tp2) == pytest.approx((102.0, 96.0, 92.0))


def test_each_factor_rule() -> None:
    assert factor_multipliers("LONG", FactorInputs(strength=71))[:2] == pytest.approx((0.8, 1.3))
    assert factor_multipliers("LONG", FactorInputs(strength=50, trend=61))[:2] == pytest.approx((1.0, 1.2))
    # trend is read along the trade: a strong uptrend does not widen a short's targets
    assert factor_multipliers("SHORT", FactorInputs(strength=50, trend=61))[:2] == pytest.approx((1.0, 1.0))
    assert factor_multipliers("SHORT", FactorInputs(strength=50, trend=-61))[:2] == pytest.approx((1.0, 1.2))
    assert factor_multipliers("LONG", FactorInputs(strength=50, liquidity=61))[:2] == pytest.approx(
        (0.9, 1.0)
    )
    assert factor_multipliers("LONG", FactorInputs(strength=50, atr_pct=3.1))[:2] == pytest.approx((1.5, 1.0))
    # missing data applies no rule
    assert factor_multipliers("LONG", FactorInputs(strength=50))[:2] == (1.0, 1.0)


def test_all_rules_combined() -> None:
    f = FactorInputs(strength=85, trend=70, liquidity=80, atr_pct=4.0)
    lv = exit_levels(200.0, "LONG", f)
    stop_mult = 0.8 * 0.9 * 1.5
    target_mult = 1.3 * 1.2
    assert lv.stop == pytest.approx(200 - 200 * 0.02 * stop_mult)
    assert lv.tp1 == pytest.approx(200 + 200 * 0.04 * target_mult)
    assert lv.tp2 == pytest.approx(200 + 200 * 0.08 * target_mult)
    assert len(lv.reasons) == 4


def test_atr_mode_within_bounds() -> None:
    params = ExitConfig(mode=ExitMode.ATR)
    lv = exit_levels(100.0, "LONG", FactorInputs(strength=50), params, atr=1.0)
    assert lv.stop == pytest.approx(98.2)
    assert lv.tp1 == pytest.approx(102.5)
    assert lv.tp2 == pytest.approx(100 + 2.5 * 1.5)
    # strong signal shrinks the stop to 1.44 ATR; a volatile one then widens it, within 3.0 ATR
    wide = exit_levels(100.0, "SHORT", FactorInputs(strength=90, trend=-90, atr_pct=5), params, atr=1.0)
    assert wide.stop == pytest.approx(100 + 1.8 * 0.8 * 1.5)
    assert wide.tp1 == pytest.approx(100 - min(2.5 * 1.3 * 1.2, 4.5))
    # bounds clamp
    narrow = exit_levels(
        100.0,
        "LONG",
        FactorInputs(strength=90, liquidity=90),
        ExitConfig(mode=ExitMode.ATR, atr_stop_mult=1.0),
        atr=1.0,
    )
    assert narrow.stop == pytest.approx(100 - 1.2)


def test_atr_mode_without_atr_falls_back_to_percent() -> None:
    lv = exit_levels(100.0, "LONG", FactorInputs(strength=50), ExitConfig(mode=ExitMode.ATR), atr=None)
    assert lv.stop == pytest.approx(98.0)


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError):
        exit_levels(0.0, "LONG", FactorInputs(strength=50))
    with pytest.raises(ValueError):
        exit_levels(1.0, "FLAT", FactorInputs(strength=50))


def test_breakeven_read_from_stop_price() -> None:
    assert is_breakeven(100.0, 100.0, 0.1)
    assert not is_breakeven(99.8, 100.0, 0.1)


def test_dynamic_tighten_never_loosens() -> None:
    act = dynamic_adjustment("LONG", 100.0, 98.0, 108.0, price=99.0, score=-30, trails_done=0)
    assert act.kind == DynamicKind.TIGHTEN
    assert act.new_stop == pytest.approx(98.5)
    # stop already above the halfway point minus the gap: nothing to tighten
    none = dynamic_adjustment("LONG", 100.0, 98.9, 108.0, price=99.0, score=-30, trails_done=0)
    assert none.kind == DynamicKind.NONE
    short = dynamic_adjustment("SHORT", 100.0, 102.0, 92.0, price=101.0, score=30, trails_done=0)
    assert short.kind == DynamicKind.TIGHTEN and short.new_stop == pytest.approx(101.5)


def test_dynamic_exit_and_trail() -> None:
    assert dynamic_adjustment("LONG", 100, 98, 108, 99, score=-70, trails_done=0).kind == DynamicKind.EXIT
    assert dynamic_adjustment("SHORT", 100, 102, 92, 101, score=70, trails_done=0).kind == DynamicKind.EXIT
    trail = dynamic_adjustment("LONG", 100, 98, 108, 103, score=90, trails_done=0)
    assert trail.kind == DynamicKind.TRAIL and trail.new_tp2 == pytest.approx(110.0)
    assert dynamic_adjustment("LONG", 100, 98, 108, 103, score=90, trails_done=2).kind == DynamicKind.NONE
    # no trailing while under water
    assert dynamic_adjustment("LONG", 100, 98, 108, 99, score=90, trails_done=0).kind == DynamicKind.NONE
    # neutral score: nothing
    assert dynamic_adjustment("LONG", 100, 98, 108, 99, score=10, trails_done=0).kind == DynamicKind.NONE
    custom = DynamicConfig(tighten_below=5.0)
    assert dynamic_adjustment("LONG", 100, 98, 108, 99, 0.0, 0, custom).kind == DynamicKind.TIGHTEN
