"""The backtest report: the tables traders expect, from the strategy's ledger reconciled with the account (saved by
report_files.py)."""

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from nautilus_trader.adapters.binance.common.types import BinanceBar
from nautilus_trader.model.enums import OrderSide

from catalog.instruments import VENUE, instrument_id_for
from catalog.inventory import rows_between, series_timestamps
from nodes.backtest.runner import BacktestOutcome
from nodes.backtest.trade_stats import (
    Summary,
    by_exit_reason,
    daily_returns,
    per_symbol,
    summarise,
)
from nodes.telegram.report import messages_section

EXIT_REASONS = ("TP1+TP2", "TP1+BREAKEVEN", "STOP", "DYNAMIC", "FLATTEN", "END_OF_DATA")


COUNTER_COLUMNS = {  # what each strategy counter counts, named so a reader can reconcile it with the exits
    "entries": "entries",
    "tp1": "TP1 fills",
    "tp2": "TP2 fills",
    "stops": "closed by a stop",
    "breakeven": "stop to break-even",
    "dynamic": "dynamic stop moves/exits",
    "refused": "signals refused",
}
COUNTERS_NOTE = (
    "Counters count events, the exit table counts trades: 'closed by a stop' is every trade whose last fill was a\n"
    "stop order (initial, break-even or moved by the dynamic rule), so it adds up the STOP trades and the\n"
    "TP1+BREAKEVEN and DYNAMIC trades that ended on their stop; 'dynamic stop moves/exits' counts each tightening,\n"
    "trailing step or dynamic exit, several per trade."
)


def position_trades(positions: list[Any]) -> list[dict[str, Any]]:
    """A trade ledger from Nautilus's positions (NETTING snapshots included), for strategies that keep none of
    their own: one trade per row of the positions report (``Trader.generate_positions_report``), in its order
    (open time, close time, position id), with the values the report's cells give, read from the positions
    directly instead of through the report."""
    if not positions:
        return []
    still_open = [p.ts_closed == 0 for p in positions]  # the report's ts_closed is empty
    # the report's ts_closed column is float when a position is still open: its sort compares the floats
    closed_key = float if any(still_open) else int
    order = sorted(
        range(len(positions)),
        key=lambda i: (
            positions[i].ts_opened,
            still_open[i],
            0 if still_open[i] else closed_key(positions[i].ts_closed),
            positions[i].id.value,
        ),
    )
    trades = []
    for i in order:
        p = positions[i]
        trades.append(
            {
                "instrument": p.instrument_id.value,
                "direction": "LONG" if p.entry == OrderSide.BUY else "SHORT",
                "entry_time_ns": p.ts_opened,
                "exit_time_ns": p.ts_last if still_open[i] else p.ts_closed,
                "realized_pnl": float(str(p.realized_pnl).split()[0]),  # the report's text, as a float
                "funding": 0.0,
                "duration_s": float(p.duration_ns) / 1e9 if p.duration_ns > 0 else math.nan,
                "exit_reason": "END_OF_DATA" if still_open[i] else "CLOSED",
            }
        )
    return trades


