"""Scenario tests: hand-made bar paths through a real BacktestEngine.

Entries are forced through the real control endpoint (the manual signal the Telegram actor sends); the tests
assert on the engine's cache and on the published events. Every run carries the strict ``InvariantChecker``
(a working stop for every position at every order and position event) and must end without a violation.
"""

import pytest
from nautilus_trader.model.enums import OmsType, OrderStatus, OrderType

from strategies.ats import AtsStrategy
from strategies.events import (
    EntryFilledEvent,
    ExitEvent,
    PositionClosedEvent,
    RiskEvent,
    SignalEvent,
)
from strategies.trade import TAG_EXIT, TAG_SL, TAG_TP2
from tests.strategy_support import (
    MINUTE_NS,
    T0,
    Commander,
    CommanderConfig,
    EventRecorder,
    ScenarioRun,
    at,
    ats_config,
    invariant_checker,
    make_engine,
    path_bars,
    perp,
    ramp,
)
from tests.strategy_support import run_scenario as run

BTC = perp("BTCUSDT")
ETH = perp("ETHUSDT")
SOL = perp("SOLUSDT")
WIDE_EXITS = {"exits.stop_pct": 0.05, "exits.tp1_pct": 0.2, "exits.tp2_pct": 0.4}


def assert_no_orphans(r: ScenarioRun) -> None:
    open_orders = r.engine.cache.orders_open()
    assert open_orders == [], f"orphan orders: {open_orders}"


@pytest.mark.parametrize("oms", [OmsType.NETTING, OmsType.HEDGING])
def test_tp1_then_breakeven_then_stopped_at_entry(oms: OmsType) -> None:
    closes = [50_000.0] * 5 + ramp(50_000, 52_200, 8) + ramp(52_200, 49_500, 12)
    r = run({BTC: closes}, [(at(2), "signal", ("BTCUSDT", "long"))], oms=oms)
    assert r.replies() == [{"accepted": True, "reason": "entry sent", "instrument": str(BTC.id)}]
    (rec,) = r.strategy.ledger()
    assert rec["exit_reason"] == "TP1+BREAKEVEN" and rec["tp1_hit"]
    assert rec["entry_price"] == 50_000.0
    # 1 % of 100k over a 2 % stop wants 1 BTC: the 10k notional cap (less 0.5 % slippage room) makes it 0.199
    assert rec["quantity"] == pytest.approx(0.199)
    fills = r.engine.trader.generate_order_fills_report()
    stop_fills = fills[fills["type"] == "STOP_MARKET"]
    assert len(stop_fills) == 1 and float(stop_fills["avg_px"].iloc[0]) == 50_000.0
    assert float(stop_fills["quantity"].iloc[0]) == pytest.approx(0.1)  # TP1 closed 0.099
    kinds = [e.kind for e in r.events.of(ExitEvent)]
    assert kinds == ["TP1", "BREAKEVEN", "STOP"]
    assert r.events.of(ExitEvent, kind="BREAKEVEN")[0].new_stop == 50_000.0
    c = r.strategy.counters()["total"]
    assert (c["tp1"], c["breakeven"], c["stops"], c["tp2"]) == (1, 1, 1, 0)
    # +0.099 x 2000 at TP1, 0 at break-even, less commissions
    assert rec["realized_pnl"] == pytest.approx(0.099 * 2000 - rec["commissions"])
    (closed,) = r.events.of(PositionClosedEvent)
    assert closed.exit_reason == "TP1+BREAKEVEN" and closed.price_precision == BTC.price_precision
    assert_no_orphans(r)
    # the original stop was cancelled, never modified
    stops = [o for o in r.engine.cache.orders() if o.order_type == OrderType.STOP_MARKET]
    assert [o.status for o in stops] == [OrderStatus.CANCELED, OrderStatus.FILLED]
    assert all(o.is_reduce_only and TAG_SL in o.tags for o in stops)


