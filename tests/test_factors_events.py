"""Event-fed factors: B on real funding and mark prices, L on the real websocket book capture, O and Q on
explicit hand-computed series (no open-interest or liquidation data exists in ../shared/data)."""

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import BookOrder
from nautilus_trader.model.enums import BookType, OrderSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price, Quantity

from factors import reference
from factors.basis import rate_score
from factors.book import FactorBook, make_factors
from factors.config import FactorConfig
from factors.liquidations import LiquidationFactor
from factors.open_interest import OpenInterestFactor
from tests.factors_data import bars_frame, book_ticker_quote, load_bars

TOL = 1e-9
MIN = 60_000_000_000
HOUR = 60 * MIN
BTC = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")


# ------------------------------------------------------------------------------------------------ B


def test_rate_score_scale_points() -> None:
    assert rate_score(0.001) == pytest.approx(33.0)
    assert rate_score(0.002) == pytest.approx(100.0)
    assert rate_score(-0.002) == pytest.approx(-100.0)
    assert rate_score(0.01) == 100.0
    assert rate_score(0.0001) == pytest.approx(3.3)
    assert rate_score(0.0) == 0.0


def test_basis_funding_matches_reference_on_real_funding_and_marks(shared_data: Path) -> None:
    folder = shared_data / "ohlcv_2025-03_2025-06"
    bars = load_bars(folder / "BTCUSDT-1m.csv.gz", slice(0, 8000))
    frame = bars_frame(bars)
    lo, hi = frame["ts"].iloc[0], frame["ts"].iloc[-1]
    funding = pd.read_csv(folder / "BTCUSDT-funding_rate.csv.gz")
    funding = pd.DataFrame({"ts": funding["funding_time_ms"] * 1_000_000, "rate": funding["funding_rate"]})
    marks = pd.read_csv(folder / "BTCUSDT-mark-8h.csv.gz")
    # the mark at each 8h candle's open is a real mark-price observation
    marks = pd.DataFrame({"ts": marks["open_time_ms"] * 1_000_000, "mark": marks["open"]})
    funding = funding[(funding.ts >= lo) & (funding.ts <= hi)].reset_index(drop=True)
    marks = marks[(marks.ts >= lo) & (marks.ts <= hi)].reset_index(drop=True)
    assert len(funding) >= 10 and len(marks) >= 10

    book = FactorBook(FactorConfig(), [BTC])
    events = sorted(
        [(b.ts_event, 0, b) for b in bars]
        + [(int(t), 1, m) for t, m in zip(marks.ts, marks.mark, strict=True)]
        + [(int(t), 2, r) for t, r in zip(funding.ts, funding.rate, strict=True)],
        key=lambda e: (e[0], e[1]),
    )
    got: dict[int, float | None] = {}
    for ts, kind, item in events:
        if kind == 0:
            book.handle_bar(item)
        elif kind == 1:
            book.handle_mark_price(BTC, item, ts)
        else:
            book.handle_funding_rate(BTC, item, ts)
        got[ts] = book.factor_value(BTC, "B")
    inc = np.array([np.nan if got[t] is None else got[t] for t in frame["ts"]])
    ref = reference.basis_funding(frame, marks, funding, FactorConfig()).to_numpy()
    assert np.array_equal(np.isnan(inc), np.isnan(ref))
    live = ~np.isnan(ref)
    assert live.sum() > 4000
    assert np.abs(inc[live] - ref[live]).max() <= TOL
    assert len(np.unique(np.round(ref[live], 9))) >= 10


def test_basis_without_funding_is_not_available_and_says_why() -> None:
    b = make_factors(FactorConfig())["B"]
    b.update_last(100.0)
    b.update_mark(100.1)
    assert b.value is None and "funding" in (b.reason or "")
    b.update_funding(0.001)
    # funding 0.1% -> 33; premium (100.1 - 100)/100 = 0.1% -> 33; mean 33
    assert b.value == pytest.approx(33.0)


# ------------------------------------------------------------------------------------------------ O


def _oi_config() -> FactorConfig:
    return FactorConfig(oi_lookback_ns=2 * HOUR, oi_mean_ns=6 * HOUR, oi_stale_ns=HOUR)


