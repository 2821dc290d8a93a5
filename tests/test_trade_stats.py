"""The report's statistics, checked by hand on small ledgers."""

import math

import pandas as pd
import pytest

from nodes.backtest.trade_stats import by_exit_reason, max_drawdown_pct, per_symbol, sharpe_sortino, summarise


def _trade(symbol: str, pnl: float, reason: str = "STOP", hours: float = 1.0) -> dict:
    return {
        "instrument": f"{symbol}-PERP.BINANCE",
        "realized_pnl": pnl,
        "exit_reason": reason,
        "duration_s": hours * 3600,
    }


def test_summary_by_hand() -> None:
    trades = [
        _trade("BTCUSDT", 30.0, "TP1+TP2", 2),
        _trade("BTCUSDT", -10.0),
        _trade("ETHUSDT", -20.0, hours=3),
    ]
    index = pd.date_range("2025-01-01", periods=4, freq="1D", tz="UTC")
    equity = pd.Series([1000.0, 1030.0, 1020.0, 1000.0], index=index)
    s = summarise(trades, equity, starting_balance=1000.0, period_days=3)
    assert s.trades == 3
    assert s.win_rate == pytest.approx(1 / 3)
    assert s.profit_factor == pytest.approx(30 / 30)
    assert s.expectancy == pytest.approx(0.0)
    assert s.total_return_pct == pytest.approx(0.0)
    assert s.max_drawdown_pct == pytest.approx((1030 - 1000) / 1030 * 100)
    assert s.average_duration_s == pytest.approx(2 * 3600)


def test_no_losses_gives_infinite_profit_factor_and_no_trades_is_quiet() -> None:
    flat = pd.Series(dtype=float)
    assert math.isinf(summarise([_trade("X", 5.0)], flat, 100.0, 1).profit_factor)
    empty = summarise([], flat, 100.0, 1)
    assert (empty.trades, empty.win_rate, empty.profit_factor) == (0, 0.0, 0.0)


def test_drawdown_and_ratios() -> None:
    index = pd.date_range("2025-01-01", periods=5, freq="1D", tz="UTC")
    equity = pd.Series([100.0, 110.0, 99.0, 120.0, 108.0], index=index)
    assert max_drawdown_pct(equity) == pytest.approx(11 / 110 * 100)
    returns = equity.pct_change().dropna()
    sharpe, sortino = sharpe_sortino(equity)
    assert sharpe == pytest.approx(returns.mean() / returns.std() * math.sqrt(365))
    # the standard downside deviation, over all days (as Nautilus's SortinoRatio, so report and tearsheet agree)
    downside = returns.clip(upper=0)
    assert sortino == pytest.approx(returns.mean() / math.sqrt((downside**2).mean()) * math.sqrt(365))


def test_tables() -> None:
    trades = [_trade("BTCUSDT", 30.0, "TP1+TP2"), _trade("BTCUSDT", -10.0), _trade("ETHUSDT", -20.0)]
    table = per_symbol(trades)
    assert table.to_dict("records")[0] == {
        "symbol": "BTCUSDT",
        "trades": 2,
        "win rate %": 50.0,
        "PnL USDT": 20.0,
        "avg PnL": 10.0,
    }
    reasons = by_exit_reason(trades, ["TP1+TP2", "STOP", "DYNAMIC"]).set_index("exit")
    assert reasons.loc["STOP", "trades"] == 2 and reasons.loc["DYNAMIC", "trades"] == 0
