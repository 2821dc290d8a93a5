"""The matching engine and account on hand-made price moves: fills, fees, PnL, triggers on last and mark
price, gaps, reduce-only, isolated margin, funding, and the order of the user-stream events."""

from decimal import Decimal
from typing import Any

import pytest

from catalog.instruments import binance_perpetual
from simulator.errors import BinanceApiError
from simulator.exchange import ALGO_REPORT_DELAYS_S, Exchange
from simulator.instruments import spec_from_instrument
from simulator.market import Kline, Step
from simulator.marketstate import FundingSchedule, SymbolMarket
from simulator.series import bar_ticks

D = Decimal
SPEC = spec_from_instrument(binance_perpetual("BTCUSDT"))  # tick 0.1, step 0.001, maker 0.02 %, taker 0.05 %


def kline(o: str, h: str, low: str, c: str, open_time: int = 0) -> Kline:
    return Kline(
        "BTCUSDT",
        "1m",
        open_time,
        open_time + 59_999,
        D(o),
        D(h),
        D(low),
        D(c),
        D(10),
        D(1_000_000),
        100,
        D(5),
        D(500_000),
    )


class Harness:
    def __init__(self, price: str = "100000.0") -> None:
        self.market = SymbolMarket(SPEC, FundingSchedule())
        self.market.prime(kline(price, price, price, price))
        self.events: list[dict[str, Any]] = []
        self.delayed: list[tuple[float, dict[str, Any]]] = []
        self.ex = Exchange(
            {"BTCUSDT": SPEC},
            {"BTCUSDT": self.market},
            D(10_000),
            lambda: 1_000,
            self.events.append,
            20,
            lambda e, d: self.delayed.append((d, e)),
        )

    def order(self, **params: str) -> dict[str, Any]:
        return self.ex.new_order({"symbol": "BTCUSDT", **params})

    def algo(self, **params: str) -> dict[str, Any]:
        return self.ex.new_algo_order({"symbol": "BTCUSDT", "algoType": "CONDITIONAL", **params})

    def move(self, start: str, end: str, mark_end: str | None = None) -> None:
        """One replay segment from ``start`` to ``end``; the mark goes where ``mark_end`` says (else follows)."""
        k = kline(start, max(start, end, key=D), min(start, end, key=D), end)
        step = Step("BTCUSDT", k, 1, D(start), D(end), 30_000)
        mark_before = self.market.mark
        self.market.apply(step)
        if mark_end is not None:
            self.market.mark = D(mark_end)
        self.ex.on_step(step, mark_before, self.market.mark)

    def kinds(self) -> list[str]:
        return [e["e"] + ":" + (e["o"].get("x") or e["o"].get("X")) if "o" in e else e["e"] for e in self.events]


def test_market_round_trip_pnl_and_taker_fees() -> None:
    h = Harness()
    h.order(side="BUY", type="MARKET", quantity="0.010")  # takes the ask: 100000.1
    h.move("100000.0", "101000.0")
    h.order(side="SELL", type="MARKET", quantity="0.010")  # hits the bid: 101000.0
    pnl = D("0.010") * (D("101000.0") - D("100000.1"))
    fees = D("0.010") * (D("100000.1") + D("101000.0")) * D("0.0005")
    assert h.ex.wallet == D(10_000) + pnl - fees
    assert h.ex.positions["BTCUSDT"].amount == 0
    trades = h.ex.user_trades({"symbol": "BTCUSDT"})
    assert [t["maker"] for t in trades] == [False, False]
    assert D(trades[1]["realizedPnl"]) == pnl
    assert h.kinds() == ["ORDER_TRADE_UPDATE:NEW", "ORDER_TRADE_UPDATE:TRADE", "ACCOUNT_UPDATE"] * 2


def test_resting_limit_fills_at_its_price_as_maker() -> None:
    h = Harness()
    h.order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010", price="99500.0")
    h.move("100000.0", "99600.0")
    assert h.ex.positions["BTCUSDT"].amount == 0
    h.move("99600.0", "99000.0")
    pos = h.ex.positions["BTCUSDT"]
    assert (pos.amount, pos.entry_price) == (D("0.010"), D("99500.0"))
    assert h.ex.trades[-1].maker and h.ex.trades[-1].commission == D("0.010") * D("99500.0") * D("0.0002")


def test_post_only_that_would_take_is_expired() -> None:
    h = Harness()
    h.order(side="BUY", type="LIMIT", timeInForce="GTX", quantity="0.010", price="100500.0")
    assert h.kinds() == ["ORDER_TRADE_UPDATE:NEW", "ORDER_TRADE_UPDATE:EXPIRED"]
    assert h.ex.positions["BTCUSDT"].amount == 0


