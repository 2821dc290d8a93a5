"""``ats backtest [CONFIG]``: run a backtest config and print its report."""

import argparse
from pathlib import Path

from nodes.settings import DEFAULT_BACKTEST_CONFIG


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backtest",
        help="run a backtest on catalogued Binance data and print its report",
        description="Run a backtest config (TOML) through Nautilus's BacktestNode and print its report.",
    )
    parser.add_argument(
        "config",
        nargs="?",
        type=Path,
        default=DEFAULT_BACKTEST_CONFIG,
        help="backtest config file (default: nodes/configs/backtest.toml)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from catalog.ingest import stderr_progress
    from nodes.backtest.report import build_report, save_report
    from nodes.backtest.runner import run_backtest
    from nodes.settings import load_backtest_settings

    settings = load_backtest_settings(args.config)
    outcome = run_backtest(settings, stderr_progress)
    report = build_report(outcome)
    print(report.text)
    saved = save_report(outcome, report)
    print(f"\nreport saved to {saved}")
    return 0
