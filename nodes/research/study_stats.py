"""The study's statistics as plain functions of a long frame (one row per symbol and bar).

Rank IC: the Spearman correlation of a factor at bar t (known at the bar's close) with the forward return
close[t+h] / close[t] - 1, both ranked within each symbol over the studied period. Pooled over symbols it is the
mean of the products of the within-symbol rank z-scores, i.e. the bar-weighted mean of the per-symbol ICs.

t-statistics use Newey-West (Bartlett kernel) with lag = the horizon in bars, because returns over h bars that
start one bar apart overlap in h - 1 bars. The pooled one is Driscoll-Kraay: the per-bar sum over symbols of the
centred products goes through Newey-West over time, so the correlation between symbols at the same time (crypto
moves together) counts as well as the overlap. No observation is dropped (no non-overlapping sampling).
Bars missing from the grid (gaps) count as zeros of the centred series.
"""

import numpy as np
import pandas as pd

# |score| buckets (the score's own scale, -100..100) for hit rate and mean return in the score's direction
SCORE_EDGES = (0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 70.0, 100.0001)
MIN_CROSS_SECTION = 5  # symbols needed at a bar for a cross-sectional IC


def forward_return(close: np.ndarray, segment: np.ndarray, start: int, stop: int) -> np.ndarray:
    """close[t+stop] / close[t+start] - 1 within one run of bars (NaN where it would cross a gap or the end)."""
    n = len(close)
    out = np.full(n, np.nan)
    if stop >= n:
        return out
    head = slice(0, n - stop)
    same = segment[stop:] == segment[: n - stop]
    ratio = close[stop:] / close[start : n - stop + start] - 1.0
    out[head] = np.where(same, ratio, np.nan)
    return out


def newey_west_sum(series: np.ndarray, lag: int) -> float:
    """gamma_0 + 2 sum_{l=1..lag} (1 - l/(lag+1)) gamma_l, with gamma_l = sum_t x_t x_{t-l} (not divided by n)."""
    x = np.asarray(series, dtype=float)
    n = len(x)
    if n == 0:
        return 0.0
    lag = min(lag, n - 1)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(x, size)
    gamma = np.fft.irfft(spectrum * np.conj(spectrum), size)[: lag + 1]
    weights = 1.0 - np.arange(1, lag + 1) / (lag + 1.0)
    return float(gamma[0] + 2.0 * np.dot(weights, gamma[1:]))


