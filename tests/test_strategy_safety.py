"""Never without a stop: the invariant checker's teeth, and the safety net driven through a real BacktestEngine.

The first tests break the stop handling on purpose (a ``TradeOrders`` with one step wrong, swapped into the
strategy) and show the strict ``InvariantChecker`` flags each breach while the trade's end state looks the same.
The others drive the paths that protect a position after something went wrong: an error in the fill handler,
a stop the venue refuses (placed again), refused again and again (closed at market), a refused break-even
replacement, a close at market refused again and again (tried again with waits, the trader alerted once the quick
tries are spent); each ends with the position protected or closed, and the events a trader reads published.
"""

from decimal import Decimal
from typing import Any

import pytest
from nautilus_trader.model.enums import OrderStatus, OrderType

from strategies.ats import AtsStrategy
from strategies.events import ExitEvent, NodeEvent, PositionClosedEvent
from strategies.orders import TradeOrders
from strategies.protection import (
    STOP_RETRIES,
    GuardAction,
    GuardView,
    StopAction,
    after_stop_lost,
    guard_action,
    order_gone,
    stop_through_market,
)
from strategies.retry import BAN_MARGIN_S, RetryPolicy, banned_until_ms
from strategies.trade import TAG_EXIT, TAG_SL, Trade
from tests.strategy_support import ScenarioRun, StopRefusals, at, perp, ramp, run_scenario

BTC = perp("BTCUSDT")
ETH = perp("ETHUSDT")
TP1_THEN_BREAKEVEN = [50_000.0] * 5 + ramp(50_000, 52_200, 8) + ramp(52_200, 49_500, 12)  # TP1 52,000
STRAIGHT_STOP = [50_000.0] * 5 + ramp(50_000, 48_500, 10)  # the 49,000 stop is hit
LONG_BTC = [(at(2), "signal", ("BTCUSDT", "long"))]
REFUSED = "-1001 Internal error; unable to process your request. Please try again."


def with_orders(cls: type[TradeOrders]) -> Any:
    """A ``prepare`` hook that puts a ``TradeOrders`` of class ``cls`` under the strategy and its keeper."""

    def prepare(_: Any, strategy: AtsStrategy) -> None:
        orders = cls(strategy, strategy.market.instruments, strategy.config.exits.tp_order)
        strategy.orders = strategy.keeper.orders = orders

    return prepare


def stops(r: ScenarioRun) -> list[Any]:
    return [o for o in r.engine.cache.orders() if o.order_type == OrderType.STOP_MARKET]


def exit_kinds(r: ScenarioRun) -> list[str]:
    return [e.kind for e in r.events.of(ExitEvent)]


# --- the checker bites ------------------------------------------------------------------------------------


class CancelFirst(TradeOrders):
    """Bug: the old stop is cancelled before the new one is placed."""

    def replace_stop(self, trade: Trade, price: float, quantity: Decimal, kind: str) -> None:
        old = self.working(trade.stop_id)
        if old is not None:
            self.strategy.cancel_order(old)
        super().replace_stop(trade, price, quantity, kind)


class CancelAtOnce(TradeOrders):
    """Bug: the old stop is cancelled together with the new one's submission, before the venue accepted it
    (the two requests may land in either order, and the new one may be refused)."""

    def replace_stop(self, trade: Trade, price: float, quantity: Decimal, kind: str) -> None:
        super().replace_stop(trade, price, quantity, kind)
        self.cancel_replaced(trade)


class KeepReplaced(TradeOrders):
    """Bug: the replaced stop is never cancelled (two stops stay on the exchange)."""

    def cancel_replaced(self, trade: Trade) -> int:
        return 0


