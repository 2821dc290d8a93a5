"""``ats backtest [CONFIG] [--start/--end | --timerange] [--symbols] [--bar]``: run a backtest config, print its
report; the usual edits (period, symbols, bar size) can be given on the command line instead of in a copy of the
config file, as freqtrade users type them."""

import argparse
import re
from pathlib import Path

from nodes.paths import DEFAULT_BACKTEST_CONFIG

_TIMERANGE_SIDE = re.compile(r"^(\d{8}|\d{10}|\d{13})?$")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backtest",
        help="run a backtest on catalogued Binance data and print its report",
        description="Run a backtest config (TOML) through Nautilus's BacktestNode and print its report. "
        "The options below replace the config's [backtest] values for this run.",
    )
    parser.add_argument(
        "config",
        nargs="?",
        type=Path,
        default=DEFAULT_BACKTEST_CONFIG,
        help="backtest config file (default: nodes/configs/backtest.toml)",
    )
    parser.add_argument("--start", help="first UTC time, e.g. 2025-05-01 or 2025-05-01T12:00")
    parser.add_argument("--end", help="end UTC time, e.g. 2025-06-01 (bars up to and including it)")
    parser.add_argument(
        "--timerange",
        type=timerange,
        help="freqtrade's form: 20250501-20250601, 20250501- or -20250601 (dates, or epoch seconds/ms)",
    )
    parser.add_argument(
        "--symbols",
        "--pairs",
        nargs="+",
        metavar="SYMBOL",
        help="e.g. BTCUSDT ETHUSDT, or BTCUSDT,ETHUSDT, or freqtrade pairs BTC/USDT:USDT",
    )
    parser.add_argument("--bar", "--timeframe", help="bar size: 1m, 5m, 15m, 1h... (or 5-MINUTE)")
    parser.add_argument(
        "--csv-tables",
        action="store_true",
        default=None,
        help="also write fills, orders and account as CSV beside their Parquet tables ([backtest] csv_tables)",
    )
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="write every report file in this process, even with an idle core (benchmarks: the cpu time is then "
        "the run's own, whatever the machine's load)",
    )
    parser.set_defaults(handler=run, hard_exit=True)  # ends the process once the report is saved (nodes.cli)


def timerange(text: str) -> tuple[str | None, str | None]:
    """``20250501-20250601`` -> ("2025-05-01", "2025-06-01"); either side may be empty; sides of 10 or 13
    digits are epoch seconds or milliseconds."""
    sides = text.split("-")
    if len(sides) != 2 or not all(_TIMERANGE_SIDE.match(s) for s in sides) or not any(sides):
        raise argparse.ArgumentTypeError(f"{text!r} is not a time range like 20250501-20250601, 20250501- or -20250601")

    import pandas as pd

    def side(value: str) -> str | None:
        if not value:
            return None
        if len(value) == 8:
            stamp = pd.Timestamp(f"{value[:4]}-{value[4:6]}-{value[6:]}")
        else:
            stamp = pd.Timestamp(int(value), unit="s" if len(value) == 10 else "ms")
        return stamp.isoformat()

    try:
        return side(sides[0]), side(sides[1])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def symbol_list(values: list[str]) -> list[str]:
    """Symbols as typed: space or comma separated, freqtrade pairs (``BTC/USDT:USDT``, ``BTC/USDT``) included."""
    symbols = []
    for value in values:
        for item in filter(None, (v.strip() for v in value.split(","))):
            symbols.append(item.split(":")[0].replace("/", "").replace("_", "").upper())
    return symbols


def overrides(args: argparse.Namespace) -> dict[str, object]:
    """The [backtest] values the command line replaces."""
    from nodes.settings import ConfigError

    if args.timerange and (args.start or args.end):
        raise ConfigError(Path("command line"), "give --timerange or --start/--end, not both")
    start, end = args.timerange or (args.start, args.end)
    return {
        "start": start,
        "end": end,
        "symbols": symbol_list(args.symbols) if args.symbols else None,
        "bar": args.bar,
        "csv_tables": args.csv_tables,
    }


def run(args: argparse.Namespace) -> int:
    from catalog.ingest import stderr_progress
    from nodes.backtest.report import build_report
    from nodes.backtest.report_files import ReportWriter, core_to_spare
    from nodes.backtest.runner import run_backtest
    from nodes.settings import load_backtest_settings

    settings = load_backtest_settings(args.config, overrides=overrides(args))
    outcome = run_backtest(settings, stderr_progress, progress_bar=True)
    # the raw tables from now on, on an idle core
    writer = ReportWriter(outcome, second_process=not args.one_process and core_to_spare())
    try:
        report = build_report(outcome)
    except BaseException:
        writer.discard()
        raise
    print(report.text)
    saved = writer.finish(report, show_progress=True)
    print(f"\nreport saved to {saved}")
    return 0
