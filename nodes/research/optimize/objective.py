"""A trial's metrics (the backtest report's own, from ``nodes.backtest``) and the value the search maximises."""

import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from nodes.backtest.report import equity_curve, strategy_ledger, summary
from nodes.backtest.runner import BacktestOutcome

OBJECTIVES = ("sharpe", "sortino", "calmar", "profit_factor", "total_return")
# A profit factor or Calmar ratio with nothing lost is infinite; the search sees this instead, so one lucky
# trial cannot flatten every other difference in the plots and the importances.
RATIO_CAP = 100.0
RETURNS_FREQUENCY = "1h"  # equity is sampled hourly for the overfitting diagnostics and the stitched curve


@dataclass(frozen=True)
class TrialMetrics:
    trades: int
    total_return_pct: float
    sharpe: float  # annualised from daily equity returns, as the backtest report
    sortino: float
    calmar: float  # annualised return / max drawdown
    profit_factor: float
    max_drawdown_pct: float
    win_rate: float
    wins: int
    gross_profit: float  # USDT, for the profit factor of several windows together
    gross_loss: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrialMetrics":
        return cls(**{k: values[k] for k in cls.__dataclass_fields__})


def calmar_ratio(total_return_pct: float, max_drawdown_pct: float, days: float) -> float:
    if days <= 0 or total_return_pct <= -100:
        return 0.0
    annual_pct = ((1 + total_return_pct / 100) ** (365 / days) - 1) * 100
    if max_drawdown_pct <= 0:
        return math.inf if annual_pct > 0 else 0.0
    return annual_pct / max_drawdown_pct


def metrics_of(outcome: BacktestOutcome) -> TrialMetrics:
    trades, _ = strategy_ledger(outcome)
    totals = summary(outcome, trades)
    pnls = [float(t["realized_pnl"]) for t in trades]
    settings = outcome.settings
    days = (settings.end - settings.start) / pd.Timedelta(days=1) if settings.start and settings.end else 0.0
    return TrialMetrics(
        trades=totals.trades,
        total_return_pct=totals.total_return_pct,
        sharpe=totals.sharpe,
        sortino=totals.sortino,
        calmar=calmar_ratio(totals.total_return_pct, totals.max_drawdown_pct, days),
        profit_factor=totals.profit_factor,
        max_drawdown_pct=totals.max_drawdown_pct,
        win_rate=totals.win_rate,
        wins=sum(p > 0 for p in pnls),
        gross_profit=sum(p for p in pnls if p > 0),
        gross_loss=-sum(p for p in pnls if p <= 0),
    )


def objective_value(metrics: TrialMetrics, objective: str) -> float:
    value = {
        "sharpe": metrics.sharpe,
        "sortino": metrics.sortino,
        "calmar": metrics.calmar,
        "profit_factor": metrics.profit_factor,
        "total_return": metrics.total_return_pct,
    }[objective]
    return max(-RATIO_CAP, min(RATIO_CAP, value)) if objective in ("calmar", "profit_factor") else value


def too_few_trades(metrics: TrialMetrics, min_trades: int) -> str | None:
    """Why the trial's figures say nothing (then it is pruned, never chosen), or None."""
    if metrics.trades < min_trades:
        return f"{metrics.trades} trade(s), fewer than min_trades {min_trades}"
    return None


def hourly_equity(outcome: BacktestOutcome, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Account equity at every whole hour from ``start`` to ``end``: the starting balance until the first change."""
    grid = pd.date_range(start.ceil(RETURNS_FREQUENCY), end, freq=RETURNS_FREQUENCY)
    equity = equity_curve(outcome)
    if equity.empty:
        return pd.Series(outcome.settings.starting_balance, index=grid, dtype=float)
    sampled = equity.reindex(equity.index.union(grid)).ffill().reindex(grid)
    return sampled.fillna(outcome.settings.starting_balance).astype(float)