class NotReduceOnly(TradeOrders):
    """Bug: the stop may open a position the other way."""

    def replace_stop(self, trade: Trade, price: float, quantity: Decimal, kind: str) -> None:
        submit = self.strategy.submit_order

        def plain(order: Any, **kwargs: Any) -> None:
            instrument = self.instruments[trade.instrument_id]
            again = self.strategy.order_factory.stop_market(
                instrument_id=order.instrument_id,
                order_side=order.side,
                quantity=order.quantity,
                trigger_price=instrument.make_price(price),
                tags=order.tags,
            )
            trade.stop_id = again.client_order_id
            submit(again, **kwargs)

        self.strategy.submit_order = plain  # type: ignore[method-assign]
        try:
            super().replace_stop(trade, price, quantity, kind)
        finally:
            self.strategy.submit_order = submit  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("orders", "flagged"),
    [
        (CancelFirst, "without a working stop"),
        (CancelAtOnce, "without a working stop"),
        (KeepReplaced, "2 working stops once settled"),
        (NotReduceOnly, "not reduce-only"),
    ],
)
def test_the_invariant_checker_flags_each_broken_stop_rule(orders: type[TradeOrders], flagged: str) -> None:
    """Catches: a stop replaced cancel-first (or cancelled before its successor is accepted), a replaced stop
    left working, a stop that is not reduce-only. The trade still ends as the
    correct code's does (TP1, then out at about the entry), so no end-state assertion sees these bugs."""
    correct = run_scenario({BTC: TP1_THEN_BREAKEVEN}, LONG_BTC)
    broken = run_scenario({BTC: TP1_THEN_BREAKEVEN}, LONG_BTC, prepare=with_orders(orders), strict=False)
    assert correct.checker.violations == [] and correct.checker.events_checked > 30
    assert any(flagged in v for v in broken.checker.violations), broken.checker.violations
    assert broken.strategy.ledger()[0]["tp1_hit"]


# --- the safety net ---------------------------------------------------------------------------------------


def failing_once(method: Any) -> Any:
    calls = []

    def fail(*args: Any, **kwargs: Any) -> Any:
        if not calls:
            calls.append(args)
            raise RuntimeError("injected failure")
        return method(*args, **kwargs)

    return fail


def test_fill_handler_error_before_the_stop_closes_the_position_at_market() -> None:
    """Catches: an entry whose exits failed to go out is left open without a stop (the safety net not run,
    or reading the wrong position). The error is published, the position closed at market, reported as a stop."""

    def prepare(_: Any, strategy: AtsStrategy) -> None:
        strategy.orders.replace_stop = failing_once(strategy.orders.replace_stop)  # type: ignore[method-assign]

    r = run_scenario({BTC: [50_000.0] * 10}, LONG_BTC, prepare=prepare, errors=1)
    (error,) = r.events.of(NodeEvent, kind="ERROR")
    assert error.message.startswith("on_order_filled: RuntimeError('injected failure')")
    assert r.engine.cache.positions_open() == [] and stops(r) == []
    (close,) = [o for o in r.engine.cache.orders() if TAG_EXIT in o.tags]
    assert close.is_reduce_only and close.status == OrderStatus.FILLED
    assert exit_kinds(r) == ["STOP"]
    (closed,) = r.events.of(PositionClosedEvent)
    assert closed.exit_reason == "STOP" and closed.exit_price == 50_000.0
    assert r.engine.cache.orders_open() == []


def test_fill_handler_error_after_the_stop_keeps_the_protected_position() -> None:
    """Catches: the safety net closing a position whose stop is on its way (it must count a submitted stop),
    or not counting it at all. The targets failed; the stop alone protects and later closes the trade."""

    def prepare(_: Any, strategy: AtsStrategy) -> None:
        strategy.orders.target = failing_once(strategy.orders.target)  # type: ignore[method-assign]

    r = run_scenario({BTC: STRAIGHT_STOP}, LONG_BTC, prepare=prepare, errors=1)
    assert len(r.events.of(NodeEvent, kind="ERROR")) == 1
    assert [o for o in r.engine.cache.orders() if TAG_EXIT in o.tags] == []
    assert [o.status for o in stops(r)] == [OrderStatus.FILLED]
    (rec,) = r.strategy.ledger()
    assert rec["exit_reason"] == "STOP" and rec["exit_price"] == 49_000.0