def test_stop_market_event_sequence_and_fill_at_trigger() -> None:
    h = Harness()
    h.order(side="BUY", type="MARKET", quantity="0.010")
    h.events.clear()
    h.algo(
        side="SELL",
        type="STOP_MARKET",
        quantity="0.010",
        triggerPrice="99000.0",
        reduceOnly="true",
        clientAlgoId="sl-1",
    )
    h.move("100000.0", "98500.0")
    assert h.kinds() == [
        "ALGO_UPDATE:NEW",
        "ALGO_UPDATE:TRIGGERING",
        "ORDER_TRADE_UPDATE:NEW",
        "ORDER_TRADE_UPDATE:TRADE",
        "ACCOUNT_UPDATE",
    ]
    child = h.events[2]["o"]
    assert child["c"] == "sl-1" and child["ot"] == "STOP_MARKET" and child["o"] == "MARKET"
    assert h.events[3]["o"]["L"] == "99000.0"
    assert [(d, e["o"]["X"]) for d, e in h.delayed] == [
        (ALGO_REPORT_DELAYS_S[0], "TRIGGERED"),
        (ALGO_REPORT_DELAYS_S[1], "FINISHED"),
    ]
    finished = h.delayed[1][1]["o"]
    assert finished["ai"] == str(child["i"]) and finished["aq"] == "0.010" and finished["ap"] == "99000.0"
    assert h.ex.positions["BTCUSDT"].amount == 0


def test_stop_fills_at_the_open_after_a_gap() -> None:
    h = Harness()
    h.order(side="BUY", type="MARKET", quantity="0.010")
    h.algo(side="SELL", type="STOP_MARKET", quantity="0.010", triggerPrice="99000.0", reduceOnly="true")
    h.move("98000.0", "98000.0")  # the next bar opens below the stop
    assert h.ex.trades[-1].price == D("98000.0")


def test_mark_price_trigger_ignores_the_last_price() -> None:
    h = Harness()
    h.order(side="BUY", type="MARKET", quantity="0.010")
    h.algo(
        side="SELL",
        type="TAKE_PROFIT_MARKET",
        quantity="0.010",
        triggerPrice="101000.0",
        reduceOnly="true",
        workingType="MARK_PRICE",
    )
    h.move("100000.0", "101500.0", mark_end="100800.0")
    assert h.ex.positions["BTCUSDT"].amount == D("0.010")
    h.move("101500.0", "101500.0", mark_end="101200.0")
    assert h.ex.positions["BTCUSDT"].amount == 0
    assert h.ex.trades[-1].price == D("101000.0")


def test_reduce_only_conditional_with_nothing_to_reduce_expires() -> None:
    h = Harness()
    h.order(side="BUY", type="MARKET", quantity="0.010")
    h.algo(side="SELL", type="STOP_MARKET", quantity="0.010", triggerPrice="99000.0", reduceOnly="true")
    h.order(side="SELL", type="MARKET", quantity="0.010")  # flat before the stop fires
    h.move("100000.0", "98000.0")
    last = h.events[-1]
    assert last["e"] == "ALGO_UPDATE" and last["o"]["X"] == "EXPIRED" and last["o"]["rm"] == "Reduce Only reject"
    assert h.ex.positions["BTCUSDT"].amount == 0


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010", "price": "99000.05"}, -1111),
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.0105", "price": "99000.0"}, -1111),
        ({"side": "BUY", "type": "MARKET", "quantity": "0.0001"}, -1111),
        ({"side": "BUY", "type": "MARKET", "quantity": "0.000"}, -4003),
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001", "price": "50000.0"}, -4164),
        ({"side": "SELL", "type": "MARKET", "quantity": "0.010", "reduceOnly": "true"}, -2022),
        ({"side": "BUY", "type": "MARKET", "quantity": "5.000"}, -2019),  # 500k notional on 10k at 20x
        ({"side": "BUY", "type": "STOP_MARKET", "quantity": "0.010"}, -4120),
        ({"side": "BUY", "type": "MARKET", "quantity": "0.010", "positionSide": "LONG"}, -4061),
        ({"side": "BUY", "type": "LIMIT", "quantity": "0.010", "price": "99000.0"}, -1102),
        ({"side": "HOLD", "type": "MARKET", "quantity": "0.010"}, -1117),
    ],
)
def test_order_checks_use_binance_codes(params: dict[str, str], code: int) -> None:
    with pytest.raises(BinanceApiError) as raised:
        Harness().order(**params)
    assert raised.value.code == code


def test_conditional_that_would_trigger_at_once_is_rejected() -> None:
    with pytest.raises(BinanceApiError) as raised:
        Harness().algo(side="SELL", type="STOP_MARKET", quantity="0.010", triggerPrice="100100.0")
    assert raised.value.code == -2021


