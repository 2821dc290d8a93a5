"""The backtest report: the tables traders expect, printed and saved with Nautilus's HTML tearsheet."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from nautilus_trader.analysis.tearsheet import create_tearsheet

from nodes.backtest.runner import BacktestOutcome
from nodes.backtest.trade_stats import Summary, by_exit_reason, per_symbol, summarise
from nodes.telegram.report import messages_section

EXIT_REASONS = ("TP1+TP2", "TP1+BREAKEVEN", "STOP", "DYNAMIC", "FLATTEN", "END_OF_DATA")


def _money(value: Any) -> float:
    """'-0.52490240 USDT' (Nautilus report cell) -> -0.5249024."""
    return float(str(value).split()[0])


def ledger_from_positions(positions: pd.DataFrame) -> list[dict[str, Any]]:
    """A trade ledger from Nautilus's positions report, for strategies that keep none of their own."""
    return [
        {
            "instrument": row.instrument_id,
            "direction": "LONG" if row.entry == "BUY" else "SHORT",
            "realized_pnl": _money(row.realized_pnl),
            "duration_s": float(row.duration_ns) / 1e9,
            "exit_reason": "END_OF_DATA" if pd.isna(row.ts_closed) else "CLOSED",
        }
        for row in positions.itertuples()
    ]


def strategy_ledger(outcome: BacktestOutcome) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The strategies' own ledgers and counters where they keep them, else the positions report."""
    strategies = outcome.engine.trader.strategies()
    if strategies and all(hasattr(s, "ledger") for s in strategies):
        trades = [t for s in strategies for t in s.ledger()]
        counters = (
            strategies[0].counters() if len(strategies) == 1 and hasattr(strategies[0], "counters") else None
        )
        return trades, counters
    return ledger_from_positions(outcome.positions), None


def equity_curve(outcome: BacktestOutcome) -> pd.Series:
    account = outcome.account
    if account.empty:
        return pd.Series(dtype=float)
    equity = account["total"].astype(float)
    return equity[~equity.index.duplicated(keep="last")]


def summary(outcome: BacktestOutcome, trades: list[dict[str, Any]]) -> Summary:
    settings = outcome.settings
    equity = equity_curve(outcome)
    if settings.start is not None and settings.end is not None:
        days = (settings.end - settings.start).total_seconds() / 86_400
    else:
        days = (equity.index[-1] - equity.index[0]).total_seconds() / 86_400 if len(equity) > 1 else 0.0
    return summarise(trades, equity, settings.starting_balance, days)


def format_rows(title: str, rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join([title, "-" * len(title)] + [f"{k.ljust(width)}  {v}" for k, v in rows])


def format_frame(title: str, frame: pd.DataFrame) -> str:
    body = frame.to_string(index=False) if not frame.empty else "(none)"
    return f"{title}\n{'-' * len(title)}\n{body}"


def counters_frame(counters: dict[str, Any]) -> pd.DataFrame:
    rows = [{"symbol": "TOTAL", **counters["total"]}]
    rows += [{"symbol": s.split("-")[0], **c} for s, c in counters["per_symbol"].items()]
    return pd.DataFrame(rows)


def run_rows(outcome: BacktestOutcome) -> list[tuple[str, str]]:
    settings = outcome.settings
    return [
        ("period", f"{settings.start} -> {settings.end}"),
        ("symbols", f"{len(settings.symbols)} ({settings.bar_spec} bars)"),
        ("data points replayed", f"{outcome.data_points:,}"),
        (
            "wall time",
            f"{outcome.wall_seconds:.1f} s ({outcome.data_points / max(outcome.wall_seconds, 1e-9):,.0f}/s)",
        ),
        ("orders filled", f"{len(outcome.fills):,}"),
        ("starting balance", f"{settings.starting_balance:,.2f} USDT"),
        (
            "final balance",
            f"{equity_curve(outcome).iloc[-1]:,.2f} USDT" if not outcome.account.empty else "-",
        ),
    ]


@dataclass(frozen=True)
class BacktestReport:
    """The report of one run, computed once: printed, saved and read by tests from the same numbers."""

    text: str
    trades: list[dict[str, Any]]
    counters: dict[str, Any] | None
    summary: Summary


def build_report(outcome: BacktestOutcome) -> BacktestReport:
    trades, counters = strategy_ledger(outcome)
    totals = summary(outcome, trades)
    parts = [
        format_rows("Run", run_rows(outcome)),
        format_rows("Summary", totals.rows()),
        format_frame("Per symbol", per_symbol(trades)),
    ]
    if counters is not None:
        parts.append(format_frame("Exit reasons", by_exit_reason(trades, EXIT_REASONS)))
        parts.append(format_frame("Counters", counters_frame(counters)))
    telegram = messages_section(outcome.engine)  # what a TelegramNotifier actor in the run would have sent
    if telegram:
        parts.append(telegram)
    return BacktestReport("\n\n".join(parts), trades, counters, totals)


def render(outcome: BacktestOutcome) -> str:
    return build_report(outcome).text


def save_report(outcome: BacktestOutcome, report: BacktestReport) -> Path:
    folder = Path(outcome.settings.report_dir) / pd.Timestamp.now("UTC").strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.txt").write_text(report.text + "\n")
    pd.DataFrame(report.trades).to_csv(folder / "trades.csv", index=False)
    outcome.positions.to_csv(folder / "positions.csv")
    outcome.fills.to_csv(folder / "fills.csv")
    outcome.account.to_csv(folder / "account.csv")
    (folder / "summary.json").write_text(
        json.dumps(
            {
                "summary": dict(report.summary.rows()),
                "counters": report.counters,
                "nautilus": {"pnl": outcome.result.stats_pnls, "returns": outcome.result.stats_returns},
            },
            indent=2,
            default=str,
        )
    )
    create_tearsheet(outcome.engine, output_path=str(folder / "tearsheet.html"), title="ats backtest")
    return folder