@pytest.mark.parametrize("direction", ["long", "short"])
def test_refused_stop_is_placed_again_and_protects(direction: str) -> None:
    """Catches: a refused stop leaving the position bare, or closing it when placing the stop again works.
    The venue refuses the first stop once; the same stop goes out again, is accepted and later hit."""
    closes = STRAIGHT_STOP if direction == "long" else [50_000.0] * 5 + ramp(50_000, 51_500, 10)
    refusals: list[StopRefusals] = []

    def prepare(engine: Any, _: AtsStrategy) -> None:
        refusals.append(StopRefusals(engine, refuse=[1], reason=REFUSED))

    r = run_scenario({BTC: closes}, [(at(2), "signal", ("BTCUSDT", direction))], prepare=prepare)
    assert len(refusals[0].refused) == 1
    first, second = stops(r)
    assert first.status == OrderStatus.REJECTED and second.status == OrderStatus.FILLED
    assert first.trigger_price == second.trigger_price and second.is_reduce_only
    assert exit_kinds(r) == ["STOP_REARMED", "STOP"]
    (rearmed,) = r.events.of(ExitEvent, kind="STOP_REARMED")
    assert rearmed.new_stop == (49_000.0 if direction == "long" else 51_000.0)
    (rec,) = r.strategy.ledger()
    assert rec["exit_reason"] == "STOP" and rec["exit_price"] == rearmed.new_stop


def test_stop_refused_again_and_again_closes_the_position_at_market() -> None:
    """Catches: retrying a refused stop forever (or never closing) while the position has no stop."""
    refusals: list[StopRefusals] = []

    def prepare(engine: Any, _: AtsStrategy) -> None:
        refusals.append(StopRefusals(engine, refuse=range(1, 10), reason=REFUSED))

    r = run_scenario({BTC: [50_000.0] * 10}, LONG_BTC, prepare=prepare)
    assert len(refusals[0].refused) == STOP_RETRIES + 1
    assert [o.status for o in stops(r)] == [OrderStatus.REJECTED] * (STOP_RETRIES + 1)
    (close,) = [o for o in r.engine.cache.orders() if TAG_EXIT in o.tags]
    assert close.is_reduce_only and close.status == OrderStatus.FILLED
    assert exit_kinds(r) == ["STOP_REARMED"] * STOP_RETRIES + ["STOP"]
    assert r.strategy.ledger()[0]["exit_reason"] == "STOP"
    assert r.engine.cache.positions_open() == [] and r.engine.cache.orders_open() == []


def test_refused_break_even_replacement_is_placed_again_and_the_old_stop_covers_meanwhile() -> None:
    """Catches: the old stop cancelled before the break-even one is accepted (the refusal would leave the rest
    bare), and a refused replacement not placed again. The checker sees the old stop covering throughout."""
    refusals: list[StopRefusals] = []

    def prepare(engine: Any, _: AtsStrategy) -> None:
        refusals.append(StopRefusals(engine, refuse=[2], reason=REFUSED))  # the first break-even stop

    r = run_scenario({BTC: TP1_THEN_BREAKEVEN}, LONG_BTC, prepare=prepare)
    assert len(refusals[0].refused) == 1
    initial, refused, breakeven = stops(r)
    assert (initial.status, refused.status, breakeven.status) == (
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.FILLED,
    )
    assert breakeven.trigger_price.as_double() == 50_000.0 and TAG_SL in breakeven.tags
    assert initial.ts_last >= breakeven.ts_accepted  # the initial stop went only after its successor came
    # placed again after the retry policy's wait (the old stop covers meanwhile), not at once
    assert exit_kinds(r) == ["TP1", "BREAKEVEN", "STOP_REARMED", "STOP"]
    assert r.strategy.ledger()[0]["exit_reason"] == "TP1+BREAKEVEN"