def strategy_ledger(outcome: BacktestOutcome) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The strategies' own ledgers and counters where they keep them, else the positions report; each trade's
    funding is what the simulated venue settled while it was open (see ``with_venue_funding``)."""
    strategies = outcome.engine.trader.strategies()
    if strategies and all(hasattr(s, "ledger") for s in strategies):
        trades = [dict(t) for s in strategies for t in s.ledger()]
        counters = strategies[0].counters() if len(strategies) == 1 and hasattr(strategies[0], "counters") else None
    else:
        trades, counters = position_trades([*outcome.record.positions, *outcome.record.position_snapshots]), None
    payments = outcome.funding.payments if outcome.funding is not None else []
    return with_venue_funding(trades, payments), counters


def with_venue_funding(trades: list[dict[str, Any]], payments: list[tuple[str, int, float]]) -> list[dict[str, Any]]:
    """Trades whose ``funding`` (received positive) and ``realized_pnl`` carry the funding the venue booked to
    the account while each was open, instead of a strategy's own estimate: the trades then add up to the
    account's balance to the cent. ``payments``: (instrument id, ts, paid: positive = cost)."""
    by_instrument: dict[str, list[tuple[int, float]]] = {}
    for instrument, ts, paid in payments:
        by_instrument.setdefault(instrument, []).append((ts, paid))
    booked = [0.0] * len(trades)
    # Each payment goes to the first trade (by entry) whose span holds it: the trades of the instruments paid are
    # visited by instrument and entry (no trade at all when nothing was paid). With an instrument's payments in
    # time order, those of a span are one slice (found by bisection) and are booked in the same order as one pass
    # over them all would book them.
    times = {i: [ts for ts, _ in queue] for i, queue in by_instrument.items()}
    in_order = {i: all(a <= b for a, b in zip(t, t[1:], strict=False)) for i, t in times.items()}
    paid_for = [n for n, trade in enumerate(trades) if trade["instrument"] in by_instrument]
    for n in sorted(paid_for, key=lambda n: (trades[n]["instrument"], trades[n].get("entry_time_ns", 0))):
        trade = trades[n]
        instrument = trade["instrument"]
        queue = by_instrument[instrument]
        entry, exit_ = trade.get("entry_time_ns"), trade.get("exit_time_ns")
        if entry is None or exit_ is None or not queue:
            continue
        if in_order[instrument]:
            stamps = times[instrument]
            low, high = bisect_left(stamps, entry), bisect_right(stamps, exit_)
            for _, paid in queue[low:high]:
                booked[n] -= paid
            del queue[low:high], stamps[low:high]
        else:
            kept = []
            for ts, paid in queue:
                if entry <= ts <= exit_:
                    booked[n] -= paid
                else:
                    kept.append((ts, paid))
            by_instrument[instrument] = kept
    out = [
        {
            **trade,
            "realized_pnl": float(trade["realized_pnl"]) - float(trade.get("funding", 0.0) or 0.0) + funding,
            "funding": funding,
        }
        for trade, funding in zip(trades, booked, strict=True)
    ]
    # by exit, then instrument, then entry: ties keep the trades' own order
    out.sort(key=lambda t: (t.get("exit_time_ns", 0), t["instrument"], t.get("entry_time_ns", 0)))
    return out


def unrealised_at_end(outcome: BacktestOutcome) -> float:
    """Unrealised PnL of the positions still open when the data ended (USDT)."""
    pnls = outcome.engine.portfolio.unrealized_pnls(VENUE)
    return float(sum(m.as_double() for m in pnls.values())) if pnls else 0.0


def equity_curve(outcome: BacktestOutcome) -> pd.Series:
    """Account equity through the run: the starting balance (stamped the day before the first day, so daily
    returns count the first day), every account state, and the final equity (balance plus what is still open)."""
    equity = outcome.balances
    start = outcome.settings.starting_balance
    if equity.empty:
        return pd.Series(dtype=float)
    equity = equity[~equity.index.duplicated(keep="last")]
    first_day = equity.index[0].normalize()
    points = [pd.Series([start], index=[first_day - pd.Timedelta(days=1)]), equity]
    unrealised = unrealised_at_end(outcome)
    if unrealised:
        last = pd.Timestamp(outcome.engine.kernel.clock.timestamp_ns(), tz="UTC")
        points.append(pd.Series([equity.iloc[-1] + unrealised], index=[max(last, equity.index[-1])]))
    curve = pd.concat(points)
    return curve[~curve.index.duplicated(keep="last")].sort_index()


def summary(outcome: BacktestOutcome, trades: list[dict[str, Any]]) -> Summary:
    settings = outcome.settings
    equity = equity_curve(outcome)
    if settings.start is not None and settings.end is not None:
        days = (settings.end - settings.start).total_seconds() / 86_400
    else:
        days = (equity.index[-1] - equity.index[1]).total_seconds() / 86_400 if len(equity) > 2 else 0.0
    return summarise(trades, equity, settings.starting_balance, days)


