"""``ats plot``: a backtest report's trades on the chart, one HTML page per symbol (freqtrade's plot-dataframe).

Each page: the candles; every entry (triangle, hover: direction, strength, leverage, result) and every exit
fill marked with what it was (TP1, TP2, stop, break-even stop, dynamic stop, dynamic exit, flatten, end of
data); the stop and target levels over each trade's life, drawn from the report's ``orders.parquet`` (every stop and
target the strategy placed, including the ones it cancelled when it moved them); below, the score and the
signal with the entry threshold, and every factor. The factors are recomputed from the same catalog and factor
settings (``run.json``, ``config.toml`` of the report) with the study pipeline, which equals the FactorBook.
"""

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from plotly.subplots import make_subplots

from factors.config import FactorConfig
from nodes.research.study_data import bar_interval_ns, bars_frame, funding_frame, marks_frame
from nodes.research.study_factors import factor_frame

ROLE_STYLE = {  # exit level -> line colour, dash
    "stop": ("#d62728", "solid"),
    "break-even stop": ("#ff7f0e", "solid"),
    "dynamic stop": ("#9467bd", "solid"),
    "TP1": ("#2ca02c", "dot"),
    "TP2": ("#17becf", "dot"),
    "TP2 trailed": ("#1f77b4", "dot"),
}
FACTOR_COLORS = {
    "T": "#1f77b4",
    "M": "#ff7f0e",
    "C": "#2ca02c",
    "S": "#d62728",
    "V": "#9467bd",
    "B": "#8c564b",
    "F": "#e377c2",
}
CLOSED = ("FILLED", "CANCELED", "EXPIRED", "REJECTED", "DENIED")


@dataclass
class BacktestRun:
    """What ``ats plot`` reads from a report folder."""

    folder: Path
    trades: pd.DataFrame
    orders: pd.DataFrame  # every order (orders.parquet), or only the filled ones (fills.csv of older reports)
    every_order: bool
    catalog: Path
    symbols: list[str]
    bar_spec: str
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    factor_config: FactorConfig
    min_score: float


def read_orders(folder: Path) -> pd.DataFrame:
    """Every order of the report (``orders.parquet``; ``orders.csv`` of reports written before it), else the
    filled ones (``fills.csv`` of reports older still)."""
    if (folder / "orders.parquet").is_file():
        return pd.read_parquet(folder / "orders.parquet")
    return pd.read_csv(folder / ("orders.csv" if (folder / "orders.csv").is_file() else "fills.csv"))


def _ns(column: pd.Series) -> pd.Series:
    """Order times as ns: orders.parquet holds UTC times, orders.csv integers, fills.csv datetime text."""
    if pd.api.types.is_numeric_dtype(column):
        return column.astype("Int64")
    return pd.to_datetime(column, utc=True).dt.as_unit("ns").astype("int64")


def load_run(folder: Path, config: Path | None = None) -> BacktestRun:
    """The report's trades, orders and run inputs; ``config`` replaces the report's own config.toml."""
    from nodes.research.study_config import strategy_settings
    from nodes.settings import ConfigError, load_backtest_settings

    folder = Path(folder)
    if not (folder / "trades.csv").is_file():
        raise FileNotFoundError(f"{folder} is not a backtest report folder (no trades.csv); `ats backtest` writes them")
    settings = load_backtest_settings(
        config or (folder / "config.toml" if (folder / "config.toml").is_file() else None)
    )
    factors, strategy = strategy_settings(settings)
    run_file = folder / "run.json"
    if run_file.is_file():
        run = json.loads(run_file.read_text())
    elif config is not None:
        run = {
            "catalog": str(settings.catalog),
            "symbols": list(settings.symbols),
            "bar_spec": settings.bar_spec,
            "start": settings.start,
            "end": settings.end,
        }
    else:
        raise ConfigError(
            folder,
            "the report has no run.json (made before ats plot existed): give --config, the "
            "backtest config it was run with",
        )
    every_order = (folder / "orders.parquet").is_file() or (folder / "orders.csv").is_file()
    orders = read_orders(folder)
    if not orders.empty:
        orders["ts_init"], orders["ts_last"] = _ns(orders["ts_init"]), _ns(orders["ts_last"])
    trades = pd.read_csv(folder / "trades.csv") if (folder / "trades.csv").stat().st_size > 1 else pd.DataFrame()
    for column in ("entry_time", "exit_time"):  # trades.csv holds ISO-8601 times; the levels work in epoch ns
        if column in trades and f"{column}_ns" not in trades:
            trades[f"{column}_ns"] = _ns(trades[column])

    def stamp(value: object) -> pd.Timestamp | None:
        return None if value in (None, "") else pd.Timestamp(value)

    return BacktestRun(
        folder=folder,
        trades=trades,
        orders=orders,
        every_order=every_order,
        catalog=Path(run["catalog"]),
        symbols=list(run["symbols"]),
        bar_spec=run["bar_spec"],
        start=stamp(run["start"]),
        end=stamp(run["end"]),
        factor_config=factors,
        min_score=strategy.min_score,
    )


