"""Sizing from equity, leverage by strength, and the TP split."""

from decimal import Decimal as D

import pytest

from strategies.sizing import (
    InstrumentFilters,
    SizingConfig,
    leverage_for_strength,
    position_size,
    round_to_step,
    split_quantity,
)

BTC = InstrumentFilters(step=D("0.001"), min_qty=D("0.001"), min_notional=D("100"))


@pytest.mark.parametrize(
    ("strength", "cap", "expected"),
    [(95, 10, 5), (80.1, 10, 5), (80, 10, 3), (61, 10, 3), (60, 10, 2), (10, 10, 2), (95, 4, 4), (95, 1, 1)],
)
def test_leverage_for_strength(strength: float, cap: int, expected: int) -> None:
    assert leverage_for_strength(strength, cap) == expected


def test_round_to_step_rounds_down() -> None:
    assert round_to_step(D("1.23456"), D("0.001")) == D("1.234")
    assert round_to_step(D("17"), D("5")) == D("15")
    with pytest.raises(ValueError):
        round_to_step(D("1"), D("0"))


def test_risk_one_percent_over_stop_distance() -> None:
    # 10,000 equity, 1 % risk = 100 USDT over a 20 USDT stop distance = 5 units -> notional 5,000
    d = position_size(
        D("10000"), D("10000"), D("1000"), D("980"), 3, InstrumentFilters(D("0.01"), D("0.01"), D(5))
    )
    assert d.accepted
    assert d.quantity == D("5.00")
    assert d.margin == pytest.approx(D("5000") / 3)


def test_notional_cap_and_leverage_cap() -> None:
    # wide equity: risk sizing wants 50 BTC, the 10,000 USDT cap allows 0.2
    d = position_size(D("1000000"), D("1000000"), D("50000"), D("49000"), 5, BTC)
    assert d.quantity == D("0.199") and d.notional <= D("10000")
    # the cap leaves room for the fill to slip 0.5 % above the reference price
    assert d.quantity * D("50000") * D("1.005") <= D("10000")
    assert position_size(
        D("1000000"), D("1000000"), D("50000"), D("49000"), 5, BTC, SizingConfig(slippage=0.0)
    ).quantity == D("0.200")
    # tight stop on a small account: equity x leverage caps the notional
    small = position_size(
        D("1000"), D("1000"), D("100"), D("99.9"), 2, InstrumentFilters(D("0.1"), D("0.1"), D(5))
    )
    assert small.notional <= D("2000")
    assert small.leverage == 2
    # the trade leverage is never above max_leverage
    assert position_size(D("1000"), D("1000"), D("100"), D("99"), 20, BTC, SizingConfig(max_leverage=10)).leverage == 10


def test_refused_below_min_notional_with_reason() -> None:
    d = position_size(D("100"), D("100"), D("50000"), D("49000"), 5, BTC)
    assert not d.accepted
    assert "below the instrument minimum" in d.reason


def test_refused_below_min_qty_and_free_balance() -> None:
    d = position_size(D("10"), D("10"), D("50000"), D("49000"), 5, BTC)
    assert not d.accepted and "below the minimum" in d.reason
    poor = position_size(
        D("100000"), D("100"), D("1000"), D("980"), 2, InstrumentFilters(D("0.01"), D("0.01"), D(5))
    )
    assert not poor.accepted and "free balance" in poor.reason


def test_max_qty_filter() -> None:
    f = InstrumentFilters(D("1"), D("1"), D("5"), max_qty=D("10"))
    assert position_size(D("100000"), D("100000"), D("1"), D("0.98"), 5, f).quantity == D("10")


def test_split_quantity() -> None:
    assert split_quantity(D("0.005"), D("0.001"), D("0.001")) == (D("0.002"), D("0.003"))
    assert split_quantity(D("10"), D("1"), D("1")) == (D("5"), D("5"))
    assert split_quantity(D("0.001"), D("0.001"), D("0.001")) == (D("0.001"), D("0"))
    assert split_quantity(D("3"), D("1"), D("2")) == (D("3"), D("0"))
