"""``ats optimize CONFIG``: walk-forward optimization of a backtest config's ``[optimize.space]``."""

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "optimize",
        help="walk-forward optimization of a strategy's settings (Optuna search, Ray workers)",
        description=(
            "Search the [optimize.space] of a backtest config on walk-forward folds: each fold's trials are scored"
            " in sample, its best settings run on the next out-of-sample window. Prints and saves the stitched"
            " out-of-sample result, overfitting diagnostics and best.toml under reports/. See docs/research.md."
        ),
    )
    parser.add_argument("config", nargs="?", type=Path, help="backtest config with an [optimize] table")
    parser.add_argument("--trials", type=int, help="trials per fold (default: [optimize] trials)")
    parser.add_argument("--workers", type=int, help="parallel workers (default: every core, or the cluster's CPUs)")
    parser.add_argument(
        "--ray-address", help="join a running Ray cluster (HOST:PORT of its head, or auto) instead of a local Ray"
    )
    parser.add_argument("--resume", type=Path, metavar="DIR", help="continue the interrupted run in DIR")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from catalog.ingest import stderr_progress
    from nodes.research.optimize.config import load_optimize_settings
    from nodes.research.optimize.driver import (
        OptimizeError,
        StudyInterrupted,
        check_ray_address,
        load_resumed_settings,
        run_study,
    )
    from nodes.research.optimize.progress import ProgressLine
    from nodes.research.optimize.report import build_report, save_report
    from nodes.settings import ConfigError

    for name in ("trials", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise OptimizeError(f"--{name} {value}: at least 1")
    if args.ray_address is not None:
        check_ray_address(args.ray_address)  # at once, before settings and data are checked
    if args.resume is not None:
        settings = load_resumed_settings(args.resume, args.trials)
        if args.config is not None and args.config.resolve() != settings.config_path:
            raise ConfigError(args.config, f"the run in {args.resume} was started from {settings.config_path}")
        folder: Path | None = args.resume.resolve()
    elif args.config is None:
        raise OptimizeError("give a CONFIG (a backtest config with an [optimize] table) or --resume DIR")
    else:
        settings = load_optimize_settings(args.config, args.trials)
        folder = None  # made once the data and Ray are ready
    try:
        outcome = run_study(
            settings, folder, args.workers, args.ray_address, progress=ProgressLine(), messages=stderr_progress
        )
    except StudyInterrupted as exc:
        print(f"\nats optimize: {exc}", file=sys.stderr)
        return 130
    report = build_report(outcome)
    print(report.text)
    best = save_report(outcome, report)
    print(f"\nreport saved to {outcome.folder}" + (f"\nbest settings: {best}" if best else ""))
    return 0