def format_rows(title: str, rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join([title, "-" * len(title)] + [f"{k.ljust(width)}  {v}" for k, v in rows])


def format_frame(title: str, frame: pd.DataFrame, note: str = "") -> str:
    body = frame.to_string(index=False) if not frame.empty else "(none)"
    return f"{title}\n{'-' * len(title)}\n{body}" + (f"\n{note}" if note else "")


def counters_frame(counters: dict[str, Any]) -> pd.DataFrame:
    rows = [{"symbol": "TOTAL", **counters["total"]}]
    rows += [{"symbol": s.split("-")[0], **c} for s, c in counters["per_symbol"].items()]
    return pd.DataFrame(rows).rename(columns=COUNTER_COLUMNS)


def _time(ns: int | None) -> str:
    return "-" if ns is None else pd.Timestamp(ns, tz="UTC").strftime("%Y-%m-%d %H:%M")


def iso(ns: int | None) -> str | None:
    """ISO-8601 UTC time of epoch ns: 2025-05-10T05:00:00Z."""
    return None if ns is None else pd.Timestamp(ns, tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class SymbolData:
    """What the run had for one symbol."""

    symbol: str
    bars: int
    bar_type: str
    taker_buy_volume: bool  # Binance klines (BinanceBar): the taker-flow factor can run
    first_bar_ns: int | None
    last_bar_ns: int | None
    funding_rates: int  # funding updates replayed
    funding: float  # received (positive) or paid, as settled by the venue
    mark_prices: int
    instrument_time_ns: int | None  # when Binance's definition used (tick size, lot step) was taken


def symbol_data(outcome: BacktestOutcome) -> list[SymbolData]:
    settings = outcome.settings
    start_ns, end_ns = (None if t is None else t.value for t in (settings.start, settings.end))
    module = outcome.funding
    rows = []
    for symbol in settings.symbols:
        ready = outcome.replayed.get(symbol)
        instrument_id = instrument_id_for(symbol).value
        counts = {
            folder: rows_between(series_timestamps(settings.catalog, folder, instrument_id), start_ns, end_ns)
            for folder in ("funding_rate_update", "mark_price_update")
        }
        instrument = outcome.instruments.get(symbol)
        rows.append(
            SymbolData(
                symbol=symbol,
                bars=ready.rows if ready else 0,
                bar_type=ready.bar_type if ready else "",
                taker_buy_volume=bool(ready and ready.bar_class is BinanceBar),
                first_bar_ns=ready.first_ns if ready else None,
                last_bar_ns=ready.last_ns if ready else None,
                funding_rates=counts["funding_rate_update"],
                funding=-(module.totals.get(instrument_id, 0.0) if module else 0.0),
                mark_prices=counts["mark_price_update"],
                instrument_time_ns=instrument.ts_init if instrument is not None else None,
            )
        )
    return rows


def data_frame(rows: list[SymbolData]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "symbol": r.symbol,
                "bars": f"{r.bars:,}",
                "taker-buy": "yes" if r.taker_buy_volume else "no",
                "first bar": _time(r.first_bar_ns),
                "last bar": _time(r.last_bar_ns),
                "funding rates": r.funding_rates,
                "funding USDT": round(r.funding, 2),
                "mark prices": r.mark_prices,
                "instrument as of": _time(r.instrument_time_ns)[:10],
            }
            for r in rows
        ]
    )


def funding_text(outcome: BacktestOutcome, rows: list[SymbolData]) -> str:
    module = outcome.funding
    lacking = [r.symbol for r in rows if r.funding_rates == 0]
    if module is None:
        return "not settled (no funding settlement module in this run)"
    total = -sum(module.totals.values())
    text = f"settled {module.settlements:,} times, net {total:+,.2f} USDT ({'received' if total >= 0 else 'paid'})"
    if lacking:
        text += f"; not settled for {', '.join(lacking)}: no funding rates in the catalog for the period"
    return text