def test_open_interest_quadrants_hand_computed() -> None:
    c = _oi_config()
    o = OpenInterestFactor(c.oi_lookback_ns, c.oi_mean_ns, c.oi_scale_pct, c.oi_weak, c.oi_extreme_ratio, c.oi_stale_ns)
    o.update_price(0, 100.0)
    o.update_oi(0, 1000.0)
    assert o.value is None and "warming up" in (o.reason or "")
    o.update_oi(2 * HOUR, 1050.0)  # +5% OI over 2h
    o.update_price(2 * HOUR, 110.0)  # price up
    # price up & OI up: +100 tanh(5/5); OI/mean = 1050/1025 < 1.5: no damping
    assert o.value == pytest.approx(100.0 * math.tanh(1.0), abs=1e-12)
    o.update_price(2 * HOUR + MIN, 90.0)  # price now below its value 2h ago (100): new shorts
    assert o.value == pytest.approx(-100.0 * math.tanh(1.0), abs=1e-12)
    o.update_oi(2 * HOUR + 2 * MIN, 950.0)  # OI -5% vs 1000: covering / liquidation, weak, follows price
    assert o.value == pytest.approx(-0.3 * 100.0 * math.tanh(1.0), abs=1e-12)
    o.update_price(3 * HOUR, 120.0)  # last OI 58 min ago: still live (stale after 1h)
    assert o.value is not None
    o.update_price(3 * HOUR + 3 * MIN, 121.0)  # last OI 61 min ago: stale
    assert o.value is None and "stale" in (o.reason or "")


def test_open_interest_extreme_damping_hand_computed() -> None:
    c = _oi_config()
    o = OpenInterestFactor(c.oi_lookback_ns, c.oi_mean_ns, c.oi_scale_pct, c.oi_weak, c.oi_extreme_ratio, c.oi_stale_ns)
    o.update_price(0, 100.0)
    o.update_oi(0, 1000.0)
    o.update_oi(HOUR, 1000.0)
    o.update_oi(2 * HOUR, 4000.0)
    o.update_price(2 * HOUR, 101.0)
    # dOI +300% -> mag 100 tanh(60); mean of (1000, 1000, 4000) = 2000; OI/mean = 2 -> excess 0.5 over 1.5
    # damp = 1 / (1 + 0.5 / 0.5) = 0.5
    assert o.value == pytest.approx(100.0 * math.tanh(60.0) * 0.5, abs=1e-12)


def test_open_interest_matches_reference_on_an_explicit_series() -> None:
    c = _oi_config()
    # An explicit, hand-written series (not market data: no OI exists in ../shared/data): prices every 10
    # minutes, OI every 30 minutes with a gap that makes it stale for a while.
    n = 80
    ts = np.arange(n) * 10 * MIN
    price = 100.0 + 5.0 * np.sin(np.arange(n) / 7.0)
    oi_ts = np.array([t for t in ts if t % (30 * MIN) == 0 and not (300 * MIN <= t <= 420 * MIN)])
    oi = 1000.0 * (1.0 + 0.3 * np.cos(oi_ts / (90 * MIN)))
    book = FactorBook(c, [BTC])
    ind = book.indicators(BTC)[5]
    assert ind.key == "O"
    got = []
    k = 0
    for t, p in zip(ts, price, strict=True):
        while k < len(oi_ts) and oi_ts[k] <= t:
            book.handle_open_interest(BTC, float(oi[k]), int(oi_ts[k]))
            k += 1
        ind.update_price(int(t), float(p))
        got.append(np.nan if ind.value is None else ind.value)
    bars = pd.DataFrame({"ts": ts, "close": price})
    ref = reference.open_interest(bars, pd.DataFrame({"ts": oi_ts, "oi": oi}), c).to_numpy()
    inc = np.array(got)
    assert np.array_equal(np.isnan(inc), np.isnan(ref))
    live = ~np.isnan(ref)
    assert 30 < live.sum() < n  # warm-up and the stale gap are both exercised
    assert np.abs(inc[live] - ref[live]).max() <= TOL


def test_open_interest_rejects_bad_values() -> None:
    o = make_factors(FactorConfig())["O"]
    with pytest.raises(ValueError, match="open interest must be > 0"):
        o.update_oi(0, -5.0)


# ------------------------------------------------------------------------------------------------ Q


