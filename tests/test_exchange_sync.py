"""Plain decisions of the exchange sync and the restart recovery: what to repair, what happened while down, the
check pace, and the invariants the simulator tests check. No engine, no exchange."""

from decimal import Decimal
from pathlib import Path

import pytest

from nodes.live.config import check_intervals
from nodes.live.recovery import day_start_equity, fill_kind
from nodes.live.stream_watch import GapDetector
from simulator.invariants import WorkingOrder, check_orders, divergence
from strategies.audit import OrderView, RepairKind, SymbolView, TradeView, plan_repairs
from strategies.downtime import FILL_ENTRY, FILL_MARKET, FILL_STOP, FILL_TARGET, ExchangeFill, downtime_outcome
from strategies.memory import TradeMemo, decode, encode, load

STOP = OrderView("sl", reduce_only=True, is_stop=True, quantity=1.0, trigger=95.0)
TP2 = OrderView("tp2", reduce_only=True, is_stop=False, quantity=0.5)


def kinds(view: SymbolView) -> list[RepairKind]:
    return [r.kind for r in plan_repairs(view)]


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_a_protected_position_needs_nothing_on_either_side(side: float) -> None:
    direction = "LONG" if side > 0 else "SHORT"
    view = SymbolView("X", side, TradeView(direction, 1.0, False, "sl"), (STOP, TP2))
    assert plan_repairs(view) == []


def test_a_trade_without_position_is_a_ghost_and_its_exits_are_orphans() -> None:
    [ghost, orphans] = plan_repairs(SymbolView("X", 0.0, TradeView("LONG", 1.0, False, "sl"), (STOP, TP2)))
    assert ghost.kind == RepairKind.GHOST and orphans.kind == RepairKind.ORPHANS
    assert orphans.cancel == ("sl", "tp2")


def test_reduce_only_orders_of_a_flat_symbol_are_cancelled_and_entries_kept() -> None:
    entry = OrderView("entry", reduce_only=False, is_stop=False, quantity=1.0)
    [orphans] = plan_repairs(SymbolView("X", 0.0, None, (entry, STOP)))
    assert orphans.cancel == ("sl",)


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_a_position_without_a_trade_is_adopted(side: float) -> None:
    assert kinds(SymbolView("X", side, None, (STOP,))) == [RepairKind.ADOPT]
    flipped = TradeView("SHORT" if side > 0 else "LONG", 1.0, False, "sl")
    assert kinds(SymbolView("X", side, flipped, ())) == [RepairKind.GHOST, RepairKind.ADOPT]


def test_no_stop_is_rearmed() -> None:
    assert kinds(SymbolView("X", -1.0, TradeView("SHORT", 1.0, False, None), (TP2,))) == [RepairKind.REARM]


@pytest.mark.parametrize("side", [0.5, -0.5])
def test_a_position_smaller_than_its_entry_had_tp1_fill_unseen(side: float) -> None:
    direction = "LONG" if side > 0 else "SHORT"
    [repair] = plan_repairs(SymbolView("X", side, TradeView(direction, 1.0, False, "sl"), (STOP, TP2)))
    assert repair.kind == RepairKind.TP1_MISSED and repair.cancel == ("sl",)
    # once TP1 is known done, a stop for the whole is only resized
    [resize] = plan_repairs(SymbolView("X", side, TradeView(direction, 1.0, True, "sl"), (STOP, TP2)))
    assert resize.kind == RepairKind.RESIZE_STOP and resize.keep_stop == "sl"


def test_one_stop_per_position_keeps_the_trades_own() -> None:
    other = OrderView("old", reduce_only=True, is_stop=True, quantity=1.0, trigger=94.0)
    [extra] = plan_repairs(SymbolView("X", 1.0, TradeView("LONG", 1.0, False, "sl"), (other, STOP)))
    assert extra.kind == RepairKind.EXTRA_STOPS and extra.cancel == ("old",) and extra.keep_stop == "sl"
    # without a known stop: the one that covers the position
    half = OrderView("half", reduce_only=True, is_stop=True, quantity=0.5)
    [extra] = plan_repairs(SymbolView("X", 1.0, TradeView("LONG", 1.0, False, None), (half, STOP)))
    assert extra.keep_stop == "sl" and extra.cancel == ("half",)