def test_tp1_then_tp2_short() -> None:
    closes = [2_000.0] * 5 + ramp(2_000, 1_830, 20)
    r = run({ETH: closes}, [(at(2), "signal", ("ETH", "short"))])
    (rec,) = r.strategy.ledger()
    assert rec["exit_reason"] == "TP1+TP2" and rec["direction"] == "SHORT"
    assert [e.kind for e in r.events.of(ExitEvent)] == ["TP1", "BREAKEVEN", "TP2"]
    assert rec["exit_price"] == pytest.approx((1_920 + 1_840) / 2, abs=0.05)  # halves 2.487 / 2.488 ETH
    c = r.strategy.counters()["per_symbol"][str(ETH.id)]
    assert (c["tp1"], c["tp2"], c["stops"]) == (1, 1, 0)
    assert_no_orphans(r)
    (signal,) = r.events.of(SignalEvent)
    assert (signal.stop, signal.tp1, signal.tp2, signal.leverage) == (2_040.0, 1_920.0, 1_840.0, 3)
    assert signal.manual


def test_straight_stop() -> None:
    closes = [50_000.0] * 5 + ramp(50_000, 48_500, 10)
    r = run({BTC: closes}, [(at(2), "signal", ("BTCUSDT", "long"))])
    (rec,) = r.strategy.ledger()
    assert rec["exit_reason"] == "STOP" and not rec["tp1_hit"]
    assert rec["exit_price"] == 49_000.0
    assert rec["realized_pnl"] == pytest.approx(-0.199 * 1_000 - rec["commissions"])
    assert [e.kind for e in r.events.of(ExitEvent)] == ["STOP"]
    assert len(r.events.of(EntryFilledEvent)) == 1
    # both targets were cancelled when the stop closed the position
    tps = [o for o in r.engine.cache.orders() if o.order_type == OrderType.LIMIT]
    assert len(tps) == 2 and all(o.status == OrderStatus.CANCELED for o in tps)
    assert_no_orphans(r)


def test_refused_below_min_notional_with_reason() -> None:
    # 150 USDT equity: 1 % risk over a 1,000 USDT stop is 0.0015 BTC -> 0.001 on the step grid = 50 USDT < 100
    r = run({BTC: [50_000.0] * 6}, [(at(2), "signal", ("BTCUSDT", "long"))], balance=150.0)
    (reply,) = r.replies()
    assert not reply["accepted"] and "below the instrument minimum" in reply["reason"]
    (refusal,) = r.events.of(RiskEvent, kind="SIGNAL_REFUSED")
    assert refusal.instrument == str(BTC.id) and "minimum" in refusal.message
    assert r.engine.cache.orders() == []
    assert r.strategy.counters()["total"]["refused"] == 1


def test_max_positions() -> None:
    flat = [100.0] * 8
    paths = {BTC: [50_000.0] * 8, ETH: [2_000.0] * 8, SOL: flat}
    schedule = [
        (at(2), "signal", ("BTCUSDT", "long")),
        (at(2) + 1, "signal", ("ETHUSDT", "short")),
        (at(2) + 2, "signal", ("SOLUSDT", "long")),
    ]
    r = run(paths, schedule, settings={"risk.max_positions": 2})
    answers = r.replies()
    assert [a["accepted"] for a in answers] == [True, True, False]
    assert "max concurrent positions (2)" in answers[2]["reason"]
    assert len(r.engine.cache.positions_open()) == 2


def test_correlation_block_same_direction_only() -> None:
    # ETH follows BTC's returns exactly (x 1/25): correlation 1 > 0.8
    base = [50_000.0 * (1 + 0.002 * ((i * 7) % 5 - 2)) for i in range(20)]
    paths = {BTC: base, ETH: [p / 25 for p in base], SOL: [100.0 + (i % 3) for i in range(20)]}
    schedule = [
        (at(10), "signal", ("BTCUSDT", "long")),
        (at(10) + 1, "signal", ("ETHUSDT", "long")),
        (at(10) + 2, "signal", ("ETHUSDT", "short")),
    ]
    r = run(paths, schedule, settings=WIDE_EXITS)
    answers = r.replies()
    assert answers[0]["accepted"]
    assert not answers[1]["accepted"] and "correlate 1.00 > 0.8" in answers[1]["reason"]
    assert answers[2]["accepted"], answers[2]
    # a looser bound lets it through
    r2 = run(paths, schedule[:2], settings={**WIDE_EXITS, "risk.correlation_bound": 1.01})
    assert [a["accepted"] for a in r2.replies()] == [True, True]


