"""The strategy's decisions as plain functions and small classes, without an engine: how a trade ended, an
order's role, when to scan, the day's rollover, which symbol a trader means."""

from nautilus_trader.common.component import TestClock
from nautilus_trader.common.factories import OrderFactory
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId, StrategyId, TraderId
from nautilus_trader.model.objects import Price, Quantity

from strategies.exits import ExitConfig, FactorInputs, breakeven_stop, exit_levels, rearm_stop
from strategies.market import resolve_symbol
from strategies.risk import NANOS_PER_DAY, DailyLossGuard
from strategies.scan import ScanClock, ScanConfig, ScanEntries, scan_time
from strategies.trade import (
    INTENT_DYNAMIC,
    INTENT_FLATTEN,
    INTENT_STOP,
    STOP_BREAKEVEN,
    STOP_DYNAMIC,
    TAG_EXIT,
    TAG_FLATTEN,
    TAG_SL,
    TAG_TP1,
    TAG_TP2,
    Trade,
    ending,
    entry_side,
    exit_side,
    order_role,
    parse_direction,
)

BTC = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
ETH = InstrumentId.from_str("ETHUSDT-PERP.BINANCE")
MINUTE = 60_000_000_000


def trade(**fields: object) -> Trade:
    levels = exit_levels(100.0, "LONG", FactorInputs(strength=70))
    t = Trade(BTC, "LONG", 70.0, 30.0, 3, FactorInputs(strength=70), None, levels, levels=levels, entry=100.0)
    for key, value in fields.items():
        setattr(t, key, value)
    return t


def test_how_a_trade_ended_from_the_closing_order() -> None:
    assert (ending(TAG_SL, trade()).reason, ending(TAG_SL, trade()).counter) == ("STOP", "stops")
    assert ending(TAG_SL, trade(tp1_done=True, stop_kind=STOP_BREAKEVEN)).reason == "TP1+BREAKEVEN"
    assert ending(TAG_SL, trade(stop_kind=STOP_DYNAMIC)).reason == "DYNAMIC"
    # our market close standing in for a stop the venue refused counts as the stop
    stand_in = ending(TAG_EXIT, trade(exit_intent=INTENT_STOP))
    assert (stand_in.reason, stand_in.counter, stand_in.notice) == ("STOP", "stops", "STOP")
    # TP2 after TP1; a TP1 that took the whole (unsplittable) position counts as TP1
    tp2 = ending(TAG_TP2, trade(tp1_done=True))
    assert (tp2.reason, tp2.counter, tp2.notice, tp2.tp1_done) == ("TP1+TP2", "tp2", "TP2", True)
    whole = ending(TAG_TP1, trade())
    assert (whole.reason, whole.counter, whole.notice, whole.tp1_done) == ("TP1+TP2", "tp1", "TP1", True)
    assert ending(TAG_FLATTEN, trade()).reason == "FLATTEN"
    assert ending("", trade(exit_intent=INTENT_FLATTEN)).reason == "FLATTEN"
    dynamic = ending(TAG_EXIT, trade(exit_intent=INTENT_DYNAMIC))
    assert (dynamic.reason, dynamic.counter, dynamic.notice) == ("DYNAMIC", "", "")
    assert ending("", trade()).reason == "STOP"  # closed outside the strategy


def test_order_role_by_tag_or_by_the_adopted_trade() -> None:
    factory = OrderFactory(TraderId("T-001"), StrategyId("S-001"), TestClock())
    qty, px = Quantity.from_str("1"), Price.from_str("99")
    tagged = factory.stop_market(BTC, OrderSide.SELL, qty, px, reduce_only=True, tags=[TAG_SL])
    untagged_stop = factory.stop_market(BTC, OrderSide.SELL, qty, px, reduce_only=True)
    untagged_tp = factory.limit(BTC, OrderSide.SELL, qty, Price.from_str("104"), reduce_only=True)
    old_stop = factory.stop_market(BTC, OrderSide.SELL, qty, px, reduce_only=True)
    t = trade(stop_id=untagged_stop.client_order_id, tp1_id=untagged_tp.client_order_id)
    t.replaced_stops.append(old_stop.client_order_id)
    assert order_role(tagged, None) == TAG_SL
    assert order_role(untagged_stop, t) == TAG_SL
    assert order_role(old_stop, t) == TAG_SL
    assert order_role(untagged_tp, t) == TAG_TP1
    assert order_role(untagged_tp, None) == ""


def test_one_producer_of_stop_prices() -> None:
    levels = exit_levels(100.0, "SHORT", FactorInputs(strength=50), ExitConfig())
    assert levels.stop == 102.0
    assert breakeven_stop(levels) == 100.0
    assert rearm_stop(levels, tp1_done=False) == 102.0 and rearm_stop(levels, tp1_done=True) == 100.0