def _tag(tags: object) -> str:
    text = str(tags)
    for tag in ("ATS:ENTRY", "ATS:SL", "ATS:TP1", "ATS:TP2", "ATS:EXIT", "ATS:FLATTEN"):
        if tag in text:
            return tag
    return ""


def _level(order: pd.Series) -> float:
    if order["type"] in ("STOP_MARKET", "MARKET_IF_TOUCHED", "STOP_LIMIT") and pd.notna(order.get("trigger_price")):
        return float(order["trigger_price"])
    return float(order["price"]) if pd.notna(order.get("price")) else float("nan")


# A market close (ATS:EXIT) stands for what the ledger says ended the trade: a dynamic exit, or a stop the venue
# refused (closed at market in its place).
_MARKET_EXIT = {"DYNAMIC": "DYNAMIC EXIT", "STOP": "STOP (at market)", "TP1+BREAKEVEN": "BREAK-EVEN STOP (at market)"}
_STOP_FILL = {"stop": "STOP", "break-even stop": "BREAK-EVEN STOP", "dynamic stop": "DYNAMIC STOP"}


def _exit_label(tag: str, stop_role: str, exit_reason: str) -> str:
    if tag == "ATS:SL":
        return _STOP_FILL.get(stop_role, "STOP")
    if tag == "ATS:EXIT":
        return _MARKET_EXIT.get(exit_reason, "EXIT (market)")
    return {"ATS:TP1": "TP1", "ATS:TP2": "TP2", "ATS:FLATTEN": "FLATTEN"}.get(tag, tag)