def factors_text(outcome: BacktestOutcome) -> list[tuple[str, str]]:
    coverage = outcome.factor_coverage
    if coverage is None or not coverage.samples:
        return []
    rows = [(key, f"{info['share']:.0%} of the run: {info['reason']}") for key, info in coverage.unavailable().items()]
    return rows or [("all factors", "available throughout the run")]


def money_rows(outcome: BacktestOutcome, trades: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Starting balance + trades + funding = final balance; + still open = final equity = starting + total PnL."""
    settings = outcome.settings
    funding = sum(t["funding"] for t in trades)
    pnl = sum(t["realized_pnl"] for t in trades)
    final = float(outcome.balances.iloc[-1]) if not outcome.balances.empty else 0.0
    unrealised = unrealised_at_end(outcome)
    return [
        ("starting balance", f"{settings.starting_balance:,.2f} USDT"),
        ("trades, after fees", f"{pnl - funding:+,.2f} USDT"),
        ("funding", f"{funding:+,.2f} USDT"),
        ("final balance", f"{final:,.2f} USDT"),
        ("still open at the end", f"{unrealised:+,.2f} USDT (unrealised)"),
        ("final equity", f"{final + unrealised:,.2f} USDT"),
        (
            "total PnL",
            f"{pnl:+,.2f} USDT (the trades' sum; final equity - starting balance = "
            f"{final + unrealised - settings.starting_balance:+,.2f})",
        ),
    ]


def run_rows(outcome: BacktestOutcome) -> list[tuple[str, str]]:
    settings = outcome.settings
    bars = sum(outcome.bars.values())
    return [
        ("period", f"{settings.start} -> {settings.end}"),
        ("symbols", f"{len(settings.symbols)} ({settings.bar_spec} bars)"),
        ("bars replayed", f"{bars:,} (per symbol below)"),
        ("data points replayed", f"{outcome.data_points:,}"),
        (
            "wall time",
            f"{outcome.wall_seconds:.1f} s ({outcome.data_points / max(outcome.wall_seconds, 1e-9):,.0f}/s)",
        ),
        ("orders filled", f"{outcome.orders_filled:,}"),
        ("starting balance", f"{settings.starting_balance:,.2f} USDT"),
        (
            "final balance",
            f"{outcome.balances.iloc[-1]:,.2f} USDT" if not outcome.balances.empty else "-",
        ),
        ("funding", funding_text(outcome, symbol_data(outcome))),
    ]


@dataclass(frozen=True)
class BacktestReport:
    """The report of one run, computed once: printed, saved and read by tests from the same numbers."""

    text: str
    trades: list[dict[str, Any]]
    counters: dict[str, Any] | None
    summary: Summary
    data: list[SymbolData] = field(default_factory=list)
    returns: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))  # daily, first day included


def build_report(outcome: BacktestOutcome) -> BacktestReport:
    trades, counters = strategy_ledger(outcome)
    totals = summary(outcome, trades)
    data = symbol_data(outcome)
    parts = [
        format_rows("Run", run_rows(outcome)),
        format_frame("Data", data_frame(data)),
    ]
    factors = factors_text(outcome)
    if factors:
        parts.append(format_rows("Factors unavailable (share of the run's hourly samples of warm symbols)", factors))
    parts += [
        format_rows("Summary", totals.rows()),
        format_rows("Money", money_rows(outcome, trades)),
        format_frame("Per symbol", per_symbol(trades)),
    ]
    if counters is not None:
        parts.append(format_frame("Exit reasons", by_exit_reason(trades, EXIT_REASONS)))
        parts.append(format_frame("Counters", counters_frame(counters), COUNTERS_NOTE))
    telegram = messages_section(outcome.engine)  # what a TelegramNotifier actor in the run would have sent
    if telegram:
        parts.append(telegram)
    returns = daily_returns(equity_curve(outcome))
    return BacktestReport("\n\n".join(parts), trades, counters, totals, data, returns)


def render(outcome: BacktestOutcome) -> str:
    return build_report(outcome).text
