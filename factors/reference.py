"""Vectorised pandas reference of every factor: the readable definition the incremental indicators must match.

Not for the hot path. Bar factors take a frame with columns open, high, low, close, volume and optionally
taker_buy (base volume), one row per bar in time order; they return a Series aligned with it, NaN during the
warm-up. Event factors (O, B, Q, L) take their event frames. docs/factors.md states the same math in words.
"""

import numpy as np
import pandas as pd

from factors.config import FactorConfig


def ema(s: pd.Series, n: int) -> pd.Series:
    return s.ewm(span=n, adjust=False).mean()


def wilder_atr(df: pd.DataFrame, n: int) -> pd.Series:
    prev = df["close"].shift()
    tr = pd.concat([df["high"] - df["low"], (df["high"] - prev).abs(), (df["low"] - prev).abs()], axis=1).max(
        axis=1
    )  # the first bar has no previous close: its TR is high - low
    return tr.ewm(alpha=1.0 / n, adjust=False).mean()


def _warm(s: pd.Series, first_index: int) -> pd.Series:
    s = s.astype(float).copy()
    s.iloc[:first_index] = np.nan
    return s


def trend(df: pd.DataFrame, c: FactorConfig) -> pd.Series:
    close = df["close"]
    fast, mid, slow = ema(close, c.trend_ema_fast), ema(close, c.trend_ema_mid), ema(close, c.trend_ema_slow)
    macd = fast - mid
    hist = macd - ema(macd, c.trend_macd_signal)
    atr = wilder_atr(df, c.atr_period)
    stack = np.where((fast > mid) & (mid > slow), 100.0, np.where((fast < mid) & (mid < slow), -100.0, 0.0))
    ok = atr > 0
    safe = atr.where(ok, 1.0)
    dist = np.where(ok, np.tanh((close - slow) / safe / c.trend_dist_scale_atr), 0.0)
    mac = np.where(ok, np.tanh(hist / safe / c.trend_hist_scale_atr), 0.0)
    t = 100.0 * (c.trend_w_dist * dist + c.trend_w_macd * mac) + c.trend_w_stack * stack
    warm = max(c.trend_ema_slow, c.trend_ema_mid + c.trend_macd_signal, c.atr_period)
    return _warm(pd.Series(t, index=df.index), warm - 1)


def momentum(df: pd.DataFrame, c: FactorConfig) -> pd.Series:
    close = df["close"]
    d = close.diff()
    ag = d.clip(lower=0.0).ewm(alpha=1.0 / c.momentum_rsi_period, adjust=False).mean()
    al = (-d).clip(lower=0.0).ewm(alpha=1.0 / c.momentum_rsi_period, adjust=False).mean()
    s = ag + al
    ok = s > 0
    safe = s.where(ok, 1.0)
    roc = close - close.shift(c.momentum_roc_period)
    den = np.sqrt(c.momentum_roc_period) * c.momentum_roc_scale
    m = np.where(ok, 50.0 * (ag - al) / safe + 50.0 * np.tanh(roc / safe / den), 0.0)
    return _warm(pd.Series(m, index=df.index), max(c.momentum_rsi_period, c.momentum_roc_period))


def cvd(df: pd.DataFrame, c: FactorConfig) -> pd.Series:
    n = c.cvd_window
    delta = 2.0 * df["taker_buy"] - df["volume"]
    y = delta.cumsum().to_numpy()
    out = np.full(len(df), np.nan)
    if len(df) >= n:
        win = np.lib.stride_tricks.sliding_window_view(y, n)  # row k: CVD of bars k .. k+n-1
        x = np.arange(n) - (n - 1) / 2.0
        yc = win - win.mean(axis=1, keepdims=True)
        sxy = yc @ x
        syy = (yc * yc).sum(axis=1)
        sxx = (x * x).sum()
        sv = df["volume"].rolling(n).sum().to_numpy()[n - 1 :]
        ok = (syy > 0) & (sv > 0)
        slope = sxy / sxx
        r2 = np.where(ok, sxy * sxy / (sxx * np.where(ok, syy, 1.0)), 0.0)
        damp = np.minimum(1.0, r2 / c.cvd_r2_full)
        val = np.where(ok, 100.0 * np.tanh(slope * n / np.where(ok, sv, 1.0) / c.cvd_scale) * damp, 0.0)
        out[n - 1 :] = val
    return pd.Series(out, index=df.index)