def test_nothing_is_decided_while_orders_are_in_flight() -> None:
    assert plan_repairs(SymbolView("X", 0.0, TradeView("LONG", 1.0, False, "sl"), (STOP,), busy=True)) == []


def fill(side: str, qty: float, price: float, kind: str, t: int, pnl: float = 0.0, fee: float = 0.1) -> ExchangeFill:
    return ExchangeFill(
        instrument="X", order_id=str(t), side=side, quantity=qty, price=price, realized_pnl=pnl, commission=fee,
        time_ms=t, kind=kind,
    )  # fmt: skip


def test_a_long_closed_by_tp1_then_tp2_while_down() -> None:
    fills = [
        fill("BUY", 1.0, 100.0, FILL_ENTRY, 10),
        fill("SELL", 0.5, 102.0, FILL_TARGET, 20, pnl=1.0),
        fill("SELL", 0.5, 104.0, FILL_TARGET, 30, pnl=2.0),
    ]
    out = downtime_outcome("LONG", 1.0, 10, fills)
    assert out.closed and out.tp1_filled and out.reason == "TP1+TP2"
    assert out.exit_price == pytest.approx(103.0) and out.exit_time_ns == 30_000_000
    assert out.realized_pnl == pytest.approx(3.0 - 0.3) and out.commissions == pytest.approx(0.3)


def test_a_short_stopped_after_tp1_is_a_breakeven_exit_and_earlier_fills_do_not_count() -> None:
    fills = [
        fill("BUY", 2.0, 90.0, FILL_ENTRY, 1),  # an earlier trade of the symbol
        fill("SELL", 1.0, 100.0, FILL_ENTRY, 10),
        fill("BUY", 0.5, 98.0, FILL_TARGET, 20, pnl=1.0),
        fill("BUY", 0.5, 100.0, FILL_STOP, 30, pnl=0.0),
    ]
    out = downtime_outcome("SHORT", 1.0, 10, fills)
    assert out.closed and out.reason == "TP1+BREAKEVEN" and out.last_kind == FILL_STOP
    stopped = downtime_outcome("SHORT", 1.0, 10, [fills[1], fill("BUY", 1.0, 101.0, FILL_STOP, 30, pnl=-1.0)])
    assert stopped.reason == "STOP" and not stopped.tp1_filled and stopped.realized_pnl == pytest.approx(-1.2)


def test_a_close_at_market_while_down_is_a_flatten() -> None:
    fills = [fill("BUY", 1.0, 100.0, FILL_ENTRY, 10), fill("SELL", 1.0, 99.0, FILL_MARKET, 20, pnl=-1.0)]
    assert downtime_outcome("LONG", 1.0, 10, fills).reason == "FLATTEN"


def test_an_open_trade_with_tp1_filled_is_not_closed() -> None:
    fills = [fill("BUY", 1.0, 100.0, FILL_ENTRY, 10), fill("SELL", 0.5, 102.0, FILL_TARGET, 20, pnl=1.0)]
    out = downtime_outcome("LONG", 1.0, 10, fills)
    assert not out.closed and out.tp1_filled


def test_what_made_a_fill() -> None:
    assert fill_kind({"origType": "LIMIT", "type": "LIMIT", "reduceOnly": True}, None) == FILL_TARGET
    assert fill_kind({"origType": "MARKET", "type": "MARKET", "reduceOnly": False}, None) == FILL_ENTRY
    assert fill_kind({"origType": "STOP_MARKET", "type": "MARKET", "reduceOnly": True}, None) == FILL_STOP
    assert fill_kind(None, "STOP_MARKET") == FILL_STOP and fill_kind(None, "TAKE_PROFIT_MARKET") == FILL_TARGET
    assert fill_kind({"clientOrderId": "autoclose-1", "type": "LIMIT", "reduceOnly": True}, None) == "LIQUIDATION"


