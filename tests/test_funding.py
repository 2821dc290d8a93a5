"""Funding settlement in backtests: the SimulationModule books each funding payment into the account."""

from decimal import Decimal

import pytest
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import FundingRateUpdate

from nodes.backtest.funding import FundingSettlementModule
from strategies.ats import AtsStrategy
from strategies.funding import funding_payment
from tests.strategy_support import (
    MINUTE_NS,
    VENUE,
    Commander,
    CommanderConfig,
    ats_config,
    make_engine,
    path_bars,
    perp,
)

T0 = 1_700_006_400_000_000_000  # 2023-11-15 00:00 UTC
BTC = perp("BTCUSDT")


def test_funding_payment_sign() -> None:
    assert funding_payment(0.2, 50_000, 0.0001) == pytest.approx(1.0)  # long pays a positive rate
    assert funding_payment(-0.2, 50_000, 0.0001) == pytest.approx(-1.0)  # short receives it
    assert funding_payment(0.2, 50_000, -0.0001) == pytest.approx(-1.0)


def run(direction: str, rates: list[float], with_module: bool = True):
    module = FundingSettlementModule()
    engine = make_engine([BTC], modules=[module] if with_module else [])
    engine.add_data(path_bars(BTC, [50_000.0] * 30, T0))
    # a funding time every 10 minutes; the first one comes before the entry and must not be charged
    engine.add_data(
        [
            FundingRateUpdate(BTC.id, Decimal(str(rate)), T0 + (i * 10) * MINUTE_NS + 1, T0 + (i * 10) * MINUTE_NS + 1)
            for i, rate in enumerate(rates)
        ]
    )
    strategy = AtsStrategy(ats_config([BTC], {"scan.entries": "NONE"}))
    engine.add_actor(Commander(CommanderConfig(schedule=((T0 + 2 * MINUTE_NS + 10**9, "signal", ("BTC", direction)),))))
    engine.add_strategy(strategy)
    engine.run()
    return engine, strategy, module


@pytest.mark.parametrize(("direction", "sign"), [("long", 1), ("short", -1)])
def test_funding_settled_into_the_account(direction: str, sign: int) -> None:
    engine, strategy, module = run(direction, [0.01, 0.0001, -0.0003])
    (position,) = engine.cache.positions_open()
    qty = position.quantity.as_double()
    expected = sign * qty * 50_000 * (0.0001 - 0.0003)  # paid; the first rate came before the entry
    assert module.totals[str(BTC.id)] == pytest.approx(expected)
    assert module.settlements == 2
    account = engine.cache.account_for_venue(VENUE)
    commissions = sum(m.as_double() for m in position.commissions())
    assert account.balance_total(USDT).as_double() == pytest.approx(100_000 - commissions - expected)
    # the strategy's ledger sees the same funding for the open trade
    (rec,) = strategy.ledger()
    assert rec["funding"] == pytest.approx(-expected)


def test_without_the_module_nothing_is_settled() -> None:
    engine, _, _ = run("long", [0.01, 0.01])
    engine_off, _, _ = run("long", [0.01, 0.01], with_module=False)
    on = engine.cache.account_for_venue(VENUE).balance_total(USDT).as_double()
    off = engine_off.cache.account_for_venue(VENUE).balance_total(USDT).as_double()
    assert off - on == pytest.approx(0.199 * 50_000 * 0.01)  # 0.199 BTC: the capped size


def test_funding_clock_settles_when_the_next_funding_time_moves() -> None:
    from strategies.funding import FundingClock

    clock = FundingClock()
    hour = 3_600 * 10**9
    assert clock.update("X", 0.0001, 8 * hour) is None  # first sight: nothing known to have settled
    assert clock.update("X", 0.0002, 8 * hour) is None  # same funding time, the rate estimate moves
    assert clock.update("X", 0.0003, 16 * hour) == 0.0002  # the 8h funding settled at the last rate seen
    assert clock.update("Y", -0.0001, 8 * hour) is None  # per instrument
    assert clock.update("X", 0.0003, 16 * hour) is None