def test_the_retry_budget_is_renewed_once_a_stop_is_accepted() -> None:
    """Catches: retries counted over the trade's life instead of per stop: a stop refused at entry would leave
    the break-even stop one try short. Refused: the first stop, then the first two break-even stops."""
    refusals: list[StopRefusals] = []

    def prepare(engine: Any, _: AtsStrategy) -> None:
        refusals.append(StopRefusals(engine, refuse=[1, 3, 4], reason=REFUSED))

    r = run_scenario({BTC: TP1_THEN_BREAKEVEN}, LONG_BTC, prepare=prepare)
    assert len(refusals[0].refused) == 3
    assert [o.status for o in stops(r)] == [
        OrderStatus.REJECTED,
        OrderStatus.CANCELED,  # the initial stop, placed again, until break-even was accepted
        OrderStatus.REJECTED,
        OrderStatus.REJECTED,
        OrderStatus.FILLED,  # break-even, at the third try
    ]
    assert [o for o in r.engine.cache.orders() if TAG_EXIT in o.tags] == []
    # the break-even stops are placed again after waits: the initial stop covers meanwhile
    assert exit_kinds(r) == ["STOP_REARMED", "TP1", "BREAKEVEN", "STOP_REARMED", "STOP_REARMED", "STOP"]
    assert r.strategy.ledger()[0]["exit_reason"] == "TP1+BREAKEVEN"


STOP = OrderType.STOP_MARKET


def is_close(order: Any) -> bool:
    return TAG_EXIT in order.tags


@pytest.mark.parametrize("refused_closes", [1, 6])
def test_refused_close_at_market_is_sent_again_until_the_position_is_closed(refused_closes: int) -> None:
    """Catches: a close at market the venue refuses never being sent again (the position would stay without a
    stop for good), and an alert that never comes, or comes for a passing refusal. Every stop is refused, so
    the strategy closes at market; the venue refuses that close ``refused_closes`` times. The close goes out
    again after each wait of the retry policy until it fills; past the policy's quick tries (5) the trader gets
    one ``NodeEvent("UNPROTECTED")`` saying what to do."""
    refusals: list[StopRefusals] = []

    def prepare(engine: Any, _: AtsStrategy) -> None:
        # the stop, its STOP_RETRIES tries again, then the closes: the first ``refused_closes`` of them refused
        refuse = range(1, STOP_RETRIES + 1 + refused_closes + 1)
        refusals.append(StopRefusals(engine, refuse, REFUSED, which=lambda o: is_close(o) or o.order_type == STOP))

    r = run_scenario({BTC: [50_000.0] * 20}, LONG_BTC, prepare=prepare, strict=False)
    assert len(refusals[0].refused) == STOP_RETRIES + 1 + refused_closes
    assert [o.status for o in stops(r)] == [OrderStatus.REJECTED] * (STOP_RETRIES + 1)
    closes = [o for o in r.engine.cache.orders() if is_close(o)]
    assert [o.status for o in closes] == [OrderStatus.REJECTED] * refused_closes + [OrderStatus.FILLED]
    assert all(o.is_reduce_only for o in closes)
    assert r.engine.cache.positions_open() == [] and r.engine.cache.orders_open() == []
    assert r.strategy.ledger()[0]["exit_reason"] == "STOP"
    alerts = r.events.of(NodeEvent, kind="UNPROTECTED")
    if refused_closes < len(RetryPolicy().delays_s):
        assert alerts == []
    else:
        (alert,) = alerts
        assert alert.message.startswith("BTCUSDT LONG 0.199 has NO STOP on the exchange (5 tries in a row")
        assert "every 30 s" in alert.message and "ats flatten" in alert.message
    assert r.checker.violations  # the position really was without a stop meanwhile (the checker saw it)


