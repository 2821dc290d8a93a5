"""The backtest report: printed tables and files saved under the config's report folder."""

import json
from pathlib import Path

import pandas as pd

from nodes.backtest import BacktestOutcome


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 100 else f"{value:,.2f}"
    return str(value)


def summary_rows(outcome: BacktestOutcome) -> list[tuple[str, str]]:
    result = outcome.result
    stats = result.stats_pnls.get("USDT", {})
    rows = [
        ("period", f"{outcome.settings.start} -> {outcome.settings.end}"),
        ("symbols", str(len(outcome.settings.symbols))),
        ("data points replayed", f"{outcome.data_points:,}"),
        ("wall time", f"{outcome.wall_seconds:.1f} s ({outcome.data_points / max(outcome.wall_seconds, 1e-9):,.0f}/s)"),
        ("orders", f"{len(outcome.fills):,} filled"),
        ("positions", f"{len(outcome.positions):,}"),
    ]
    rows += [(k, _fmt(v)) for k, v in stats.items()]
    rows += [(k, _fmt(v)) for k, v in result.stats_returns.items()]
    return rows


def format_rows(title: str, rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join([title, "-" * len(title)] + [f"{k.ljust(width)}  {v}" for k, v in rows])


def print_report(outcome: BacktestOutcome) -> None:
    print(format_rows("Backtest summary", summary_rows(outcome)))


def save_report(outcome: BacktestOutcome) -> Path:
    folder = Path(outcome.settings.report_dir) / pd.Timestamp.now("UTC").strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    outcome.positions.to_csv(folder / "positions.csv")
    outcome.fills.to_csv(folder / "fills.csv")
    outcome.account.to_csv(folder / "account.csv")
    (folder / "summary.json").write_text(json.dumps(dict(summary_rows(outcome)), indent=2))
    return folder