def test_the_day_starts_from_the_wallet_minus_the_days_trading_income() -> None:
    rows = [
        {"incomeType": "REALIZED_PNL", "income": "-40.5"},
        {"incomeType": "COMMISSION", "income": "-4.5"},
        {"incomeType": "FUNDING_FEE", "income": "1.0"},
        {"incomeType": "TRANSFER", "income": "500"},  # a deposit is no profit
    ]
    assert day_start_equity(10_456.0, rows) == pytest.approx(10_500.0)


def test_check_intervals_spend_the_weight_budget() -> None:
    pace = check_intervals(30)
    assert pace.positions_s == 20.0 and pace.open_orders_s == 340.0  # 30 a minute; the default is 12
    assert 60 / pace.positions_s * 5 + 60 / pace.open_orders_s * 85 == pytest.approx(30)


def test_trade_memory_round_trip_and_a_broken_file(tmp_path: Path) -> None:
    memo = TradeMemo("BTCUSDT-PERP.BINANCE", "LONG", 100.0, 1.5, 7, True, 82.0, 5, -0.3, {"entry": 100.0})
    assert decode(encode([memo], 9)) == (9, [memo])
    assert load(tmp_path / "none.json") == (0, [])
    broken = tmp_path / "m.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="move it away"):
        load(broken)


def order(symbol: str, side: str, kind: str, qty: str, price: str = "1", reduce_only: bool = True) -> WorkingOrder:
    return WorkingOrder(symbol, side, kind, Decimal(qty), Decimal(price), reduce_only)


def test_exchange_invariants() -> None:
    positions = {"BTC": Decimal("0.5"), "ETH": Decimal("-2")}
    good = [order("BTC", "SELL", "STOP_MARKET", "0.5"), order("ETH", "BUY", "STOP_MARKET", "2")]
    assert check_orders(positions, good) == []
    bad = [
        order("BTC", "SELL", "STOP_MARKET", "1"),  # the stop of the whole after TP1
        order("ETH", "BUY", "STOP_MARKET", "2"),
        order("ETH", "BUY", "STOP_MARKET", "2", price="2"),
        order("SOL", "SELL", "STOP_MARKET", "3"),  # an orphan
        order("SOL", "BUY", "LIMIT", "1", reduce_only=False),
        order("SOL", "BUY", "LIMIT", "1", reduce_only=False),  # the same order twice
    ]
    problems = {(p.kind, p.symbol) for p in check_orders(positions, bad)}
    assert problems == {("stop_quantity", "BTC"), ("several_stops", "ETH"), ("orphan", "SOL"), ("duplicate", "SOL")}
    assert {(p.kind, p.symbol) for p in check_orders({"BNB": Decimal(1)}, [])} == {("no_stop", "BNB")}
    assert [p.symbol for p in divergence({"BTC": Decimal(1)}, {"BTC": Decimal(1), "SUI": Decimal(3)})] == ["SUI"]


def test_a_pause_in_market_data_is_a_gap_once_the_data_is_back() -> None:
    gaps = GapDetector(gap_s=10)
    assert gaps.seen(0.0) is None and gaps.seen(1.0) is None  # data every second
    assert not gaps.tick(5.0) and gaps.tick(11.5) and not gaps.tick(12.5)  # noticed once
    assert gaps.seen(14.0) == pytest.approx(13.0)  # back: the gap it ends
    assert gaps.seen(15.0) is None
    assert gaps.seen(40.0) == pytest.approx(25.0)  # a gap no tick saw is still one


def test_a_counter_that_stops_moving_is_a_gap_once_it_moves_again() -> None:
    # The live node's watch reads its data engine's count at each tick instead of handling every message.
    gaps = GapDetector(gap_s=10)
    assert gaps.counted(0.0, 500) == (False, None)  # takes the count
    assert gaps.counted(1.0, 800) == (False, None)  # data came
    assert gaps.counted(5.0, 800) == (False, None)  # quiet, not yet a gap
    assert gaps.counted(12.0, 800) == (True, None)  # noticed once
    assert gaps.counted(13.0, 800) == (False, None)
    began, ended = gaps.counted(16.0, 801)  # back: the gap it ends
    assert not began and ended == pytest.approx(15.0)
    assert gaps.counted(17.0, 1400) == (False, None)