# --- the decision, plain --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("why", "direction", "trigger", "price", "retries", "closing", "action"),
    [
        ("rejected: " + REFUSED, "LONG", 49_000.0, 50_000.0, 0, False, StopAction.RETRY),
        ("denied: throttled", "SHORT", 51_000.0, 50_000.0, STOP_RETRIES - 1, False, StopAction.RETRY),
        ("rejected: " + REFUSED, "LONG", 49_000.0, 50_000.0, STOP_RETRIES, False, StopAction.CLOSE),
        ("rejected: " + REFUSED, "LONG", 49_000.0, None, 0, False, StopAction.RETRY),  # no price: try again
        ("rejected: " + REFUSED, "LONG", 50_000.0, 49_800.0, 0, False, StopAction.CLOSE),  # through the market
        ("rejected: " + REFUSED, "SHORT", 50_000.0, 50_000.0, 0, False, StopAction.CLOSE),  # at the market
        ("rejected: -2021 Order would immediately trigger.", "LONG", 49_000.0, 50_000.0, 0, False, StopAction.CLOSE),
        ("canceled", "LONG", 49_000.0, 50_000.0, 0, False, StopAction.CLOSE),  # someone else cancelled it
        ("expired", "SHORT", 51_000.0, 50_000.0, 0, False, StopAction.CLOSE),
        ("canceled", "LONG", 49_000.0, 50_000.0, 0, True, StopAction.NONE),  # our own exit is closing it
        ("rejected: " + REFUSED, "LONG", 49_000.0, 50_000.0, 0, True, StopAction.NONE),
    ],
)
def test_after_stop_lost(
    why: str, direction: str, trigger: float, price: float | None, retries: int, closing: bool, action: StopAction
) -> None:
    """Catches: retrying a stop that cannot work (through the market, out of retries, cancelled by someone),
    giving up on one that can, or a second close while the strategy already closes the position."""
    assert after_stop_lost(why, direction, trigger, price, retries, closing) == action


BANNED = "rejected: {'code': -1003, 'msg': 'Way too many requests; IP banned until 1796128980210.'}"


@pytest.mark.parametrize(
    ("why", "trigger", "retries", "covered", "banned", "action"),
    [
        # the old stop still covers: never closed for a refused move, tried again after a wait, however often
        ("rejected: " + REFUSED, 49_000.0, STOP_RETRIES, True, False, StopAction.RETRY_LATER),
        # a ban: nothing can go out before its end; then the stop, not a close
        (BANNED, 49_000.0, 0, False, True, StopAction.RETRY_LATER),
        (BANNED, 49_000.0, STOP_RETRIES, False, True, StopAction.RETRY_LATER),
        # through the market: a close, covered or banned
        ("rejected: " + REFUSED, 50_100.0, 0, True, False, StopAction.CLOSE),
        (BANNED, 50_100.0, 0, False, True, StopAction.CLOSE),
        ("canceled", 49_000.0, 0, True, False, StopAction.CLOSE),  # someone cancelled it: not a refusal
    ],
)
def test_after_stop_lost_waits_when_covered_or_banned(
    why: str, trigger: float, retries: int, covered: bool, banned: bool, action: StopAction
) -> None:
    """Catches: a position closed at market because a break-even move was refused while the old stop still
    covered it, or because a ban refused every try at once (the soak's over-sized stop that ended in a close)."""
    assert after_stop_lost(why, "LONG", trigger, 50_000.0, retries, False, covered, banned) == action


def test_a_cancel_refused_for_an_order_already_gone_is_not_tried_again() -> None:
    assert order_gone("{'code': -2011, 'msg': 'Unknown order sent.'}")
    assert not order_gone("{'code': -1008, 'msg': 'Server is currently overloaded with other requests.'}")