def _grid(ts: np.ndarray, interval_ns: int) -> np.ndarray:
    return ((ts - ts.min()) // interval_ns).astype(np.int64)


def _t_stat(mean: float, centred: np.ndarray, positions: np.ndarray, count: int, lag: int) -> float:
    """t of a mean of ``count`` observations whose centred values, summed per grid position, are ``centred``."""
    dense = np.zeros(int(positions.max()) + 1 if len(positions) else 0)
    np.add.at(dense, positions, centred)
    var = newey_west_sum(dense, lag) / float(count) ** 2
    return float(mean / np.sqrt(var)) if var > 0 else float("nan")


def _rank_z(values: pd.Series, groups: pd.Series) -> np.ndarray:
    ranks = values.groupby(groups, sort=False).rank(method="average")
    grouped = ranks.groupby(groups, sort=False)
    mean, std = grouped.transform("mean"), grouped.transform("std", ddof=0)
    return ((ranks - mean) / std.where(std > 0)).to_numpy()


def rank_ic(
    data: pd.DataFrame,
    column: str,
    returns: str,
    lag: int,
    interval_ns: int,
    per_symbol: bool = True,
    cross_section: bool = True,
) -> list[dict]:
    """Rows {scope, ic, t, n, periods, cs_ic, cs_t} for the pooled IC (scope "pooled") and each symbol's IC.

    periods: bars with data / horizon, the number of non-overlapping horizons the sample holds; with fewer than
    ~30 the Newey-West t is not to be trusted (it understates the variance in small samples).

    data: columns symbol, ts, ``column``, ``returns``; rows where either is NaN are left out. cs_ic / cs_t
    (pooled row only): the mean over bars of the Spearman correlation across symbols at that bar (how well the
    factor ranks symbols against each other), with its Newey-West t over time.
    """
    d = data[["symbol", "ts", column, returns]].dropna()
    if len(d) < 3:
        return []
    zx = _rank_z(d[column], d["symbol"])
    zy = _rank_z(d[returns], d["symbol"])
    ok = np.isfinite(zx) & np.isfinite(zy)
    d, product = d[ok], zx[ok] * zy[ok]
    if len(d) < 3:
        return []
    ts = d["ts"].to_numpy()
    positions = _grid(ts, interval_ns)
    ic = float(product.mean())
    rows = [
        {
            "scope": "pooled",
            "ic": ic,
            "t": _t_stat(ic, product - ic, positions, len(product), lag),
            "n": len(product),
            "periods": len(np.unique(positions)) / max(lag, 1),
            **(_cross_sectional(d, column, returns, interval_ns, lag) if cross_section else {}),
        }
    ]
    if per_symbol:
        symbols = d["symbol"].to_numpy()
        for symbol in pd.unique(symbols):
            mask = symbols == symbol
            u = product[mask]
            ic_s = float(u.mean())
            pos = _grid(ts[mask], interval_ns)
            rows.append(
                {
                    "scope": symbol,
                    "ic": ic_s,
                    "t": _t_stat(ic_s, u - ic_s, pos, len(u), lag),
                    "n": len(u),
                    "periods": len(u) / max(lag, 1),
                }
            )
    return rows


def _cross_sectional(d: pd.DataFrame, column: str, returns: str, interval_ns: int, lag: int) -> dict[str, float]:
    """Per bar: Spearman across the symbols that have both values (at least MIN_CROSS_SECTION of them)."""
    x = d.pivot(index="ts", columns="symbol", values=column)
    y = d.pivot(index="ts", columns="symbol", values=returns)
    both = x.notna() & y.notna()
    keep = both.sum(axis=1) >= MIN_CROSS_SECTION
    if keep.sum() < 3:
        return {"cs_ic": float("nan"), "cs_t": float("nan")}
    x, y = x[keep].where(both[keep]), y[keep].where(both[keep])

    def z(frame: pd.DataFrame) -> pd.DataFrame:
        ranks = frame.rank(axis=1)
        std = ranks.std(axis=1, ddof=0)
        return ranks.sub(ranks.mean(axis=1), axis=0).div(std.where(std > 0), axis=0)

    per_bar = (z(x) * z(y)).mean(axis=1).dropna()
    if len(per_bar) < 3:
        return {"cs_ic": float("nan"), "cs_t": float("nan")}
    ts = per_bar.index.to_numpy(dtype=np.int64)
    pos = _grid(ts, interval_ns)
    mean = float(per_bar.mean())
    return {"cs_ic": mean, "cs_t": _t_stat(mean, per_bar.to_numpy() - mean, pos, len(per_bar), lag)}


def score_buckets(data: pd.DataFrame, returns: str, min_score: float, cost_bps: float) -> pd.DataFrame:
    """Hit rate and mean forward return in the score's direction, by |score| bucket, plus the entry signals.

    A bar with score s > 0 counts its return r, one with s < 0 counts -r (score 0 counts nothing); hit = that
    return > 0. The last row, "entries", is the bars where the strategy would enter: direction LONG/SHORT and
    strength >= min_score. net_bps subtracts ``cost_bps`` (a round trip of taker fees) from mean_bps. t: the
    mean's t-statistic with the bars clustered by symbol and UTC day (bars of one day overlap and move together,
    so the bar count overstates the evidence; days are treated as independent).
    """
    d = data[data["warm"]][["symbol", "ts", "score", "signal", "strength", returns]].dropna()
    side = np.sign(d["score"].to_numpy())
    directional = side * d[returns].to_numpy() * 1e4
    magnitude = np.abs(d["score"].to_numpy())
    cluster = pd.factorize(d["symbol"].astype(str) + ":" + (d["ts"] // 86_400_000_000_000).astype(str))[0]
    rows = []
    edges = SCORE_EDGES
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (magnitude >= lo) & (magnitude < hi) & (side != 0)
        rows.append(_bucket_row(f"{lo:g}-{min(hi, 100):g}", mask, side, directional, cluster, len(d), cost_bps))
    entries = (d["signal"].to_numpy() != 0) & (d["strength"].to_numpy() >= min_score)
    name = f"entries (strength>={min_score:g})"
    rows.append(_bucket_row(name, entries, side, directional, cluster, len(d), cost_bps))
    return pd.DataFrame(rows)


def _clustered_t(values: np.ndarray, cluster: np.ndarray) -> float:
    if len(values) < 2:
        return float("nan")
    mean = values.mean()
    sums = np.bincount(cluster, weights=values - mean)
    var = float((sums**2).sum()) / len(values) ** 2
    return float(mean / np.sqrt(var)) if var > 0 else float("nan")


def _bucket_row(
    name: str,
    mask: np.ndarray,
    side: np.ndarray,
    directional: np.ndarray,
    cluster: np.ndarray,
    total: int,
    cost_bps: float,
) -> dict:
    chosen = directional[mask]
    longs, shorts = directional[mask & (side > 0)], directional[mask & (side < 0)]
    mean = float(chosen.mean()) if len(chosen) else float("nan")
    return {
        "bucket": name,
        "n": int(mask.sum()),
        "days": len(np.unique(cluster[mask])),
        "share_pct": 100.0 * mask.sum() / total if total else float("nan"),
        "hit_pct": 100.0 * float((chosen > 0).mean()) if len(chosen) else float("nan"),
        "mean_bps": mean,
        "t": _clustered_t(chosen, cluster[mask]),
        "net_bps": mean - cost_bps,
        "long_n": len(longs),
        "long_bps": float(longs.mean()) if len(longs) else float("nan"),
        "short_n": len(shorts),
        "short_bps": float(shorts.mean()) if len(shorts) else float("nan"),
    }


def turnover(data: pd.DataFrame, column: str, bars_per_hour: float, bars_per_day: float) -> dict:
    """How fast a signal changes: rank autocorrelation after 1 bar and after 1 hour, sign changes per day.

    1 - autocorrelation is the share of the ranking that turns over in that time.
    """
    ac1, ac_h, flips, days = [], [], 0, 0.0
    lag_h = max(1, int(round(bars_per_hour)))
    for _, g in data[["symbol", "segment", column]].dropna().groupby(["symbol", "segment"]):
        x = g[column].rank().to_numpy()
        if len(x) > lag_h + 2:
            ac1.append((np.corrcoef(x[1:], x[:-1])[0, 1], len(x)))
            ac_h.append((np.corrcoef(x[lag_h:], x[:-lag_h])[0, 1], len(x)))
        signs = np.sign(g[column].to_numpy())
        signs = signs[signs != 0]
        flips += int((signs[1:] != signs[:-1]).sum())
        days += len(g) / bars_per_day

    def weighted(pairs: list[tuple[float, int]]) -> float:
        pairs = [(a, n) for a, n in pairs if np.isfinite(a)]
        return float(sum(a * n for a, n in pairs) / sum(n for _, n in pairs)) if pairs else float("nan")

    return {
        "autocorr_1bar": weighted(ac1),
        "autocorr_1h": weighted(ac_h),
        "sign_changes_per_day": flips / days if days else float("nan"),
    }
