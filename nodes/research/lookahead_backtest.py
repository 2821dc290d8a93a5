"""Lookahead check of the strategy's decisions: a backtest that ends at t makes the same orders before t.

The config's backtest is run on its whole period, then again with the period ending at each cut time. Every
order that filled before the cut (entries, stops, targets, dynamic exits: instrument, side, type, quantity,
prices, tags, times) must be the same in both runs. A decision that changes when later data is absent used that
data.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pandas as pd

from nodes.backtest.runner import run_backtest
from nodes.settings import BacktestSettings

# the fills report's columns that describe a decision (ids and venue-side bookkeeping left out)
DECISION_COLUMNS = (
    "instrument_id", "side", "type", "quantity", "filled_qty", "avg_px", "price", "trigger_price", "tags",
    "ts_init", "ts_last",
)  # fmt: skip


@dataclass
class BacktestCutReport:
    cuts: list[pd.Timestamp] = field(default_factory=list)
    compared: list[tuple[pd.Timestamp, int, int]] = field(default_factory=list)  # cut, entries, other fills
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


def _decisions(fills: pd.DataFrame, before: pd.Timestamp) -> pd.DataFrame:
    if fills.empty:
        return pd.DataFrame(columns=list(DECISION_COLUMNS))
    frame = fills.reset_index()
    frame = frame[pd.to_datetime(frame["ts_last"], utc=True) < before]
    columns = [c for c in DECISION_COLUMNS if c in frame]
    out = frame[columns].astype(str).sort_values(["ts_last", "instrument_id", "ts_init"]).reset_index(drop=True)
    return out


def default_cuts(settings: BacktestSettings, count: int) -> list[pd.Timestamp]:
    if settings.start is None or settings.end is None:
        raise ValueError("the backtest lookahead check needs a config with [backtest] start and end")
    span = settings.end - settings.start
    return [settings.start + span * (k / (count + 1)) for k in range(1, count + 1)]


def check_backtest_cuts(
    settings: BacktestSettings, cuts: list[pd.Timestamp], progress: Callable[[str], None] | None = None
) -> BacktestCutReport:
    report = BacktestCutReport(cuts=list(cuts))
    if progress:
        progress(f"backtest: full period {settings.start} -> {settings.end}")
    full = run_backtest(settings, progress)
    full_fills = full.fills
    full.engine.dispose()
    for cut in cuts:
        if progress:
            progress(f"backtest: period cut at {cut}")
        outcome = run_backtest(replace(settings, end=cut), progress)
        cut_fills = outcome.fills
        outcome.engine.dispose()
        expected, got = _decisions(full_fills, cut), _decisions(cut_fills, cut)
        entries = int(expected["tags"].str.contains("ATS:ENTRY").sum()) if "tags" in expected else 0
        report.compared.append((cut, entries, len(expected) - entries))
        if expected.equals(got):
            continue
        merged = expected.merge(got, how="outer", indicator=True)
        for row in merged[merged["_merge"] != "both"].head(10).itertuples(index=False):
            side = "only in the full run" if row._merge == "left_only" else "only in the run cut at the time"
            what = ", ".join(f"{c}={getattr(row, c)}" for c in expected.columns)
            report.differences.append(f"cut {cut}: fill {side}: {what}")
    return report


def format_backtest_cuts(report: BacktestCutReport) -> str:
    lines = ["Backtest decisions cut at t", "---------------------------"]
    for cut, entries, others in report.compared:
        lines.append(f"cut at {cut}: {entries} entries and {others} other fills before it compared")
    if report.ok:
        lines.append("no lookahead: every order filled before each cut is the same in the run that ends there")
    else:
        lines.append(f"LOOKAHEAD: {len(report.differences)} fills differ")
        lines += ["  " + d for d in report.differences[:30]]
    return "\n".join(lines)