def test_daily_limit_stops_entries_and_resumes_next_day() -> None:
    start = T0 - 30 * MINUTE_NS  # 23:30 UTC the day before
    closes = [50_000.0] * 5 + ramp(50_000, 48_800, 6) + [48_800.0] * 60
    schedule = [
        (at(2, start), "signal", ("BTCUSDT", "long")),  # stopped out: -200 USDT
        (at(15, start), "signal", ("BTCUSDT", "long")),  # same day: refused
        (at(40, start), "signal", ("BTCUSDT", "short")),  # 00:10 the next day: allowed again
    ]
    r = run({BTC: closes}, schedule, start=start, settings={"risk.daily_loss_limit_usdt": 150.0})
    answers = r.replies()
    assert answers[0]["accepted"]
    assert not answers[1]["accepted"] and "daily loss limit" in answers[1]["reason"]
    assert answers[2]["accepted"]
    (hit,) = r.events.of(RiskEvent, kind="DAILY_LOSS_LIMIT")
    assert hit.value <= -150.0 and hit.limit == 150.0
    assert len(r.events.of(RiskEvent, kind="DAILY_LIMIT_RESET")) == 1
    assert [rec["exit_reason"] for rec in r.strategy.ledger()] == ["STOP", "END_OF_DATA"]


def test_daily_limit_counts_the_open_loss() -> None:
    """Catches: daily PnL from the wallet only (the unrealised loss dropped). No trade has closed: the open long
    alone, 800 USDT under its entry, takes the day past the limit, and the next entry is refused."""
    closes = [50_000.0] * 5 + ramp(50_000, 49_200, 4) + [49_200.0] * 10  # the 49,000 stop is never reached
    schedule = [(at(2), "signal", ("BTCUSDT", "long")), (at(12), "signal", ("ETHUSDT", "long"))]
    paths = {BTC: closes, ETH: [2_000.0] * len(closes)}
    r = run(paths, schedule, settings={"risk.daily_loss_limit_usdt": 150.0})
    first, second = r.replies()
    assert first["accepted"]
    assert not second["accepted"] and "daily loss limit" in second["reason"]
    (hit,) = r.events.of(RiskEvent, kind="DAILY_LOSS_LIMIT")
    entry_fee = 0.199 * 50_000 * float(BTC.taker_fee)
    assert hit.value == pytest.approx(-0.199 * 800 - entry_fee)  # unrealised at the last close, and the fee
    assert hit.ts_event == at(12)
    (rec,) = r.strategy.ledger()
    assert rec["exit_reason"] == "END_OF_DATA" and r.strategy.records == []  # nothing realised but the fee


def test_dynamic_tighten_then_stopped_on_the_tightened_stop() -> None:
    # warm the factors on a gentle uptrend, go long, then a slow slide turns the score against the trade
    rise = [100.0 * (1 + 0.0004 * i + 0.0015 * ((i * 7) % 5 - 2) / 2) for i in range(120)]
    top = rise[-1]
    slide = [top * (1 - 0.0006 * i) for i in range(1, 60)]
    closes = rise + slide
    r = run(
        {SOL: closes},
        [(at(119), "signal", ("SOLUSDT", "long"))],
        settings={
            "scan.interval_minutes": 5,
            "dynamic.tighten_below": -15.0,
            "dynamic.exit_below": -101.0,
            "exits.stop_pct": 0.03,
        },
    )
    assert r.replies()[0]["accepted"]
    tighten = r.events.of(ExitEvent, kind="DYNAMIC_TIGHTEN")
    assert tighten, [e.kind for e in r.events.of(ExitEvent)]
    first_stop = top * 0.97
    assert tighten[0].new_stop > first_stop
    (rec,) = r.strategy.ledger()
    assert rec["exit_reason"] == "DYNAMIC"
    assert rec["exit_price"] > first_stop  # the tightened stop cut the loss
    assert r.strategy.counters()["total"]["dynamic"] == len(tighten)
    assert_no_orphans(r)