def test_scan_clock_waits_for_every_symbol_or_the_grace_alert() -> None:
    clock = ScanClock(ScanConfig(interval_minutes=5), symbols=2)
    t0 = 1_700_006_400_000_000_000
    assert clock.on_bar(BTC, t0 + MINUTE) is None  # not a scan time
    first = clock.on_bar(BTC, t0 + 5 * MINUTE - 1_000_000)  # a live kline stamp, 1 ms before the close
    assert first is not None and first.ts == t0 + 5 * MINUTE and first.new_scan_time and not first.scan_now
    assert clock.grace_deadline(first.ts) == first.ts + 3_000_000_000
    second = clock.on_bar(ETH, t0 + 5 * MINUTE)
    assert second is not None and second.scan_now and not second.new_scan_time
    clock.scanned(second.ts)
    assert clock.overdue() is None and clock.on_bar(ETH, t0 + 5 * MINUTE) is None  # once per scan time
    # ETH's bar for the next scan time never comes: the grace alert finds it overdue
    assert not clock.on_bar(BTC, t0 + 10 * MINUTE).scan_now
    assert clock.overdue() == t0 + 10 * MINUTE
    assert scan_time(t0 + 10 * MINUTE - 1_000_000) == t0 + 10 * MINUTE


def test_scan_clock_quiet_stamps_are_the_bars_it_has_nothing_to_say_about() -> None:
    """The strategy's bar handler skips the scan clock and the day check for bars stamped in ``quiet_stamps``: each
    such stamp must get None from ``on_bar``, and the first stamp after them must be the next scan time's."""
    import copy

    t0 = 1_700_006_400_000_000_000  # a whole hour
    for interval, symbols, entries in ((5, 2, ScanEntries.EVERY_SCAN), (1, 1, ScanEntries.NONE),
                                       (60, 3, ScanEntries.FIRST_SCAN)):  # fmt: skip
        clock = ScanClock(ScanConfig(interval_minutes=interval, entries=entries), symbols=symbols)
        ids = [BTC, ETH, InstrumentId.from_str("SOLUSDT-PERP.BINANCE")][:symbols]
        quiet_seen = 0
        for minute in range(1, 3 * interval + 2):
            for k, instrument_id in enumerate(ids):
                stamp = t0 + minute * MINUTE - (1_000_000 if k % 2 else 0)  # live kline stamps end 1 ms early
                step = clock.on_bar(instrument_id, stamp)
                if step is not None and step.scan_now:
                    clock.scanned(step.ts)
                lo, hi = clock.quiet_stamps(scan_time(stamp))
                boundary = scan_time(stamp) % (interval * MINUTE) == 0
                if (entries == ScanEntries.FIRST_SCAN and not clock.scans) or (boundary and clock.overdue()):
                    assert lo >= hi, (interval, minute, k)  # its scan time still waits: every bar of it counts
                    continue
                quiet_seen += 1
                assert lo <= stamp < hi and scan_time(lo) == scan_time(stamp)
                assert hi == (scan_time(stamp) // (interval * MINUTE) + 1) * interval * MINUTE - 500_000_000
                for probe in (lo, stamp, (lo + hi) // 2, hi - 1):
                    assert copy.deepcopy(clock).on_bar(instrument_id, probe) is None, (interval, minute, probe)
                assert copy.deepcopy(clock).on_bar(ids[0], hi) is not None  # the next scan time begins at hi
        assert quiet_seen > 0


def test_scan_entries_every_first_or_none() -> None:
    def entries(mode: ScanEntries, scans: int) -> list[bool]:
        clock = ScanClock(ScanConfig(interval_minutes=1, entries=mode), symbols=1)
        out = []
        for i in range(scans):
            clock.scanned(i * MINUTE)
            out.append(clock.entries_allowed())
        return out

    assert entries(ScanEntries.EVERY_SCAN, 3) == [True, True, True]
    assert entries(ScanEntries.FIRST_SCAN, 3) == [True, False, False]
    assert entries(ScanEntries.NONE, 3) == [False, False, False]
    # FIRST_SCAN scans at the first bar after start, on the boundary or not
    once = ScanClock(ScanConfig(interval_minutes=60, entries=ScanEntries.FIRST_SCAN), symbols=1)
    assert once.on_bar(BTC, 7 * MINUTE).scan_now


def test_day_rollover_resets_the_daily_loss_and_the_trade_count() -> None:
    guard = DailyLossGuard(limit=100)
    day = 20_000 * NANOS_PER_DAY
    guard.observe(day, 1_000)
    guard.trades += 2
    assert guard.pnl(950) == -50 and not guard.new_day(day + NANOS_PER_DAY - 1)
    assert guard.observe(day + 1, 880) == "HIT" and "-120.00 USDT reached the limit 100" in guard.hit_message()
    assert guard.new_day(day + NANOS_PER_DAY)
    assert guard.observe(day + NANOS_PER_DAY, 880) == "RESET" and guard.trades == 0


def test_symbols_and_sides_a_trader_may_write() -> None:
    universe = [BTC, ETH]
    for symbol in ("btc", "BTCUSDT", "btcusdt-perp", "BTCUSDT-PERP.BINANCE"):
        assert resolve_symbol(symbol, universe) == BTC
    assert resolve_symbol("SOL", universe) is None
    assert [parse_direction(s) for s in ("long", "BUY", "Short", "sell", "up")] == [
        "LONG",
        "LONG",
        "SHORT",
        "SHORT",
        None,
    ]
    assert (entry_side("LONG"), exit_side("LONG")) == (OrderSide.BUY, OrderSide.SELL)
    assert (entry_side("SHORT"), exit_side("SHORT")) == (OrderSide.SELL, OrderSide.BUY)