def test_liquidations_window_hand_computed() -> None:
    q = LiquidationFactor(window_ns=HOUR)
    assert q.value is None and "no liquidation stream" in (q.reason or "")
    q.set_feed_live()
    q.advance(0)
    assert q.value == 0.0  # live feed, nothing liquidated: a real 0
    q.update_liquidation(1 * MIN, "SELL", 2.0, 100.0)  # long liquidated, 200 USDT
    q.update_liquidation(2 * MIN, OrderSide.BUY, 1.0, 100.0)  # short liquidated, 100 USDT
    assert q.value == pytest.approx(100.0 * (200 - 100) / 300)
    q.advance(HOUR + 1 * MIN)  # the first event (t = 1 min) leaves the (now - 1h, now] window
    assert q.value == pytest.approx(-100.0)
    q.advance(HOUR + 2 * MIN)
    assert q.value == 0.0
    with pytest.raises(ValueError, match="liquidation side"):
        q.update_liquidation(3 * HOUR, "LONG", 1.0, 1.0)


def test_liquidations_match_reference() -> None:
    c = FactorConfig(liquidation_window_ns=15 * MIN)
    rng = np.random.default_rng(7)  # event times and sizes only; the test checks bookkeeping, not markets
    ev = pd.DataFrame(
        {
            "ts": np.sort(rng.integers(0, 4 * HOUR, 200)),
            "side": rng.choice(["BUY", "SELL"], 200),
            "qty": rng.uniform(0.01, 5.0, 200),
            "price": rng.uniform(90.0, 110.0, 200),
        }
    )
    times = pd.Series(np.arange(1, 4 * 60) * MIN)
    q = make_factors(c)["Q"]
    q.set_feed_live()
    got = []
    k = 0
    for t in times:
        while k < len(ev) and ev.ts[k] <= t:
            q.update_liquidation(int(ev.ts[k]), ev.side[k], float(ev.qty[k]), float(ev.price[k]))
            k += 1
        q.advance(int(t))
        got.append(q.value)
    ref = reference.liquidations(times, ev, c).to_numpy()
    assert np.abs(np.array(got) - ref).max() <= TOL
    assert ref.std() > 10


# ------------------------------------------------------------------------------------------------ L


def _capture(shared_data: Path, limit: int) -> tuple[dict, list[dict], list[dict]]:
    snapshot: dict = {}
    tickers: list[dict] = []
    depth: list[dict] = []
    with gzip.open(shared_data / "ws_capture" / "btcusdt_20240808.gz", "rt") as fh:
        for line in fh:
            msg = json.loads(line.split(" ", 1)[1])
            if "lastUpdateId" in msg:
                snapshot = msg
                continue
            data = msg["data"]
            if data["e"] == "bookTicker":
                tickers.append(data)
            elif data["e"] == "depthUpdate" and snapshot and data["u"] >= snapshot["lastUpdateId"]:
                depth.append(data)
            if len(tickers) >= limit and len(depth) >= 200:
                break
    return snapshot, tickers, depth


def test_liquidity_from_real_book_ticker_matches_reference(shared_data: Path) -> None:
    _, tickers, _ = _capture(shared_data, 2000)
    c = FactorConfig()
    book = FactorBook(c, [BTC])
    got = []
    for t in tickers:
        ts = t["T"] * 1_000_000
        book.handle_quote_tick(book_ticker_quote(BTC, t, ts))
        got.append(book.factor_value(BTC, "L"))
    quotes = pd.DataFrame(
        {
            k: [float(t[f]) for t in tickers]
            for k, f in (("bid", "b"), ("ask", "a"), ("bid_size", "B"), ("ask_size", "A"))
        }
    )
    ref = reference.liquidity_from_quotes(quotes, c).to_numpy()
    assert np.abs(np.array(got) - ref).max() <= TOL
    assert ref.std() > 0.5  # top-of-book depth moves
    top_fills = (quotes.bid * quotes.bid_size >= c.liquidity_notional) & (
        quotes.ask * quotes.ask_size >= c.liquidity_notional
    )
    assert top_fills.any() and (~top_fills).any()  # both the 3-part and the 2-part score are exercised