def trade_levels(run: BacktestRun, instrument: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(levels, exits) of one instrument's trades.

    levels: trade, role, price, start_ns, end_ns: each stop / target order alive during a trade (a new row each
    time the strategy replaced it). exits: ts, price, quantity, label of every exit fill, plus the END_OF_DATA
    marks of trades still open at the end.
    """
    trades = run.trades[run.trades["instrument"] == instrument] if not run.trades.empty else run.trades
    orders = run.orders[run.orders["instrument_id"] == instrument].copy() if not run.orders.empty else run.orders
    level_rows, exit_rows = [], []
    if not orders.empty:
        orders["tag"] = orders["tags"].map(_tag)
    entries_ns = [int(t) for t in trades["entry_time_ns"]] if not trades.empty else []
    for k, trade in enumerate(trades.itertuples()):
        entry_ns, exit_ns = int(trade.entry_time_ns), int(trade.exit_time_ns)
        # A trade can end on the bar the next one opens: that bar's new exit orders are the next trade's.
        next_entry_ns = entries_ns[k + 1] if k + 1 < len(entries_ns) else None
        before_next = orders["ts_init"] < next_entry_ns if next_entry_ns is not None else True
        mine = (
            orders[(orders["ts_init"] >= entry_ns) & (orders["ts_init"] <= exit_ns) & before_next].sort_values(
                "ts_init"
            )
            if not orders.empty
            else orders
        )
        stops_seen, tp2_seen, stop_roles = 0, 0, {}
        for _, order in mine.iterrows():
            tag = order["tag"]
            if tag not in ("ATS:SL", "ATS:TP1", "ATS:TP2"):
                continue
            price = _level(order)
            if tag == "ATS:SL":
                if stops_seen == 0:
                    role = "stop"
                elif np.isclose(price, trade.entry_price, rtol=1e-9, atol=0):
                    role = "break-even stop"
                else:
                    role = "dynamic stop"
                stops_seen += 1
                stop_roles[order["client_order_id"]] = role
            elif tag == "ATS:TP1":
                role = "TP1"
            else:
                role = "TP2" if tp2_seen == 0 else "TP2 trailed"
                tp2_seen += 1
            end = int(order["ts_last"]) if order["status"] in CLOSED else exit_ns
            level_rows.append(
                {
                    "trade": k,
                    "role": role,
                    "price": price,
                    "start_ns": int(order["ts_init"]),
                    "end_ns": max(end, int(order["ts_init"])),
                }
            )
        for _, order in mine[mine["filled_qty"] > 0].iterrows() if not mine.empty else ():
            tag = order["tag"]
            if tag in ("", "ATS:ENTRY"):
                continue
            label = _exit_label(tag, stop_roles.get(order["client_order_id"], "stop"), trade.exit_reason)
            exit_rows.append(
                {
                    "ts": int(order["ts_last"]),
                    "price": float(order["avg_px"]),
                    "quantity": float(order["filled_qty"]),
                    "label": label,
                    "trade": k,
                }
            )
        if trade.exit_reason == "END_OF_DATA":
            exit_rows.append(
                {
                    "ts": exit_ns,
                    "price": float(trade.exit_price),
                    "quantity": float(trade.quantity),
                    "label": "END_OF_DATA (still open)",
                    "trade": k,
                }
            )
    return pd.DataFrame(level_rows), pd.DataFrame(exit_rows)


def _time(ns: pd.Series | np.ndarray) -> pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(ns, dtype=np.int64), unit="ns", utc=True)


def symbol_figure(run: BacktestRun, symbol: str, frame: pd.DataFrame) -> go.Figure:
    """The page of one symbol: candles + trades, score/signal, factors."""
    instrument = f"{symbol}-PERP.BINANCE"
    trades = run.trades[run.trades["instrument"] == instrument] if not run.trades.empty else run.trades
    levels, exits = trade_levels(run, instrument)
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.03,
        row_heights=[0.6, 0.2, 0.2],
        subplot_titles=[f"{symbol} {run.bar_spec} (bar close time, UTC)", "score and signal", "factors"],
    )
    x = _time(frame["ts"])
    fig.add_trace(
        go.Candlestick(
            x=x,
            open=frame["open"],
            high=frame["high"],
            low=frame["low"],
            close=frame["close"],
            name="bars",
            increasing_line_color="#26a69a",
            decreasing_line_color="#ef5350",
        ),
        row=1,
        col=1,
    )
    for role, (color, dash) in ROLE_STYLE.items():
        rows = levels[levels["role"] == role] if not levels.empty else levels
        if rows.empty:
            continue
        xs: list = []
        ys: list = []
        for r in rows.itertuples():
            xs += [_time([r.start_ns])[0], _time([r.end_ns])[0], None]
            ys += [r.price, r.price, None]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name=role,
                line={"color": color, "dash": dash, "width": 2},
                hovertemplate=f"{role} %{{y}}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    if not trades.empty:
        for direction, symbol_shape, color in (
            ("LONG", "triangle-up", "#1b5e20"),
            ("SHORT", "triangle-down", "#b71c1c"),
        ):
            sub = trades[trades["direction"] == direction]
            if sub.empty:
                continue
            text = [
                f"{direction} entry, strength {s:.0f}, {lev}x<br>result {p:+.2f} USDT ({why})"
                for s, lev, p, why in zip(
                    sub["strength"], sub["leverage"], sub["realized_pnl"], sub["exit_reason"], strict=True
                )
            ]
            fig.add_trace(
                go.Scatter(
                    x=_time(sub["entry_time_ns"]),
                    y=sub["entry_price"],
                    mode="markers",
                    name=f"{direction} entry",
                    marker={"symbol": symbol_shape, "size": 13, "color": color, "line": {"width": 1, "color": "white"}},
                    text=text,
                    hovertemplate="%{text}<br>%{y}<extra></extra>",
                ),
                row=1,
                col=1,
            )
    if not exits.empty:
        fig.add_trace(
            go.Scatter(
                x=_time(exits["ts"]),
                y=exits["price"],
                mode="markers+text",
                name="exits",
                text=exits["label"],
                textposition="top center",
                textfont={"size": 9},
                marker={"symbol": "x", "size": 10, "color": "#212121"},
                hovertemplate="%{text} %{y}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    for column, name, color in (("score", "score", "#616161"), ("signal", "signal (+-strength)", "#000000")):
        if column in frame:
            fig.add_trace(
                go.Scattergl(x=x, y=frame[column].round(2), name=name, line={"color": color, "width": 1}), row=2, col=1
            )
    for level in (run.min_score, -run.min_score):
        fig.add_hline(y=level, line_dash="dash", line_color="#9e9e9e", row=2, col=1)
    for key, color in FACTOR_COLORS.items():
        if key in frame and frame[key].notna().any():
            fig.add_trace(
                go.Scattergl(x=x, y=frame[key].round(2), name=f"factor {key}", line={"color": color, "width": 1}),
                row=3,
                col=1,
            )
    fig.update_layout(
        height=950,
        xaxis_rangeslider_visible=False,
        hovermode="x unified",
        title=f"{symbol}: {len(trades)} trades, entry at strength >= {run.min_score:g}",
    )
    return fig


def write_plots(
    run: BacktestRun,
    out: Path,
    symbols: list[str] | None = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> list[Path]:
    """One HTML page per symbol (plotly.js written once beside them) and an index page."""
    out.mkdir(parents=True, exist_ok=True)
    start = start if start is not None else run.start
    end = end if end is not None else run.end
    pages = []
    if not (run.catalog / "data").is_dir():
        raise FileNotFoundError(f"the report's catalog {run.catalog} is gone; give --config with the catalog it used")
    catalog = ParquetDataCatalog(str(run.catalog))
    for symbol in symbols or run.symbols:
        # The factors start where the run started (they are what the strategy saw), then the window is cut out.
        bars = bars_frame(catalog, symbol, run.bar_spec, run.start if run.start is not None else start, end)
        if bars.empty:
            continue
        frame = factor_frame(
            bars,
            run.factor_config,
            bar_interval_ns(run.bar_spec),
            funding_frame(catalog, symbol, int(bars["ts"].iloc[0]), int(bars["ts"].iloc[-1])),
            marks_frame(catalog, symbol, int(bars["ts"].iloc[0]), int(bars["ts"].iloc[-1])),
        )
        for column in ("open", "high", "low"):
            frame[column] = bars[column].to_numpy()
        warm = frame["warm"].to_numpy()
        for column in ("score", "signal", "strength"):
            frame.loc[~warm, column] = np.nan
        if start is not None:
            frame = frame[frame["ts"] >= start.value].reset_index(drop=True)
        if frame.empty:
            continue
        first, last = int(frame["ts"].iloc[0]), int(frame["ts"].iloc[-1])
        shown = run
        if not run.trades.empty:  # the trades that overlap the drawn bars
            overlap = (run.trades["exit_time_ns"] >= first) & (run.trades["entry_time_ns"] <= last)
            shown = replace(run, trades=run.trades[overlap])
        path = out / f"{symbol}.html"
        symbol_figure(shown, symbol, frame).write_html(path, include_plotlyjs="directory")
        pages.append(path)
    index = "".join(f'<li><a href="{p.name}">{p.stem}</a></li>' for p in pages)
    (out / "index.html").write_text(f"<html><body><h2>ats plot: {run.folder.name}</h2><ul>{index}</ul></body></html>")
    return pages
