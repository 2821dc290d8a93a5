"""Fixed settings on fixed windows: the later checks of the defaults (docs/factors.md, "How the defaults were chosen").

A profile (a backtest config: its strategy settings) is run unchanged on the windows of each data set, with the
walk-forward's own machinery (``TrialRunner``: one engine per data span, a reset per window, hourly equity), and
set beside equal-weight buy-and-hold of the same symbols over the same hours. Nothing here chooses anything::

    nice -n 10 uv run python -m nodes.research.fixed_checks nodes/configs/backtest.toml
    nice -n 10 uv run python -m nodes.research.fixed_checks nodes/configs/original.toml --bar finest

``--bar config`` (default) runs each data set at the profile's own bar size; ``--bar finest`` at the finest the
data set has (1m, else 5m: the original design's bars). The table is printed and saved as CSV under reports/.
"""

import argparse
import dataclasses
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nodes.backtest.runner import ensure_catalog
from nodes.backtest.trade_stats import max_drawdown_pct, sharpe_sortino
from nodes.research.optimize.config import load_optimize_settings
from nodes.research.optimize.diagnostics import moments, probabilistic_sharpe, sharpe
from nodes.research.optimize.folds import Window
from nodes.research.optimize.report import buy_and_hold
from nodes.research.optimize.space import trial_settings
from nodes.research.optimize.worker import OUT_OF_SAMPLE, TrialJob, TrialRunner

PROJECT = Path(__file__).resolve().parents[2]
SHARED = "../shared/data/binance"
WALKFORWARD_CONFIG = PROJECT / "nodes/configs/walkforward-2023.toml"

SYMBOLS_2025_A = [
    "ADAUSDT", "ALGOUSDT", "BCHUSDT", "BNBUSDT", "BSVUSDT", "BTCUSDT", "ETCUSDT",
    "ETHUSDT", "LINKUSDT", "LTCUSDT", "SOLUSDT", "SUIUSDT", "XMRUSDT", "XRPUSDT",
]  # fmt: skip
SYMBOLS_2025_B = [
    "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT", "ADAUSDT", "AVAXUSDT", "BCHUSDT",
    "ENAUSDT", "ETCUSDT", "LAYERUSDT", "LINKUSDT", "LTCUSDT", "SUIUSDT", "XLMUSDT", "XMRUSDT",
]  # fmt: skip


@dataclass(frozen=True)
class Span:
    """One window of one data set, with the symbols that trade in it."""

    start: str
    end: str
    symbols: tuple[str, ...]


@dataclass(frozen=True)
class DataSet:
    name: str
    catalog: str
    source: str
    finest_bar: str
    spans: tuple[Span, ...]


def _walkforward_spans() -> tuple[Span, ...]:
    """The out-of-sample windows of the pre-registered walk-forward, on its five symbols."""
    settings = load_optimize_settings(WALKFORWARD_CONFIG)
    symbols = tuple(settings.base.symbols)
    return tuple(
        Span(f.out_of_sample.start.isoformat(), f.out_of_sample.end.isoformat(), symbols) for f in settings.folds
    )


def data_sets() -> dict[str, DataSet]:
    vision_all = ("ALGOUSDT", "AVAXUSDT", "FILUSDT", "LINKUSDT", "NEARUSDT")
    return {
        "wf-2023": DataSet(
            "wf-2023", "data/catalog-2023", f"{SHARED}/ohlcv_2023-01_2024-05", "5-MINUTE", _walkforward_spans()
        ),
        "2025-A": DataSet(
            "2025-A",
            "data/catalog",
            f"{SHARED}/ohlcv_2025-03_2025-06",
            "5-MINUTE",
            (Span("2025-03-14T08:00", "2025-04-05", tuple(SYMBOLS_2025_A)),),
        ),
        "2025-B": DataSet(
            "2025-B",
            "data/catalog",
            f"{SHARED}/ohlcv_2025-03_2025-06",
            "1-MINUTE",
            (Span("2025-05-09", "2025-06-03", tuple(SYMBOLS_2025_B)),),
        ),
        "vision": DataSet(
            "vision",
            "data/catalog-vision",
            f"{SHARED}/klines_1m_vision",
            "1-MINUTE",
            (
                Span("2023-02-01", "2023-03-01", vision_all),
                Span("2023-08-01", "2023-11-01", ("FILUSDT", "NEARUSDT")),
                Span("2024-02-01", "2024-03-01", ("ALGOUSDT", "AVAXUSDT", "FILUSDT", "NEARUSDT")),
                Span("2024-09-01", "2024-10-01", ("ALGOUSDT", "FILUSDT", "NEARUSDT")),
                Span("2025-02-01", "2025-03-01", ("ALGOUSDT", "AVAXUSDT", "FILUSDT", "NEARUSDT")),
            ),
        ),
    }


