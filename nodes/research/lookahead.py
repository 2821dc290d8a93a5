"""Lookahead check of the factors, the score and the signal: does any value at bar t use data after t?

The data is cut at many times c; everything is recomputed from the data up to c alone (read from the catalog
again, so loading and aggregation are part of the check) and every value at every bar up to c must equal the
value the full data gave at that bar. Two pipelines are checked:

- the study's (``study_factors.factor_frame`` on ``study_data.bars_frame``), the vectorised reference;
- the strategy's: a ``FactorBook`` fed the catalog's events (bars, funding, marks, OI) in time order by the same
  replay as ``ats scan``, read after every bar (``score`` of that symbol: every factor, the score, the signal).

A third comparison ties them: on the full data both must agree at every bar (the study measures what trades).
The backtest's own decisions are checked by ``lookahead_backtest``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from nautilus_trader.model.data import Bar
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.instruments import instrument_id_for
from factors.book import FactorBook
from factors.config import ALL_FACTORS, FactorConfig
from factors.scoring import FLAT, LONG
from nodes.research.scan import BTC_ID, ETH_ID, load_events, replay
from nodes.research.study_data import bar_interval_ns, bars_frame, funding_frame, marks_frame
from nodes.research.study_factors import add_scores, factor_frame

SCORE_KEYS = ("score", "strength", "signal")
TOLERANCE = 1e-9
REFERENCE = "study pipeline (reference)"
BOOK = "strategy pipeline (FactorBook)"
AGREEMENT = "study == FactorBook, full data"
SCORED_TAIL = 64  # bars before each cut whose score is recomputed (the score is a function of that bar's factors)


@dataclass(frozen=True)
class Difference:
    check: str
    symbol: str
    column: str  # factor key, score, strength or signal
    bar_ts: int
    cut_ts: int | None  # None: the full-data comparison of the two pipelines
    full: float
    cut: float

    def describe(self) -> str:
        when = pd.Timestamp(self.bar_ts, unit="ns", tz="UTC").strftime("%Y-%m-%d %H:%M")
        where = (
            f"data cut at {pd.Timestamp(self.cut_ts, unit='ns', tz='UTC'):%Y-%m-%d %H:%M}"
            if self.cut_ts is not None
            else "study vs FactorBook"
        )
        return f"{self.check}: {self.symbol} {self.column} at bar {when}: {self.full!r} vs {self.cut!r} ({where})"


@dataclass
class LookaheadReport:
    cuts: list[int] = field(default_factory=list)
    compared: dict[str, int] = field(default_factory=dict)  # check -> values compared
    max_abs: dict[tuple[str, str], float] = field(default_factory=dict)  # (check, column) -> largest difference
    differences: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def add(self, check: str, symbol: str, column: str, ts: np.ndarray, full: np.ndarray, cut: np.ndarray,
            cut_ts: int | None) -> None:  # fmt: skip
        """Compare two aligned arrays (NaN = not available: NaN against a number is a difference)."""
        full, cut = np.asarray(full, dtype=float), np.asarray(cut, dtype=float)
        both_nan = np.isnan(full) & np.isnan(cut)
        if both_nan.all():
            return  # not available on either side (no data source for it): nothing to compare
        diff = np.where(both_nan, 0.0, np.abs(full - cut))
        diff = np.where(np.isnan(diff), np.inf, diff)  # available on one side only
        self.compared[check] = self.compared.get(check, 0) + len(diff)
        if len(diff):
            key = (check, column)
            self.max_abs[key] = max(self.max_abs.get(key, 0.0), float(diff.max()))
        for i in np.flatnonzero(diff > TOLERANCE)[:3]:
            self.differences.append(
                Difference(check, symbol, column, int(ts[i]), cut_ts, float(full[i]), float(cut[i]))
            )


def cut_times(ts: np.ndarray, count: int, skip: int) -> list[int]:
    """``count`` bar times spread evenly over the bars after the first ``skip`` (the warm-up), last excluded."""
    usable = ts[skip:-1] if len(ts) > skip + 1 else ts[:0]
    if len(usable) == 0 or count <= 0:
        return []
    picks = np.unique(np.linspace(0, len(usable) - 1, count).round().astype(int))
    return [int(usable[i]) for i in picks]


def _warmup_bars(config: FactorConfig) -> int:
    c = config
    return max(
        c.trend_ema_slow, c.trend_ema_mid + c.trend_macd_signal, c.structure_window + 1, c.volume_window + 1,
        c.cvd_window, c.flow_window + 1, c.atr_period + 1, c.momentum_rsi_period + 1,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------- study pipeline

Compute = Callable[[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None], pd.DataFrame]


def reference_compute(config: FactorConfig, interval_ns: int) -> Compute:
    """Bars (+ funding, marks) -> factor columns (no scores: those are added for the compared bars only)."""

    def compute(bars: pd.DataFrame, funding: pd.DataFrame | None, marks: pd.DataFrame | None) -> pd.DataFrame:
        return factor_frame(bars, config, interval_ns, funding, marks, scores=False)

    return compute


def check_reference(
    report: LookaheadReport,
    catalog: ParquetDataCatalog,
    symbol: str,
    bar_spec: str,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    config: FactorConfig,
    cuts: list[int],
    compute: Compute | None = None,
) -> pd.DataFrame:
    """The study pipeline on the full data, then cut at each time; returns the full frame (with scores)."""
    compute = compute or reference_compute(config, bar_interval_ns(bar_spec))

    def load(until: pd.Timestamp | None) -> pd.DataFrame:
        bars = bars_frame(catalog, symbol, bar_spec, start, until)
        if bars.empty:
            return pd.DataFrame()
        first, last = int(bars["ts"].iloc[0]), int(bars["ts"].iloc[-1])
        return compute(bars, funding_frame(catalog, symbol, first, last), marks_frame(catalog, symbol, first, last))

    full = load(end)
    if full.empty:
        report.notes.append(f"{symbol}: no {bar_spec} bars in the period")
        return full
    full_scored = add_scores(full, config)
    factor_columns = [c for c in (*ALL_FACTORS,) if c in full]
    for cut in cuts:
        part = load(pd.Timestamp(cut, unit="ns", tz="UTC"))
        if part.empty:
            continue  # the symbol's data starts after this cut: nothing before it to compare
        aligned = full.set_index("ts").reindex(part["ts"])
        for column in factor_columns:
            if column not in part:
                part[column] = np.nan
            report.add(REFERENCE, symbol, column, part["ts"].to_numpy(), aligned[column].to_numpy(),
                       part[column].to_numpy(), cut)  # fmt: skip
        tail = add_scores(part.iloc[-SCORED_TAIL:], config)
        expected = full_scored.set_index("ts").reindex(tail["ts"])
        for column in SCORE_KEYS:
            report.add(REFERENCE, symbol, column, tail["ts"].to_numpy(), expected[column].to_numpy(),
                       tail[column].to_numpy(), cut)  # fmt: skip
    return full_scored


# -------------------------------------------------------------------------------------- strategy pipeline


def book_values(
    catalog: ParquetDataCatalog,
    instrument_ids: list[str],
    bar_spec: str,
    start_ns: int,
    end_ns: int,
    config: FactorConfig,
) -> dict[str, pd.DataFrame]:
    """Replay the catalog's events up to ``end_ns`` through one FactorBook; every symbol's values after each bar.

    BTC and ETH are loaded too when the catalog has them (the market of factor I), as ``ats scan`` does.
    """
    at = pd.Timestamp(end_ns, unit="ns", tz="UTC")
    ids = list(dict.fromkeys([*instrument_ids, *(m for m in (BTC_ID, ETH_ID) if m not in instrument_ids)]))
    events: list = []
    loaded = []
    for iid in ids:
        ev, _ = load_events(catalog, iid, bar_spec, at, 0, config.oi_mean_ns, start_ns)
        if ev:
            events += ev
            loaded.append(iid)
    if not loaded:
        return {}
    market = [InstrumentId.from_str(m) for m in (BTC_ID, ETH_ID) if m in loaded]
    book = FactorBook(
        config,
        [InstrumentId.from_str(i) for i in loaded],
        market[0] if market else None,
        market[1] if len(market) > 1 else None,
    )
    rows: dict[str, list[list[float]]] = {i: [] for i in instrument_ids if i in loaded}

    def record(bar: Bar) -> None:
        iid = bar.bar_type.instrument_id
        out = rows.get(iid.value)
        if out is None:
            return
        result = book.score(iid)
        signal = (
            0.0 if result.direction == FLAT else (result.strength if result.direction == LONG else -result.strength)
        )
        out.append(
            [
                float(bar.ts_event),
                *(np.nan if result.values[k] is None else result.values[k] for k in ALL_FACTORS),
                result.score,
                result.strength,
                signal,
            ]  # fmt: skip
        )

    replay(book, events, record)
    columns = ["ts", *ALL_FACTORS, *SCORE_KEYS]
    frames = {}
    for iid, values in rows.items():
        frame = pd.DataFrame(values, columns=columns)
        frame["ts"] = frame["ts"].astype(np.int64)
        # the strategy reads a score only once a symbol is warm; before that the score is not a signal
        warm = frame[["T", "M", "S", "V", "F"]].notna().all(axis=1)
        frame.loc[~warm, list(SCORE_KEYS)] = np.nan
        frames[iid] = frame
    return frames


def check_book(
    report: LookaheadReport,
    catalog: ParquetDataCatalog,
    symbols: list[str],
    bar_spec: str,
    start_ns: int,
    end_ns: int,
    config: FactorConfig,
    cuts: list[int],
) -> dict[str, pd.DataFrame]:
    ids = [str(instrument_id_for(s)) for s in symbols]
    full = book_values(catalog, ids, bar_spec, start_ns, end_ns, config)
    for cut in cuts:
        part = book_values(catalog, ids, bar_spec, start_ns, cut, config)
        for iid, frame in part.items():
            expected = full[iid].set_index("ts").reindex(frame["ts"])
            for column in (*ALL_FACTORS, *SCORE_KEYS):
                report.add(BOOK, iid.split("-")[0], column, frame["ts"].to_numpy(),
                           expected[column].to_numpy(), frame[column].to_numpy(), cut)  # fmt: skip
    return full


def check_agreement(report: LookaheadReport, symbol: str, study: pd.DataFrame, book: pd.DataFrame) -> None:
    """On the full data, the study's values equal the FactorBook's at every bar (where the study has them)."""
    merged = study.merge(book, on="ts", suffixes=("_study", "_book"))
    for column in (*[k for k in ALL_FACTORS if k in study], "score", "strength", "signal"):
        study_values = merged[f"{column}_study"].to_numpy(dtype=float)
        book_values_ = merged[f"{column}_book"].to_numpy(dtype=float)
        if column in SCORE_KEYS:  # compared where both pipelines give a score (the book's I is not in the study)
            mask = ~np.isnan(study_values) & ~np.isnan(book_values_)
            study_values, book_values_ = study_values[mask], book_values_[mask]
            ts = merged["ts"].to_numpy()[mask]
        else:
            ts = merged["ts"].to_numpy()
        report.add(AGREEMENT, symbol, column, ts, book_values_, study_values, None)


def run_lookahead(
    catalog_path: str,
    symbols: list[str],
    bar_spec: str,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    config: FactorConfig,
    cut_count: int = 10,
    with_book: bool = True,
    progress: Callable[[str], None] | None = None,
) -> LookaheadReport:
    """Both pipelines, cut at ``cut_count`` times spread over the period (after the warm-up)."""
    catalog = ParquetDataCatalog(catalog_path)
    report = LookaheadReport()
    first = bars_frame(catalog, symbols[0], bar_spec, start, end)
    if first.empty:
        raise FileNotFoundError(
            f"no {bar_spec} bars of {symbols[0]} in {catalog_path} for the period; fill the catalog with "
            f"`uv run ats data ingest FOLDER --catalog {catalog_path}`"
        )
    warmup = _warmup_bars(config.in_bars(bar_interval_ns(bar_spec) / 60e9))
    report.cuts = cut_times(first["ts"].to_numpy(), cut_count, warmup)
    study_frames = {}
    for symbol in symbols:
        if progress:
            progress(f"study pipeline: {symbol}")
        study_frames[symbol] = check_reference(report, catalog, symbol, bar_spec, start, end, config, report.cuts)
    if with_book:
        bar_type_files = [s for s in symbols if _has_native_bars(catalog, s, bar_spec)]
        skipped = sorted(set(symbols) - set(bar_type_files))
        if skipped:
            report.notes.append(
                f"FactorBook not run for {', '.join(skipped)}: the catalog has no {bar_spec} bars of its own "
                f"(the strategy trades only catalogued bars; the study aggregated them from 1m)"
            )
        if bar_type_files:
            if progress:
                progress(f"strategy pipeline: {len(bar_type_files)} symbols, {len(report.cuts)} cuts")
            start_ns = int(first["ts"].iloc[0])
            end_ns = int(first["ts"].iloc[-1]) if end is None else int(end.value)
            book = check_book(report, catalog, bar_type_files, bar_spec, start_ns, end_ns, config, report.cuts)
            for symbol in bar_type_files:
                iid = str(instrument_id_for(symbol))
                if iid in book and not study_frames[symbol].empty:
                    check_agreement(report, symbol, study_frames[symbol], book[iid])
    return report


def _has_native_bars(catalog: ParquetDataCatalog, symbol: str, bar_spec: str) -> bool:
    return bars_frame(catalog, symbol, bar_spec).attrs["source"].startswith("catalog")


def format_lookahead(report: LookaheadReport) -> str:
    lines = ["Lookahead check", "---------------"]
    if report.cuts:
        first, last = (pd.Timestamp(report.cuts[i], unit="ns", tz="UTC") for i in (0, -1))
        lines.append(f"data cut at {len(report.cuts)} times from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}")
    for check, count in report.compared.items():
        worst = {c: v for (k, c), v in report.max_abs.items() if k == check}
        shown = "  ".join(f"{c} {v:.1e}" if np.isfinite(v) else f"{c} inf" for c, v in worst.items())
        lines.append(f"{check}: {count:,} values compared; largest difference per column: {shown}")
    lines += [f"note: {n}" for n in report.notes]
    if report.ok:
        lines.append("no lookahead: every value at every bar is the same with the data cut after that bar")
    else:
        lines.append(f"LOOKAHEAD: {len(report.differences)} differences (first 3 per column and cut shown)")
        lines += ["  " + d.describe() for d in report.differences[:40]]
    return "\n".join(lines)
