"""Trade statistics traders expect, as plain functions of a trade ledger and an equity curve."""

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Summary:
    trades: int
    win_rate: float  # fraction of trades with pnl > 0
    profit_factor: float  # gross profit / gross loss; inf when nothing was lost
    expectancy: float  # mean pnl per trade, USDT
    total_pnl: float
    total_return_pct: float
    per_day_return_pct: float  # compounded daily rate that gives the total return over the period
    max_drawdown_pct: float  # largest peak-to-trough fall of the equity curve
    sharpe: float  # annualised (365 days) from daily equity returns
    sortino: float
    average_duration_s: float

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("trades", f"{self.trades}"),
            ("win rate", f"{self.win_rate:.1%}"),
            ("profit factor", "inf" if math.isinf(self.profit_factor) else f"{self.profit_factor:.2f}"),
            ("expectancy", f"{self.expectancy:,.2f} USDT / trade"),
            ("total PnL", f"{self.total_pnl:,.2f} USDT"),
            ("total return", f"{self.total_return_pct:.2f} %"),
            ("return per day", f"{self.per_day_return_pct:.3f} %"),
            ("max drawdown", f"{self.max_drawdown_pct:.2f} %"),
            ("Sharpe (365 d)", f"{self.sharpe:.2f}"),
            ("Sortino (365 d)", f"{self.sortino:.2f}"),
            ("average duration", format_duration(self.average_duration_s)),
        ]


def format_duration(seconds: float) -> str:
    if seconds != seconds:  # NaN: no trades
        return "-"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


def max_drawdown_pct(equity: pd.Series) -> float:
    if equity.empty:
        return 0.0
    peak = equity.cummax()
    return float(((peak - equity) / peak).max() * 100)


def _daily_returns(equity: pd.Series) -> pd.Series:
    daily = equity.resample("1D").last().ffill()
    return daily.pct_change().dropna()


def sharpe_sortino(equity: pd.Series) -> tuple[float, float]:
    returns = _daily_returns(equity) if not equity.empty else pd.Series(dtype=float)
    if len(returns) < 2:
        return 0.0, 0.0
    mean, std = returns.mean(), returns.std()
    downside = returns[returns < 0]
    down_std = math.sqrt((downside**2).mean()) if len(downside) else 0.0
    scale = math.sqrt(365)
    sharpe = mean / std * scale if std > 0 else 0.0
    sortino = mean / down_std * scale if down_std > 0 else 0.0
    return float(sharpe), float(sortino)


def summarise(
    trades: Sequence[dict[str, Any]], equity: pd.Series, starting_balance: float, period_days: float
) -> Summary:
    pnls = [float(t["realized_pnl"]) for t in trades]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p <= 0]
    gross_loss = -sum(losses)
    total = sum(pnls)
    total_return = total / starting_balance
    per_day = (
        ((1 + total_return) ** (1 / period_days) - 1) * 100 if period_days > 0 and total_return > -1 else 0.0
    )
    sharpe, sortino = sharpe_sortino(equity)
    return Summary(
        trades=len(pnls),
        win_rate=len(wins) / len(pnls) if pnls else 0.0,
        profit_factor=(sum(wins) / gross_loss) if gross_loss > 0 else (math.inf if wins else 0.0),
        expectancy=total / len(pnls) if pnls else 0.0,
        total_pnl=total,
        total_return_pct=total_return * 100,
        per_day_return_pct=per_day,
        max_drawdown_pct=max_drawdown_pct(equity),
        sharpe=sharpe,
        sortino=sortino,
        average_duration_s=(
            sum(float(t["duration_s"]) for t in trades) / len(trades) if trades else float("nan")
        ),
    )


def per_symbol(trades: Sequence[dict[str, Any]]) -> pd.DataFrame:
    groups: dict[str, list[float]] = defaultdict(list)
    for trade in trades:
        groups[trade["instrument"].split("-")[0]].append(float(trade["realized_pnl"]))
    rows = [
        {
            "symbol": symbol,
            "trades": len(pnls),
            "win rate %": round(100 * sum(p > 0 for p in pnls) / len(pnls), 1),
            "PnL USDT": round(sum(pnls), 2),
            "avg PnL": round(sum(pnls) / len(pnls), 2),
        }
        for symbol, pnls in sorted(groups.items())
    ]
    return pd.DataFrame(rows, columns=["symbol", "trades", "win rate %", "PnL USDT", "avg PnL"])


def by_exit_reason(trades: Sequence[dict[str, Any]], reasons: Sequence[str]) -> pd.DataFrame:
    rows = []
    for reason in reasons:
        pnls = [float(t["realized_pnl"]) for t in trades if t["exit_reason"] == reason]
        rows.append(
            {
                "exit": reason,
                "trades": len(pnls),
                "share %": round(100 * len(pnls) / len(trades), 1) if trades else 0.0,
                "PnL USDT": round(sum(pnls), 2),
            }
        )
    return pd.DataFrame(rows, columns=["exit", "trades", "share %", "PnL USDT"])