def structure(df: pd.DataFrame, c: FactorConfig) -> pd.Series:
    n, cap = c.structure_window, c.structure_cap_atr
    close = df["close"]
    res = df["high"].rolling(n).max().shift(1)
    sup = df["low"].rolling(n).min().shift(1)
    atr = wilder_atr(df, c.atr_period)
    ok = atr > 0
    safe = atr.where(ok, 1.0)
    up = np.clip(np.where(close <= res, (res - close) / safe, cap), 0.0, cap)
    dn = np.clip(np.where(close >= sup, (close - sup) / safe, cap), 0.0, cap)
    s = np.where(ok, 100.0 * (up - dn) / cap, 0.0)
    return _warm(pd.Series(s, index=df.index), max(n, c.atr_period))


def volume(df: pd.DataFrame, c: FactorConfig) -> pd.Series:
    n = c.volume_window
    v, o, cl = df["volume"], df["open"], df["close"]
    mean = v.rolling(n).mean().shift(1)
    var = (v * v).rolling(n).mean().shift(1) - mean * mean
    std = np.sqrt(var.clip(lower=0.0))
    z = np.where(std > 0, (v - mean) / std.where(std > 0, 1.0), 0.0)
    rng = df["high"] - df["low"]
    trig = (rng > 0) & (v > 0) & ((cl - o).abs() >= c.volume_trigger_body * rng) & (v >= c.volume_trigger_mult * mean)
    strength = np.where(z > 0, c.volume_w_z * np.tanh(z / c.volume_z_scale), 0.0) + c.volume_w_trigger * trig
    direction = np.sign(cl - o)
    return _warm(pd.Series(direction * strength, index=df.index) + 0.0, n)


def independence(sym: pd.DataFrame, markets: list[pd.DataFrame], c: FactorConfig) -> pd.Series:
    """I on the bars whose timestamp ``ts`` all frames share; indexed by that ts."""
    n = c.independence_window
    closes = [sym.set_index("ts")["close"]] + [m.set_index("ts")["close"] for m in markets]
    joined = pd.concat(closes, axis=1, join="inner")
    rets = joined / joined.shift() - 1.0
    r = rets.iloc[:, 0]
    m = rets.iloc[:, 1:].sum(axis=1) / len(markets)
    m[rets.iloc[:, 1:].isna().any(axis=1)] = np.nan
    sr, sm = r.rolling(n).sum(), m.rolling(n).sum()
    srm, smm = (r * m).rolling(n).sum(), (m * m).rolling(n).sum()
    den = n * smm - sm * sm
    beta = np.where(den > 0, (n * srm - sr * sm) / den.where(den > 0, 1.0), 0.0)
    b = np.minimum(1.0, np.maximum(beta, 0.0) / c.independence_beta_cap)
    out = pd.Series(100.0 * (1.0 - b), index=joined.index)
    out[sr.isna()] = np.nan
    return out


def fund_leading(df: pd.DataFrame, c: FactorConfig) -> pd.Series:
    """F from bars alone (volume flow, plus CVD flow when ``taker_buy`` is present); no OI part."""
    n = c.flow_window
    close, o, v = df["close"], df["open"], df["volume"]
    atr = wilder_atr(df, c.atr_period)
    move = close - close.shift(n)
    ok = atr > 0
    den = np.sqrt(n) * c.flow_price_scale
    price_mom = np.where(ok, 100.0 * np.tanh(move / atr.where(ok, 1.0) / den), 0.0)
    sv = v.rolling(n).sum()
    has_v = sv > 0
    safe = sv.where(has_v, 1.0)
    signed = pd.Series(np.where(close > o, v, np.where(close < o, -v, 0.0)), index=df.index)
    flows = [100.0 * np.tanh(signed.rolling(n).sum() / safe / c.flow_frac_scale)]
    if "taker_buy" in df:
        delta = 2.0 * df["taker_buy"] - v
        flows.append(100.0 * np.tanh(delta.rolling(n).sum() / safe / c.flow_frac_scale))
    flow = np.where(has_v, sum(flows) / len(flows), 0.0)
    f = 100.0 * np.tanh((flow - price_mom) / c.flow_scale)
    return _warm(pd.Series(f, index=df.index), max(n, c.atr_period))