def test_stop_through_market_by_side() -> None:
    assert stop_through_market("LONG", 50_000.0, 49_999.9) and not stop_through_market("LONG", 49_000.0, 50_000.0)
    assert stop_through_market("SHORT", 50_000.0, 50_000.1) and not stop_through_market("SHORT", 51_000.0, 50_000.0)
    assert not stop_through_market("LONG", 50_000.0, None)


def view(**changes: Any) -> GuardView:
    protected = dict(
        position_open=True,
        closing=False,
        stop_working=True,
        in_flight=False,
        stale=0,
        stop_through_market=False,
    )
    return GuardView(**{**protected, **changes})


@pytest.mark.parametrize(
    ("changes", "action"),
    [
        ({}, GuardAction.DONE),  # one working stop
        ({"position_open": False, "stop_working": False, "closing": True}, GuardAction.DONE),  # closed
        ({"position_open": False, "stop_working": False, "stale": 1}, GuardAction.CANCEL_STALE),  # a left-over exit
        ({"position_open": False, "stale": 1, "in_flight": True}, GuardAction.WAIT),  # its cancel is on its way
        ({"in_flight": True, "stop_working": False}, GuardAction.WAIT),  # an answer is on its way
        ({"closing": True}, GuardAction.CLOSE),  # a refused dynamic exit or flatten: again, even with a stop
        ({"closing": True, "stop_working": False}, GuardAction.CLOSE),  # a refused stop, then a refused close
        ({"stop_working": False}, GuardAction.PLACE_STOP),
        ({"stop_working": False, "stop_through_market": True}, GuardAction.CLOSE),  # the stop would fire at once
        ({"stale": 1}, GuardAction.CANCEL_STALE),  # a refused cancel of the stop being replaced
        ({"stale": 1, "stop_working": False}, GuardAction.PLACE_STOP),  # the new stop first
        ({"targets_missing": True}, GuardAction.PLACE_TARGETS),  # a refused take-profit
        ({"targets_missing": True, "stale": 1}, GuardAction.CANCEL_STALE),  # the stops come first
        ({"targets_missing": True, "closing": True}, GuardAction.CLOSE),
    ],
)
def test_guard_action(changes: dict[str, Any], action: GuardAction) -> None:
    """Catches: a trade left as it is while its position has no stop, two stops, or a close that did not happen;
    a second order sent while the first one's answer is on its way."""
    assert guard_action(view(**changes)) == action


def test_retry_policy_waits_then_keeps_going_slowly_and_alerts() -> None:
    """Catches: retries without a wait (a ban made longer), a bound after which nothing is tried any more, and
    an alert missing (or sent for every failure)."""
    policy = RetryPolicy(delays_s=(0.5, 1.0, 2.0), slow_s=30.0, alert_every=4)
    assert [policy.delay_s(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 30.0, 30.0, 30.0]
    assert [n for n in range(1, 16) if policy.alert_due(n)] == [3, 7, 11, 15]
    assert not policy.exhausted(2) and policy.exhausted(3) and policy.exhausted(50)


def test_retry_waits_for_the_end_of_a_ban() -> None:
    """Catches: tries sent during a ban the refusal named (each refused, and Binance bans longer)."""
    policy = RetryPolicy(delays_s=(0.5, 1.0, 2.0), slow_s=30.0)
    assert banned_until_ms(BANNED) == 1_796_128_980_210 and banned_until_ms(REFUSED) is None
    assert policy.wait_s(1, BANNED, now_ms=1_796_128_970_210) == pytest.approx(10.0 + BAN_MARGIN_S)
    assert policy.wait_s(4, BANNED, now_ms=1_796_128_970_210) == 30.0  # the slow pace is longer still
    assert policy.wait_s(2, BANNED, now_ms=1_796_128_990_000) == 1.0  # the ban is over
    assert policy.wait_s(1, REFUSED, now_ms=0) == 0.5