def _utc(text: str) -> pd.Timestamp:
    stamp = pd.Timestamp(text)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _table(raw: dict, data: DataSet, span: Span, bar: str) -> dict:
    table = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    backtest = dict(table["backtest"])
    backtest.update(
        catalog=str(PROJECT / data.catalog),
        sources=[str((PROJECT / data.source).resolve())],
        symbols=list(span.symbols),
        bar=bar,
        start=span.start,
        end=span.end,
    )
    backtest.pop("timerange", None)
    table["backtest"] = backtest
    table.pop("optimize", None)
    return table


def run_data_set(config: Path, raw: dict, data: DataSet, bar_choice: str, runner: TrialRunner) -> dict:
    bar = data.finest_bar if bar_choice == "finest" else raw["backtest"]["bar"]
    returns, holds, trades, wins, gp, gl = [], [], 0, 0, 0.0, 0.0
    balance = float(raw["venue"]["starting_balance"])
    # an engine holds the data of every window of its symbols (one engine per symbol set, as in the walk-forward)
    loaded_span = {
        symbols: Window(
            min(_utc(s.start) for s in data.spans if s.symbols == symbols),
            max(_utc(s.end) for s in data.spans if s.symbols == symbols),
        )
        for symbols in {s.symbols for s in data.spans}
    }
    for span in data.spans:  # every window's bars in the catalog before an engine loads them
        window = Window(_utc(span.start), _utc(span.end))
        settings = trial_settings(config, _table(raw, data, span, bar), {}, window)
        ensure_catalog(settings, lambda text: print(f"  {text}", file=sys.stderr, flush=True))
    for span in data.spans:
        table = _table(raw, data, span, bar)
        window = Window(_utc(span.start), _utc(span.end))
        settings = trial_settings(config, table, {}, window)
        job = TrialJob(0, OUT_OF_SAMPLE, None, {}, window, loaded_span[span.symbols], config, table)
        result = runner.run(job)
        m = result.metrics
        trades, wins = trades + m["trades"], wins + m["wins"]
        gp, gl = gp + m["gross_profit"], gl + m["gross_loss"]
        index = pd.date_range(pd.Timestamp(result.equity_start), periods=len(result.equity), freq="1h")
        equity = pd.Series(result.equity, index=index)
        returns.append(equity.pct_change().fillna(0.0))
        hold = buy_and_hold(dataclasses.replace(settings, start=window.start, end=window.last), window, index)
        holds.append(hold.pct_change().fillna(0.0))
        print(
            f"  {data.name} {span.start} -> {span.end} {bar}: {m['trades']} trades, {m['total_return_pct']:+.2f} %"
            f" (hold {(hold.iloc[-1] / hold.iloc[0] - 1) * 100:+.2f} %)",
            file=sys.stderr,
            flush=True,
        )
    equity = balance * (1 + pd.concat(returns)).cumprod()
    hold = balance * (1 + pd.concat(holds)).cumprod()
    hourly = equity.pct_change().dropna().to_numpy()
    skew, kurtosis = moments(hourly)
    sr, _ = sharpe_sortino(equity)
    return {
        "data": data.name,
        "bar": bar,
        "windows": len(data.spans),
        "days": round(sum((_utc(s.end) - _utc(s.start)) / pd.Timedelta(days=1) for s in data.spans), 1),
        "trades": trades,
        "win_rate_pct": round(100 * wins / trades, 1) if trades else 0.0,
        "profit_factor": round(gp / gl, 2) if gl > 0 else (np.inf if gp > 0 else 0.0),
        "return_pct": round((equity.iloc[-1] / balance - 1) * 100, 2),
        "max_drawdown_pct": round(max_drawdown_pct(equity), 2),
        "sharpe": round(sr, 2),
        "psr": round(probabilistic_sharpe(sharpe(hourly), len(hourly), skew, kurtosis), 3),
        "buy_and_hold_pct": round((hold.iloc[-1] / balance - 1) * 100, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes.research.fixed_checks", description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path, help="the profile: a backtest config (its strategy settings)")
    parser.add_argument("--bar", choices=("config", "finest"), default="config")
    parser.add_argument("--data", nargs="+", choices=list(data_sets()), default=list(data_sets()))
    args = parser.parse_args(argv)
    config = args.config.resolve()
    raw = tomllib.loads(config.read_text())
    runner, rows, started = TrialRunner(), [], time.time()
    sets = data_sets()
    for name in args.data:
        rows.append(run_data_set(config, raw, sets[name], args.bar, runner))
    frame = pd.DataFrame(rows)
    print(f"{config.name} (--bar {args.bar}), {time.time() - started:.0f} s")
    print(frame.to_string(index=False))
    out = PROJECT / "reports" / f"fixed-checks-{config.stem}-{args.bar}-{time.strftime('%Y%m%d-%H%M%S')}.csv"
    out.parent.mkdir(exist_ok=True)
    frame.to_csv(out, index=False)
    print(f"saved to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
