"""``ats study``: does each factor, and the score, say anything about the returns that follow?

For each bar size (the catalog's own bars, or aggregated from 1m), every symbol's factors and score are
computed at every bar (``study_factors``), and compared with the forward returns over a grid of horizons given
in time (so 1 hour is 60 bars of 1m and 1 bar of 1h): rank IC pooled and per symbol with Newey-West t, the IC
of each horizon's own slice of the future (decay), hit rate and mean return by score bucket, and turnover.
``format_study`` prints the tables, ``save_study`` writes them as CSV and draws them (``study_plot``).
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from nodes.research.study_data import bar_interval_ns, bars_frame, funding_frame, marks_frame
from nodes.research.study_factors import STUDIED, factor_frame
from nodes.research.study_result import (
    SCORE_COLUMNS,
    StudyOptions,
    StudyResult,
)
from nodes.research.study_stats import forward_return, rank_ic, score_buckets, turnover

_HORIZON_UNITS_NS = {"m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000}


def horizon_ns(label: str) -> int:
    """ "15m" / "4h" / "1d" -> nanoseconds; a clear error for anything else."""
    text = label.strip().lower()
    count, unit = text[:-1], text[-1:]
    if not count.isdigit() or unit not in _HORIZON_UNITS_NS or int(count) <= 0:
        raise ValueError(f"horizon {label!r}: write it like 15m, 4h or 1d")
    return int(count) * _HORIZON_UNITS_NS[unit]


def bar_label(bar_spec: str) -> str:
    """ "15-MINUTE" -> "15m"."""
    step, unit = bar_spec.split("-")
    return f"{step}{unit[0].lower()}"


def _symbol_frame(
    catalog: ParquetDataCatalog, symbol: str, bar_spec: str, options: StudyOptions
) -> tuple[pd.DataFrame, dict]:
    interval = bar_interval_ns(bar_spec)
    bars = bars_frame(catalog, symbol, bar_spec, options.start, options.end)
    info = {"bar": bar_label(bar_spec), "symbol": symbol, "source": bars.attrs["source"], "bars": len(bars)}
    if bars.empty:
        return pd.DataFrame(), info
    start_ns, end_ns = int(bars["ts"].iloc[0]), int(bars["ts"].iloc[-1])
    frame = factor_frame(
        bars,
        options.factor_config,
        interval,
        funding_frame(catalog, symbol, start_ns, end_ns),
        marks_frame(catalog, symbol, start_ns, end_ns),
    )
    frame.insert(0, "symbol", symbol)
    info.update(
        first=pd.Timestamp(start_ns, unit="ns", tz="UTC"),
        last=pd.Timestamp(end_ns, unit="ns", tz="UTC"),
        runs=int(frame["segment"].nunique()),
        factors=" ".join(k for k in STUDIED if k in frame and frame[k].notna().any()),
    )
    close, seg = frame["close"].to_numpy(), frame["segment"].to_numpy()
    previous = 0
    for label in options.horizons:
        h = horizon_ns(label) // interval
        if h < 1 or horizon_ns(label) % interval:
            continue
        frame[f"r_{label}"] = forward_return(close, seg, 0, h)
        frame[f"d_{label}"] = forward_return(close, seg, previous, h)  # this horizon's own slice of the future
        previous = h
    return frame, info


def run_study(options: StudyOptions, progress: Callable[[str], None] | None = None) -> StudyResult:
    if not (options.catalog / "data").is_dir():
        raise FileNotFoundError(
            f"catalog {options.catalog} holds no data; fill it with `uv run ats data ingest FOLDER "
            f"--catalog {options.catalog}`"
        )
    catalog = ParquetDataCatalog(str(options.catalog))
    ic_rows, decay_rows, bucket_frames, turnover_rows, coverage = [], [], [], [], []
    notes: list[str] = []
    for bar_spec in options.bar_specs:
        interval = bar_interval_ns(bar_spec)
        bar = bar_label(bar_spec)
        frames = []
        for symbol in options.symbols:
            frame, info = _symbol_frame(catalog, symbol, bar_spec, options)
            coverage.append(info)
            if not frame.empty:
                frames.append(frame)
        if not frames:
            notes.append(f"{bar}: no bars for any symbol in the period (neither {bar} nor 1m bars)")
            continue
        data = pd.concat(frames, ignore_index=True)
        for column in SCORE_COLUMNS:  # the strategy scores only symbols whose bar factors are all warm
            data.loc[~data["warm"], column] = np.nan
        columns = [c for c in (*STUDIED, *SCORE_COLUMNS) if c in data and data[c].notna().any()]
        if progress:
            progress(f"{bar}: {len(frames)} symbols, {len(data):,} bars, factors {' '.join(columns)}")
        for label in options.horizons:
            if f"r_{label}" not in data:
                continue
            h = horizon_ns(label) // interval
            key = {"bar": bar, "horizon": label, "horizon_bars": h, "horizon_hours": horizon_ns(label) / 3.6e12}
            for column in columns:
                for row in rank_ic(data, column, f"r_{label}", h, interval):
                    ic_rows.append({**key, "factor": column, **row})
                pooled = rank_ic(data, column, f"d_{label}", h, interval, per_symbol=False, cross_section=False)
                for row in pooled:
                    decay_rows.append({**key, "factor": column, **row})
            if label in options.bucket_horizons:
                table = score_buckets(data, f"r_{label}", options.min_score, options.cost_bps)
                bucket_frames.append(table.assign(bar=bar, horizon=label))
        per_hour, per_day = 3.6e12 / interval, 8.64e13 / interval
        for column in columns:
            turnover_rows.append({"bar": bar, "factor": column, **turnover(data, column, per_hour, per_day)})
    buckets = pd.concat(bucket_frames, ignore_index=True) if bucket_frames else pd.DataFrame()
    if not buckets.empty:
        buckets = buckets[["bar", "horizon", *[c for c in buckets if c not in ("bar", "horizon")]]]
    return StudyResult(
        options,
        pd.DataFrame(ic_rows),
        pd.DataFrame(decay_rows),
        buckets,
        pd.DataFrame(turnover_rows),
        pd.DataFrame(coverage),
        notes,
    )


# ------------------------------------------------------------------------------------------------- printing


FEW_PERIODS = 30  # fewer non-overlapping horizons than this: the t-statistic is marked "~" (unreliable)


def _cell(ic: float, t: float, periods: float = np.inf) -> str:
    if not np.isfinite(ic):
        return "-"
    mark = "~" if periods < FEW_PERIODS else ("*" if np.isfinite(t) and abs(t) >= 2.0 else " ")
    return f"{ic:+.3f} ({t:+.1f}){mark}"


def _cells(rows: pd.DataFrame, ic: str = "ic", t: str = "t") -> list[str]:
    return [_cell(*v) for v in zip(rows[ic], rows[t], rows["periods"], strict=True)]


def _matrix(rows: pd.DataFrame, index: str, columns: str, order: list[str]) -> pd.DataFrame:
    cells = rows.assign(cell=_cells(rows))
    table = cells.pivot(index=index, columns=columns, values="cell")
    table = table.reindex(index=[i for i in order if i in table.index])
    return table.fillna("-")


def _section(title: str, body: str) -> str:
    return f"{title}\n{'-' * len(title)}\n{body}"


def format_study(result: StudyResult) -> str:
    """Every table of the study as text (the CSV files hold the same numbers, unrounded)."""
    o = result.options
    parts = [
        _section(
            "Study",
            "\n".join(
                [
                    f"catalog   {o.catalog}",
                    f"period    {o.start or 'catalog start'} -> {o.end or 'catalog end'}",
                    f"symbols   {len(o.symbols)}: {' '.join(s.removesuffix('USDT') for s in o.symbols)}",
                    "factors   factors/reference.py (equal to the FactorBook to 1e-9, tested): T M C S V F "
                    "from bars, B from funding + marks",
                    "IC        Spearman, ranked within each symbol; t: Newey-West, lag = horizon in bars, "
                    "summed over symbols per bar (Driscoll-Kraay); * = |t| >= 2; ~ = fewer than "
                    f"{FEW_PERIODS} non-overlapping horizons in the sample: t not reliable",
                ]
            ),
        )
    ]
    if not result.coverage.empty:
        cov = result.coverage.copy()
        if "runs" in cov:  # runs of bars without a gap
            cov["runs"] = cov["runs"].map(lambda v: "-" if pd.isna(v) else str(int(v)))
        for col in ("first", "last"):
            if col in cov:
                cov[col] = cov[col].map(lambda v: v.strftime("%Y-%m-%d %H:%M") if isinstance(v, pd.Timestamp) else "-")
        parts.append(_section("Data", cov.fillna("-").to_string(index=False)))
    ic = result.ic
    order = [*STUDIED, *SCORE_COLUMNS]
    if not ic.empty:
        pooled = ic[ic["scope"] == "pooled"]
        for bar, rows in pooled.groupby("bar", sort=False):
            table = _matrix(rows, "factor", "horizon", order)
            table = table[[h for h in o.horizons if h in table.columns]]
            n = int(rows["n"].max())
            parts.append(_section(f"Rank IC, {bar} bars, pooled over symbols ({n:,} bars): IC (t)", table.to_string()))
            cs = rows.assign(cell=_cells(rows, "cs_ic", "cs_t"))
            cs_table = cs.pivot(index="factor", columns="horizon", values="cell")
            cs_table = cs_table.reindex(index=[i for i in order if i in cs_table.index])
            cs_table = cs_table[[h for h in o.horizons if h in cs_table.columns]].fillna("-")
            parts.append(
                _section(
                    f"Cross-sectional rank IC, {bar} bars (ranks symbols against each other at each bar)",
                    cs_table.to_string(),
                )  # fmt: skip
            )
        per_symbol = ic[ic["scope"] != "pooled"]
        for bar, rows in per_symbol.groupby("bar", sort=False):
            horizon = _main_horizon(rows, o)
            sub = rows[rows["horizon"] == horizon]
            table = _matrix(sub, "scope", "factor", list(dict.fromkeys(sub["scope"])))
            table = table[[c for c in order if c in table.columns]]
            parts.append(_section(f"Rank IC per symbol, {bar} bars, {horizon} ahead: IC (t)", table.to_string()))
    if not result.decay.empty:
        for bar, rows in result.decay.groupby("bar", sort=False):
            table = _matrix(rows, "factor", "horizon", order)
            table = table[[h for h in o.horizons if h in table.columns]]
            parts.append(
                _section(
                    f"IC decay, {bar} bars: IC with the return between the previous horizon and this one",
                    table.to_string(),
                )
            )
    if not result.buckets.empty:
        for (bar, horizon), rows in result.buckets.groupby(["bar", "horizon"], sort=False):
            shown = rows.drop(columns=["bar", "horizon"]).round(2)
            parts.append(
                _section(
                    f"Score buckets, {bar} bars, {horizon} ahead: return in the score's direction (bps; t clustered by "
                    f"symbol-day; net = "
                    f"mean - {o.cost_bps:g} bps round trip)",
                    shown.to_string(index=False),
                )
            )
    if not result.turnover.empty:
        parts.append(_section("Turnover", result.turnover.round(3).to_string(index=False)))
    if result.notes:
        parts.append(_section("Notes", "\n".join(result.notes)))
    return "\n\n".join(parts)


def _main_horizon(rows: pd.DataFrame, options: StudyOptions) -> str:
    """The per-symbol table's horizon: 1 hour when studied, else the longest horizon present."""
    present = [h for h in options.horizons if h in set(rows["horizon"])]
    return "1h" if "1h" in present else present[-1]


def save_study(result: StudyResult, folder: Path, text: str | None = None, draw: bool = True) -> Path:
    """The CSV files first (the numbers survive a failure further on), then the text and the HTML page."""
    folder.mkdir(parents=True, exist_ok=True)
    result.ic.to_csv(folder / "ic.csv", index=False)
    result.decay.to_csv(folder / "ic_decay.csv", index=False)
    result.buckets.to_csv(folder / "score_buckets.csv", index=False)
    result.turnover.to_csv(folder / "turnover.csv", index=False)
    result.coverage.to_csv(folder / "data.csv", index=False)
    if text is not None:
        (folder / "study.txt").write_text(text + "\n")
    if draw:
        from nodes.research.study_plot import write_study_html

        write_study_html(result, folder / "study.html")
    return folder
