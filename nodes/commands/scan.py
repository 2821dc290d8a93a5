"""``ats scan [CONFIG] [--at TIME]``: score the config's universe from the catalog, print it ranked."""

import argparse
from pathlib import Path

from nodes.paths import DEFAULT_BACKTEST_CONFIG


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="score every symbol of a config's universe from the catalog and print them ranked",
        description=(
            "Replay the catalogued bars (plus funding, mark prices and open interest when present) of the "
            "config's symbols through the factor model up to a time, and print the ranked signals."
        ),
    )
    parser.add_argument(
        "config",
        nargs="?",
        type=Path,
        default=DEFAULT_BACKTEST_CONFIG,
        help="backtest/strategy config file whose universe, bar and [strategy.config.factors] "
        "are used (default: the package's backtest.toml)",
    )
    parser.add_argument(
        "--at",
        default=None,
        metavar="TIME",
        help="UTC time to score at, e.g. 2025-05-20T12:00 (default: each symbol's last bar)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per symbol instead")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json

    import pandas as pd

    from catalog.aggregate import ensure_bars
    from catalog.instruments import instrument_id_for
    from factors.config import FactorConfig
    from nodes.research.scan import format_scan_table, run_scan
    from nodes.settings import ConfigError, load_backtest_settings

    settings = load_backtest_settings(args.config)
    at = None
    if args.at:
        try:
            at = pd.Timestamp(args.at)
        except ValueError as exc:
            raise ConfigError(Path("--at"), f"{args.at!r} is not a time (e.g. 2025-05-20T12:00)") from exc
    raw = settings.strategy_config.get("factors", {})
    try:
        config = FactorConfig.from_dict(raw)
    except Exception as exc:  # msgspec.ValidationError / ValueError: the message names the key
        raise ConfigError(settings.config_path, f"[strategy.config.factors]: {exc}") from exc
    ids = [str(instrument_id_for(s)) for s in settings.symbols]
    # bars of the config's size built from finer catalogued bars when the catalog lacks them, as a backtest does
    ensure_bars(settings.catalog, settings.symbols, settings.bar_spec, None, at)
    results = run_scan(str(settings.catalog), ids, at, config, settings.bar_spec)
    if args.json:
        for r in results:
            print(
                json.dumps(
                    {
                        "instrument": r.instrument_id,
                        "direction": r.direction,
                        "strength": r.strength,
                        "score": r.score,
                        "ts_ns": r.ts_ns,
                        "factors": r.to_dict(),
                        "missing": r.missing,
                    }
                )
            )
    else:
        print(format_scan_table(results))
    return 0