BAR_FACTORS = {"T": trend, "M": momentum, "C": cvd, "S": structure, "V": volume, "F": fund_leading}


# ------------------------------------------------------------------------------------------- event factors


def open_interest(bars: pd.DataFrame, oi: pd.DataFrame, c: FactorConfig) -> pd.Series:
    """O at each bar close. bars: ts, close; oi: ts, oi (both sorted; an OI at a bar's ts counts for it).

    NaN where O is not available: no OI at least ``oi_lookback_ns`` old, or the last OI older than
    ``oi_stale_ns``.
    """
    ts = bars["ts"].to_numpy()
    price = bars["close"].to_numpy()
    oi_ts = oi["ts"].to_numpy()
    oi_v = oi["oi"].to_numpy()

    def asof(times: np.ndarray, at: np.ndarray, values: np.ndarray) -> np.ndarray:
        k = np.searchsorted(times, at, side="right") - 1  # last observation at or before each time
        return np.where(k >= 0, values[np.maximum(k, 0)], np.nan)

    cut = ts - c.oi_lookback_ns
    price_then = asof(ts, cut, price)
    oi_then = asof(oi_ts, cut, oi_v)
    oi_now = asof(oi_ts, ts, oi_v)
    oi_now_ts = asof(oi_ts, ts, oi_ts.astype(float))
    # mean of the OI observations in (now - 7 days, now]
    csum = np.concatenate([[0.0], np.cumsum(oi_v)])
    hi = np.searchsorted(oi_ts, ts, side="right")
    lo = np.searchsorted(oi_ts, ts - c.oi_mean_ns, side="right")
    mean = (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)
    dp = price - price_then
    doi = (oi_now / oi_then - 1.0) * 100.0
    sign = np.sign(dp)
    mag = 100.0 * np.tanh(np.abs(doi) / c.oi_scale_pct)
    o = np.where(doi > 0, sign * mag, sign * c.oi_weak * mag)
    excess = oi_now / mean - c.oi_extreme_ratio
    o = np.where(excess > 0, o / (1.0 + excess / (c.oi_extreme_ratio - 1.0)), o)
    ok = ~np.isnan(price_then) & ~np.isnan(oi_then) & ((ts - oi_now_ts) <= c.oi_stale_ns)
    return pd.Series(np.where(ok, o, np.nan), index=bars.index)


def rate_score(rate: pd.Series | np.ndarray) -> np.ndarray:
    x = np.abs(rate) * 100.0
    s = np.minimum(100.0, np.where(x <= 0.1, 330.0 * x, 33.0 + 670.0 * (x - 0.1)))
    return np.where(np.asarray(rate) >= 0, s, -s)


def basis_funding(
    bars: pd.DataFrame, marks: pd.DataFrame, funding: pd.DataFrame, c: FactorConfig
) -> pd.Series:
    """B at each bar close. marks: ts, mark; funding: ts, rate.

    A mark is compared with the last bar close at or before its time; events at a bar's ts count for it.
    """
    m = pd.merge_asof(marks, bars[["ts", "close"]], on="ts")
    m["premium"] = (m["mark"] - m["close"]) / m["close"]
    m = m.dropna(subset=["premium"])
    at = bars[["ts"]]
    prem = pd.merge_asof(at, m[["ts", "premium"]], on="ts")["premium"]
    rate = pd.merge_asof(at, funding[["ts", "rate"]], on="ts")["rate"]
    fs = rate_score(rate.fillna(0.0))
    both = (c.basis_w_funding * fs + c.basis_w_premium * rate_score(prem.fillna(0.0))) / (
        c.basis_w_funding + c.basis_w_premium
    )
    b = np.where(prem.notna(), both, fs)
    return pd.Series(np.where(rate.notna(), b, np.nan), index=bars.index)