def test_isolated_margin_and_leverage() -> None:
    h = Harness()
    h.ex.set_leverage({"symbol": "BTCUSDT", "leverage": "5"})
    h.ex.set_margin_type({"symbol": "BTCUSDT", "marginType": "ISOLATED"})
    h.order(side="BUY", type="MARKET", quantity="0.100")  # notional 10000.01 at 5x
    pos = h.ex.positions["BTCUSDT"]
    assert pos.isolated_wallet == D("0.100") * D("100000.1") / 5
    account = h.ex.account_v2()
    assert D(account["availableBalance"]) == h.ex.wallet - pos.isolated_wallet
    with pytest.raises(BinanceApiError) as raised:
        h.ex.set_margin_type({"symbol": "BTCUSDT", "marginType": "CROSSED"})
    assert raised.value.code == -4048
    with pytest.raises(BinanceApiError) as raised:
        h.order(side="BUY", type="MARKET", quantity="0.400")  # needs 8000 more margin, ~8000 left minus fees
    assert raised.value.code == -2019
    risk = h.ex.position_risk({"symbol": "BTCUSDT"})[0]
    assert D(risk["isolatedWallet"]) == pos.isolated_wallet and risk["positionAmt"] == "0.100"


def test_funding_is_paid_by_longs_when_the_rate_is_positive() -> None:
    h = Harness()
    h.order(side="BUY", type="MARKET", quantity="0.010")
    before = h.ex.wallet
    paid = h.ex.settle_funding("BTCUSDT", D("0.0001"), 2_000)
    assert paid == -D("0.010") * h.market.mark * D("0.0001")
    assert h.ex.wallet == before + paid
    assert h.events[-1]["a"]["m"] == "FUNDING_FEE"


def test_replay_path_and_funding_schedule() -> None:
    up = kline("100", "110", "95", "105")
    steps = bar_ticks([up]) + bar_ticks([kline("104", "106", "90", "91", 60_000)])
    assert [(s.start, s.end) for s in steps[0] + steps[1] + steps[2] + steps[3]] == [
        (D(100), D(100)),
        (D(100), D(95)),
        (D(95), D(110)),
        (D(110), D(105)),
    ]
    assert [s.end for s in (steps[5][0], steps[6][0])] == [D(106), D(90)]  # a down bar visits its high first
    assert steps[3][0].ts_ms == 59_999 and steps[3][0].closes_bar
    schedule = FundingSchedule([(28_800_004, D("0.0003"))])
    assert schedule.next_time(0) == 28_800_000 and schedule.rate_at(28_800_000) == D("0.0003")
    assert schedule.next_time(28_800_000) == 57_600_000


def test_isolated_position_is_liquidated_at_maintenance_margin() -> None:
    import json

    import msgspec
    from nautilus_trader.adapters.binance.futures.schemas.user import BinanceFuturesOrderUpdateMsg

    h = Harness()
    h.ex.set_margin_type({"symbol": "BTCUSDT", "marginType": "ISOLATED"})
    h.order(side="BUY", type="MARKET", quantity="0.100")  # 20x: about 500 USDT of isolated margin
    margin = h.ex.positions["BTCUSDT"].isolated_wallet
    wallet = h.ex.wallet
    h.move("100000.0", "96000.0")
    assert h.ex.positions["BTCUSDT"].amount == D("0.100") and not h.ex.liquidations  # mark lags: 98000
    for _ in range(4):
        h.move("96000.0", "94000.0")
    assert h.ex.positions["BTCUSDT"].amount == 0
    [liquidation] = h.ex.liquidations
    update = next(e for e in h.events if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "CALCULATED")
    decoded = msgspec.json.decode(json.dumps(update), type=BinanceFuturesOrderUpdateMsg)
    assert decoded.o.c.startswith("autoclose-") and decoded.o.X.value == "FILLED"
    assert update["o"]["i"] == liquidation.order_id and update["o"]["R"] is True
    # The isolated margin is gone, at most (the mark jumped past bankruptcy: no more is lost); the rest stays.
    assert wallet - margin <= h.ex.wallet < wallet - margin * D("0.9")
    assert liquidation.price >= D("95000.0")  # the bankruptcy price, not the lower mark


def test_cross_account_is_liquidated_when_equity_reaches_maintenance() -> None:
    h = Harness()
    h.ex.set_leverage({"symbol": "BTCUSDT", "leverage": "100"})
    h.order(side="BUY", type="MARKET", quantity="9.000")  # 900k notional on 10k: 1.1% down wipes the account
    h.move("100000.0", "99500.0")
    assert not h.ex.liquidations
    for _ in range(6):
        h.move("99500.0", "98700.0")
    assert len(h.ex.liquidations) == 1 and h.ex.positions["BTCUSDT"].amount == 0
    assert h.ex.wallet >= 0


def test_margin_type_cannot_change_with_open_orders() -> None:
    h = Harness()
    h.order(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010", price="90000.0")
    with pytest.raises(BinanceApiError) as raised:
        h.ex.set_margin_type({"symbol": "BTCUSDT", "marginType": "ISOLATED"})
    assert raised.value.code == -4047