def test_control_commands_and_flatten() -> None:
    paths = {BTC: [50_000.0] * 10, ETH: [2_000.0] * 10}
    schedule = [
        (at(1), "signal", ("BTCUSDT", "long")),
        (at(1) + 1, "signal", ("ETHUSDT", "short")),
        (at(3), "positions", ()),
        (at(3) + 1, "balance", ()),
        (at(3) + 2, "pause", ()),
        (at(3) + 3, "signal", ("SOLUSDT", "long")),
        (at(4), "flatten", ()),
        (at(5), "status", ()),
        (at(5) + 1, "daily", ()),
        (at(5) + 2, "bogus", ()),
    ]
    r = run(paths, schedule)
    (positions,) = r.replies("positions")
    assert {p["instrument"] for p in positions["positions"]} == {str(BTC.id), str(ETH.id)}
    btc = next(p for p in positions["positions"] if p["instrument"] == str(BTC.id))
    assert (btc["stop"], btc["tp1"], btc["tp2"], btc["tp1_done"]) == (49_000.0, 52_000.0, 54_000.0, False)
    (balance,) = r.replies("balance")
    assert balance["currency"] == "USDT" and balance["free"] < balance["total"]
    assert r.replies("pause") == [{"paused": True}]
    (flatten,) = r.replies("flatten")
    assert sorted(flatten["closed"]) == sorted([str(BTC.id), str(ETH.id)])
    assert flatten["cancelled_orders"] == 6
    assert r.engine.cache.positions_open() == []
    assert_no_orphans(r)
    assert {rec["exit_reason"] for rec in r.strategy.ledger()} == {"FLATTEN"}
    (status,) = r.replies("status")
    assert status["paused"] and status["positions"] == []
    (daily,) = r.replies("daily")
    assert daily["trades"] == 2 and daily["total"] < 0  # fees only
    assert "error" in r.replies("bogus")[0]


@pytest.mark.parametrize("offset_ns", [0, -1_000_000])
def test_scan_once_per_scan_time_also_with_live_kline_stamps(offset_ns: int) -> None:
    # live klines are stamped close_time = open + 59.999 s; a symbol missing a bar must not block the scan
    engine = make_engine([BTC, ETH])
    btc = path_bars(BTC, [50_000.0] * 60, T0 + offset_ns)
    eth = [b for i, b in enumerate(path_bars(ETH, [2_000.0] * 60, T0 + offset_ns)) if i % 10 != 5]
    engine.add_data(btc + eth)
    strategy = AtsStrategy(ats_config([BTC, ETH], {"scan.interval_minutes": 5, "scan.entries": "NONE"}))
    engine.add_strategy(strategy)
    engine.run()
    assert strategy.errors == 0
    assert strategy.scans == 12  # minutes 0, 5, ..., 55: once each, ETH's missing bars at 5, 15, ... included


def test_scan_once_enters_only_at_the_first_scan() -> None:
    rise = [100.0 * (1 + 0.001 * i + 0.002 * ((i * 7) % 5 - 2) / 2) for i in range(150)]
    common = {"min_score": 10.0, "scan.interval_minutes": 5, "scan.entries": "EVERY_SCAN"}
    every = run({SOL: rise}, [], start=T0 + 2 * MINUTE_NS, settings=common)
    assert every.strategy.scans == 30 and every.events.of(SignalEvent)  # the data does produce signals
    once = run({SOL: rise}, [], start=T0 + 2 * MINUTE_NS, settings={**common, "scan.entries": "FIRST_SCAN"})
    # a first scan on the very first bar (factors still cold: nothing to enter), then management-only scans
    assert once.strategy.scans == 31
    assert once.events.of(SignalEvent) == []