def liquidations(times: pd.Series, events: pd.DataFrame, c: FactorConfig) -> pd.Series:
    """Q at the given times (ns). events: ts, side ("SELL" = a long liquidated), qty, price."""
    notional = events["qty"] * events["price"]
    longs = np.where(events["side"] == "SELL", notional, 0.0)
    shorts = np.where(events["side"] == "BUY", notional, 0.0)
    ts = events["ts"].to_numpy()
    out = []
    for t in times:
        w = (ts > t - c.liquidation_window_ns) & (ts <= t)
        lg, sh = longs[w].sum(), shorts[w].sum()
        out.append(100.0 * (lg - sh) / (lg + sh) if lg + sh > 0 else 0.0)
    return pd.Series(out, index=times.index)


def liquidity_from_quotes(quotes: pd.DataFrame, c: FactorConfig) -> pd.Series:
    """L from top-of-book rows (bid, ask, bid_size, ask_size).

    Spread and top-depth parts always; the impact part only when both top levels can fill the order alone
    (a quote says nothing about the levels behind it).
    """
    bid, ask = quotes["bid"], quotes["ask"]
    mid = 0.5 * (bid + ask)
    spread = (ask - bid) / mid * 1e4
    lo, hi = mid * (1 - c.liquidity_depth_bps * 1e-4), mid * (1 + c.liquidity_depth_bps * 1e-4)
    bid_n, ask_n = bid * quotes["bid_size"], ask * quotes["ask_size"]
    depth = np.where(bid >= lo, bid_n, 0.0) + np.where(ask <= hi, ask_n, 0.0)
    notional = c.liquidity_notional
    buy = (notional / (notional / ask) / mid - 1.0) * 1e4
    sell = (1.0 - notional / (notional / bid) / mid) * 1e4
    impact = 0.5 * (buy + sell)
    has_impact = (ask_n >= notional) & (bid_n >= notional)
    spread_s = 100.0 * np.maximum(0.0, 1.0 - spread / c.liquidity_spread_bad_bps)
    depth_s = 100.0 * np.minimum(1.0, depth / c.liquidity_depth_good)
    impact_s = 100.0 * np.maximum(0.0, 1.0 - impact / c.liquidity_impact_bad_bps)
    return pd.Series(
        np.where(has_impact, (spread_s + depth_s + impact_s) / 3.0, (spread_s + depth_s) / 2.0),
        index=quotes.index,
    )


def liquidity_from_book(bids: pd.DataFrame, asks: pd.DataFrame, c: FactorConfig) -> float:
    """L of one full book snapshot (price, size frames, best first): spread, depth and impact parts."""
    bid, ask = bids["price"].iloc[0], asks["price"].iloc[0]
    mid = 0.5 * (bid + ask)
    spread = (ask - bid) / mid * 1e4
    lo, hi = mid * (1 - c.liquidity_depth_bps * 1e-4), mid * (1 + c.liquidity_depth_bps * 1e-4)
    near_b = bids[bids["price"] >= lo]
    near_a = asks[asks["price"] <= hi]
    depth = (near_b["price"] * near_b["size"]).sum() + (near_a["price"] * near_a["size"]).sum()

    def impact(levels: pd.DataFrame, buy: bool) -> float:
        notional = levels["price"] * levels["size"]
        cum = notional.cumsum()
        k = int(np.searchsorted(cum.to_numpy(), c.liquidity_notional))  # first level that completes the order
        if k >= len(levels):
            return float("inf")
        before = cum.iloc[k - 1] if k > 0 else 0.0
        qty = levels["size"].iloc[:k].sum() + (c.liquidity_notional - before) / levels["price"].iloc[k]
        vwap = c.liquidity_notional / qty
        return (vwap / mid - 1.0) * 1e4 if buy else (1.0 - vwap / mid) * 1e4

    imp = 0.5 * (impact(asks, True) + impact(bids, False))
    parts = [
        100.0 * max(0.0, 1.0 - spread / c.liquidity_spread_bad_bps),
        100.0 * min(1.0, depth / c.liquidity_depth_good),
        100.0 * max(0.0, 1.0 - imp / c.liquidity_impact_bad_bps),
    ]
    return sum(parts) / 3.0
