"""``ats plot REPORT_DIR``: a backtest report's trades, exit levels, score and factors on the chart."""

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="draw a backtest report: candles, entries and exits, stop/target levels, score and factors",
        description=(
            "One HTML page per symbol of a backtest report folder (written by `ats backtest`): candles, every "
            "entry and exit with its reason, the stop and target levels over each trade's life (break-even and "
            "dynamic moves included), and the score, the signal and every factor below."
        ),
    )
    parser.add_argument("report", type=Path, metavar="REPORT_DIR", help="e.g. reports/20250603-120000")
    parser.add_argument("--symbols", nargs="+", metavar="SYMBOL", help="default: every symbol of the run")
    parser.add_argument("--start", help="first bar to draw, UTC (default: the run's start)")
    parser.add_argument("--end", help="last bar to draw, UTC (default: the run's end)")
    parser.add_argument(
        "--config", type=Path, help="the backtest config (default: the config.toml saved in the report)"
    )
    parser.add_argument("--out", type=Path, help="output folder (default: REPORT_DIR/plots)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from nodes.research.plot_trades import load_run, write_plots
    from nodes.settings import ConfigError

    def stamp(value: str | None, name: str) -> pd.Timestamp | None:
        if value is None:
            return None
        try:
            when = pd.Timestamp(value)
        except ValueError as exc:
            raise ConfigError(Path(f"--{name}"), f"{value!r} is not a time (e.g. 2025-05-20T12:00)") from exc
        return when.tz_localize("UTC") if when.tzinfo is None else when

    backtest = load_run(args.report, args.config)
    symbols = [s.upper() for s in args.symbols] if args.symbols else None
    unknown = sorted(set(symbols or []) - set(backtest.symbols))
    if unknown:
        raise ConfigError(args.report, f"symbols {unknown} were not in this run; it had {backtest.symbols}")
    out = args.out or args.report / "plots"
    pages = write_plots(backtest, out, symbols, stamp(args.start, "start"), stamp(args.end, "end"))
    if not backtest.every_order:
        print("note: this report has no orders.parquet (made before it was saved): only filled stops and targets drawn")
    for page in pages:
        print(page)
    print(f"\n{len(pages)} pages; open {out / 'index.html'}")
    return 0
