"""Recursive check: how much do the values in a period depend on how much history came before it?

The same period is computed starting with different amounts of history before it (the study pipeline, equal to
the FactorBook); each run is compared with the run that had the most history. Factors built on windows forget
the past exactly once the window has passed; factors built on EMAs and Wilder averages (T, M, the ATR inside
S and F) forget it only exponentially, so a backtest or a live node that starts with too little history trades
on values the same node with more history would not have. The table says, per factor, the largest difference
left for each history length, and the history after which it stays below the tolerance.
"""

from collections.abc import Callable

import numpy as np
import pandas as pd
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from factors.config import FactorConfig
from nodes.research.study_data import bar_interval_ns, bars_frame, funding_frame, marks_frame
from nodes.research.study_factors import factor_frame

COLUMNS = ("T", "M", "C", "S", "V", "B", "F", "score", "strength", "signal")
DEFAULT_HISTORIES = (50, 100, 200, 400, 800, 1600)  # bars before the period
CONVERGED = 0.01  # factor points (factors are -100..100): below this a history is "enough"


def _frame(
    catalog: ParquetDataCatalog, symbol: str, bar_spec: str, start_ns: int, end: pd.Timestamp | None,
    config: FactorConfig,
) -> pd.DataFrame:  # fmt: skip
    bars = bars_frame(catalog, symbol, bar_spec, pd.Timestamp(start_ns, unit="ns", tz="UTC"), end)
    if bars.empty:
        return pd.DataFrame()
    first, last = int(bars["ts"].iloc[0]), int(bars["ts"].iloc[-1])
    return factor_frame(
        bars, config, bar_interval_ns(bar_spec), funding_frame(catalog, symbol, first, last),
        marks_frame(catalog, symbol, first, last),
    )  # fmt: skip


def run_recursive(
    catalog_path: str,
    symbols: list[str],
    bar_spec: str,
    start: pd.Timestamp,
    end: pd.Timestamp | None,
    config: FactorConfig,
    histories: tuple[int, ...] = DEFAULT_HISTORIES,
    min_score: float = 70.0,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Rows: symbol, history (bars asked), history_had (bars the catalog had), column, max_abs, mean_abs, and
    for the signal, entries_changed (bars where "strength >= min_score in a direction" differs).

    The period is [start, end]; the reference run has the longest history. Bars with no value in the reference
    run (a gap, or a factor without data) are left out.
    """
    catalog = ParquetDataCatalog(catalog_path)
    interval = bar_interval_ns(bar_spec)
    histories = tuple(sorted(set(histories)))
    rows = []
    for symbol in symbols:
        if progress:
            progress(f"recursive: {symbol}")
        runs = {h: _frame(catalog, symbol, bar_spec, start.value - h * interval, end, config) for h in histories}
        longest = runs[histories[-1]]
        if longest.empty:
            continue
        reference = longest[longest["ts"] >= start.value].set_index("ts")
        for h in histories[:-1]:
            run = runs[h]
            had = int((run["ts"] < start.value).sum()) if not run.empty else 0
            got = run.set_index("ts").reindex(reference.index)
            for column in COLUMNS:
                if column not in reference or reference[column].isna().all():
                    continue
                ref = reference[column].to_numpy(dtype=float)
                val = got[column].to_numpy(dtype=float) if column in got else np.full(len(ref), np.nan)
                live = ~np.isnan(ref)
                diff = np.abs(val[live] - ref[live])
                diff = np.where(np.isnan(diff), np.inf, diff)  # a value the shorter history did not have yet
                row = {"symbol": symbol, "history": h, "history_had": had, "reference": histories[-1], "column": column,
                       "max_abs": float(diff.max()) if len(diff) else 0.0,
                       "mean_abs": float(diff.mean()) if len(diff) else 0.0}  # fmt: skip
                if column == "signal":
                    entry_ref = np.abs(ref) >= min_score
                    entry_val = np.abs(np.nan_to_num(val)) >= min_score
                    same_side = np.sign(ref) == np.sign(np.nan_to_num(val))
                    changed = (entry_ref != entry_val) | (entry_ref & entry_val & ~same_side)
                    row["entries_changed"] = int(changed[live].sum())
                rows.append(row)
    return pd.DataFrame(rows)


def format_recursive(table: pd.DataFrame, tolerance: float = CONVERGED) -> str:
    """Largest difference per column (over symbols) for each history, and the history after which all stay
    below ``tolerance``."""
    if table.empty:
        return "Recursive check\n---------------\n(no data)"
    worst = table.groupby(["column", "history"], sort=False)["max_abs"].max().unstack("history")
    worst = worst.reindex([c for c in COLUMNS if c in worst.index])
    enough = {}
    for column, row in worst.iterrows():
        ok = [h for h in row.index if all(row[k] <= tolerance for k in row.index if k >= h)]
        enough[column] = f">= {ok[0]}" if ok else f"> {row.index.max()}"
    shown = worst.map(lambda v: f"{v:.2g}")
    shown.columns = [f"{h} bars" for h in worst.columns]
    shown[f"history for < {tolerance:g}"] = pd.Series(enough)
    lines = [
        "Recursive check",
        "---------------",
        "largest |value - value with more history| over the period and "
        f"{table['symbol'].nunique()} symbols, by bars of history before the period (compared with a run that "
        f"had {int(table['reference'].max())} bars)",
        shown.to_string(),
    ]
    if "entries_changed" in table:
        changed = table[table["column"] == "signal"].groupby("history")["entries_changed"].sum()
        lines.append("bars where the entry decision (|signal| >= min_score, side) differs: "
                     + ", ".join(f"{h} bars: {int(n)}" for h, n in changed.items()))  # fmt: skip
    return "\n".join(lines)