def test_breakeven_stop_refused_by_the_venue_closes_the_position() -> None:
    """Catches: a refused break-even stop leaving the rest bare, or placed again although its trigger is
    already through the market. One bar touches TP1 and closes below the entry: the break-even stop would
    trigger at once and the venue rejects it; the strategy closes the rest at market, at once."""
    from nautilus_trader.model.enums import OrderStatus as S

    from tests.strategy_support import make_bars

    flat = [(50_000.0, 50_010.0, 49_990.0, 50_000.0)] * 5
    spike = [(50_000.0, 52_100.0, 49_700.0, 49_800.0)]
    after = [(49_800.0, 49_850.0, 49_750.0, 49_800.0)] * 5
    engine = make_engine([BTC])
    engine.add_data(make_bars(BTC, flat + spike + after, T0))
    strategy = AtsStrategy(ats_config([BTC], {"scan.entries": "NONE"}))
    recorder = EventRecorder()
    engine.add_actor(recorder)
    commander = Commander(CommanderConfig(schedule=((at(2), "signal", ("BTC", "long")),)))
    checker = invariant_checker([BTC])
    engine.add_actor(commander)
    engine.add_actor(checker)
    engine.add_strategy(strategy)
    engine.run()
    assert strategy.errors == 0
    # the initial stop kept working until the market close took the rest
    assert checker.violations == [] and checker.events_checked > 20
    stops = [o for o in engine.cache.orders() if o.order_type == OrderType.STOP_MARKET]
    assert [o.status for o in stops] == [S.CANCELED, S.REJECTED]  # not placed again: it cannot work
    assert [e.kind for e in recorder.of(ExitEvent)] == ["TP1", "BREAKEVEN", "STOP"]
    assert engine.cache.positions_open() == []
    (rec,) = strategy.ledger()
    assert rec["exit_reason"] == "TP1+BREAKEVEN" and rec["tp1_hit"]
    exits = [o for o in engine.cache.orders() if TAG_EXIT in o.tags]
    assert len(exits) == 1 and exits[0].status == S.FILLED and exits[0].avg_px == 49_800.0
    assert_no_orphans(ScenarioRun(engine, strategy, recorder, commander, checker))


def test_dynamic_trail_moves_tp2_out_at_most_max_trails_times() -> None:
    rise = [100.0 * (1 + 0.0008 * i + 0.0015 * ((i * 7) % 5 - 2) / 2) for i in range(200)]
    r = run(
        {SOL: rise},
        [(at(119), "signal", ("SOLUSDT", "long"))],
        settings={
            "scan.interval_minutes": 5,
            "dynamic.trail_above": 20.0,
            "exits.tp1_pct": 0.2,
            "exits.tp2_pct": 0.3,
        },
    )
    trails = r.events.of(ExitEvent, kind="DYNAMIC_TRAIL")
    assert len(trails) == 2  # dynamic_max_trails
    tp2 = [o for o in r.engine.cache.orders() if TAG_TP2 in o.tags]
    prices = sorted(o.price.as_double() for o in tp2)
    entry = r.strategy.ledger()[0]["entry_price"]
    # each trail pushes TP2 out by a quarter of its distance from the entry
    assert prices[1] == pytest.approx(prices[0] + (prices[0] - entry) * 0.25, abs=0.02)
    assert prices[2] == pytest.approx(prices[1] + (prices[1] - entry) * 0.25, abs=0.02)
    assert [o.status for o in sorted(tp2, key=lambda o: o.price.as_double())][:2] == [OrderStatus.CANCELED] * 2
    assert r.strategy.counters()["total"]["dynamic"] == 2
    assert r.strategy.ledger()[0]["exit_reason"] == "END_OF_DATA"


def test_dynamic_exit_at_market_when_the_score_turns_hard() -> None:
    rise = [100.0 * (1 + 0.0004 * i + 0.0015 * ((i * 7) % 5 - 2) / 2) for i in range(120)]
    slide = [rise[-1] * (1 - 0.0006 * i) for i in range(1, 60)]
    r = run(
        {SOL: rise + slide},
        [(at(119), "signal", ("SOLUSDT", "long"))],
        settings={"scan.interval_minutes": 5, "dynamic.exit_below": -15.0, "exits.stop_pct": 0.03},
    )
    assert [e.kind for e in r.events.of(ExitEvent)] == ["DYNAMIC_EXIT"]
    (rec,) = r.strategy.ledger()
    assert rec["exit_reason"] == "DYNAMIC"
    exits = [o for o in r.engine.cache.orders() if TAG_EXIT in o.tags]
    assert len(exits) == 1 and exits[0].is_reduce_only and exits[0].status == OrderStatus.FILLED
    (closed,) = r.events.of(PositionClosedEvent)
    assert closed.exit_reason == "DYNAMIC"
    assert_no_orphans(r)