def test_liquidity_from_real_order_book_matches_reference(shared_data: Path) -> None:
    snapshot, _, depth = _capture(shared_data, 0)
    c = FactorConfig()
    ob = OrderBook(BTC, BookType.L2_MBP)
    levels = {"b": {}, "a": {}}
    for side_key, side in (("bids", OrderSide.BUY), ("asks", OrderSide.SELL)):
        for p, q in snapshot[side_key]:
            ob.update(BookOrder(side, Price.from_str(p), Quantity.from_str(q), 0), 0)
            levels[side_key[0]][float(p)] = float(q)
    l_ind = make_factors(c)["L"]
    checked = 0
    for i, upd in enumerate(depth):
        for side_key, side in (("b", OrderSide.BUY), ("a", OrderSide.SELL)):
            for p, q in upd[side_key]:
                order = BookOrder(side, Price.from_str(p), Quantity.from_str(q), 0)
                if float(q) == 0.0:
                    if float(p) in levels[side_key]:
                        ob.delete(order, upd["E"])
                        del levels[side_key][float(p)]
                else:
                    ob.update(order, upd["E"])
                    levels[side_key][float(p)] = float(q)
        if i % 40 == 0:
            l_ind.handle_order_book(ob)
            bids = pd.DataFrame(sorted(levels["b"].items(), reverse=True)[:100], columns=["price", "size"])
            asks = pd.DataFrame(sorted(levels["a"].items())[:100], columns=["price", "size"])
            assert l_ind.source == "book" and l_ind.parts is not None and l_ind.parts[2] is not None
            assert l_ind.value == pytest.approx(reference.liquidity_from_book(bids, asks, c), abs=TOL)
            checked += 1
    assert checked >= 5
    assert 0.0 <= l_ind.value <= 100.0


# ------------------------------------------------------------------------------------------------ F's OI part


def test_fund_leading_with_open_interest_hand_computed() -> None:
    from factors.fund_leading import FundLeadingFactor

    f = FundLeadingFactor(window=2, atr_period=2, flow_scale=20.0, price_scale=3.0, frac_scale=1.0, oi_scale_pct=2.0)
    f.update_oi(0, 1000.0)
    f.update_bar(100.0, 101.0, 99.0, 100.0, 10.0, None, 0)
    f.update_bar(100.0, 102.0, 99.0, 101.0, 10.0, None, MIN)
    assert f.value is None  # warm-up: window + 1 bars
    f.update_oi(2 * MIN, 1100.0)
    f.update_bar(101.0, 103.0, 100.0, 102.0, 20.0, None, 2 * MIN)
    atr = 2.5 + (3.0 - 2.5) / 2  # Wilder ATR(2): TR 2, 3, 3
    price_mom = 100.0 * math.tanh(2.0 / atr / (math.sqrt(2) * 3.0))
    volume_flow = 100.0 * math.tanh(30.0 / 30.0 / 1.0)  # both bars green
    oi_flow = 100.0 * math.tanh(10.0 / 2.0)  # OI +10% since the bar two back, price up
    expected = 100.0 * math.tanh(((volume_flow + oi_flow) / 2 - price_mom) / 20.0)
    assert f.components == ("volume", "oi")
    assert f.value == pytest.approx(expected, abs=1e-12)


def test_book_routes_liquidations_and_expires_them_on_bars(shared_data: Path) -> None:
    bars = load_bars(shared_data / "ohlcv_2025-03_2025-06/BTCUSDT-1m.csv.gz", slice(0, 90))
    book = FactorBook(FactorConfig(), [BTC])
    book.handle_bar(bars[0])
    assert book.factor_value(BTC, "Q") is None and "liquidation" in book.reasons(BTC)["Q"]
    book.set_liquidation_feed(True)
    book.handle_bar(bars[1])
    assert book.factor_value(BTC, "Q") == 0.0
    # explicit events (no liquidation data exists): one long liquidated at bar 2's time
    book.handle_liquidation(BTC, "SELL", 0.5, 95_000.0, bars[2].ts_event)
    book.handle_bar(bars[2])
    assert book.factor_value(BTC, "Q") == 100.0
    assert "Q" in book.score(BTC).available
    for b in bars[3:]:
        book.handle_bar(b)  # 87 minutes later the event has left the 1 h window
    assert book.factor_value(BTC, "Q") == 0.0
