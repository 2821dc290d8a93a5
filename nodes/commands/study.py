"""``ats study [CONFIG]``: the factor study (rank IC, score buckets, decay, turnover) on catalogued data."""

import argparse
from pathlib import Path

from nodes.paths import DEFAULT_BACKTEST_CONFIG


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "study",
        help="measure how well each factor and the score predict forward returns (rank IC, buckets)",
        description=(
            "For each bar size and horizon: the rank IC of every factor and of the score with the forward "
            "return (pooled and per symbol, Newey-West t), IC decay, hit rate and mean return by score bucket, "
            "and turnover. Uses the config's catalog, symbols, period and [strategy.config.factors]; the "
            "options override them. Prints the tables and saves CSV files and an HTML page."
        ),
    )
    parser.add_argument(
        "config", nargs="?", type=Path, default=DEFAULT_BACKTEST_CONFIG,
        help="backtest config whose catalog, symbols, period and factor settings are used "
        "(default: the package's backtest.toml)",
    )  # fmt: skip
    parser.add_argument("--catalog", type=Path, help="catalog folder (default: the config's)")
    parser.add_argument("--symbols", nargs="+", metavar="SYMBOL", help="e.g. BTCUSDT ETHUSDT (default: the config's)")
    parser.add_argument("--start", help="first bar time, UTC (default: the config's start)")
    parser.add_argument("--end", help="last bar time, UTC (default: the config's end)")
    parser.add_argument(
        "--bars", default="1m,5m,15m,1h",
        help="bar sizes, comma separated (default 1m,5m,15m,1h); sizes the catalog lacks are aggregated from 1m",
    )  # fmt: skip
    parser.add_argument(
        "--horizons", default="1m,5m,15m,1h,4h,12h,1d",
        help="forward-return horizons in time, comma separated (default 1m,5m,15m,1h,4h,12h,1d); "
        "each bar size uses those that are whole multiples of it",
    )  # fmt: skip
    parser.add_argument(
        "--bucket-horizons", default="1h,4h", help="horizons of the score-bucket tables (default 1h,4h)"
    )
    parser.add_argument("--out", type=Path, help="output folder (default: REPORT_DIR/study-TIMESTAMP)")
    parser.add_argument("--no-html", action="store_true", help="skip the plotly page")
    parser.set_defaults(handler=run)


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from catalog.convert import interval_of_spec
    from catalog.instruments import TAKER_FEE
    from nodes.research.study import StudyOptions, format_study, horizon_ns, run_study, save_study
    from nodes.research.study_config import bar_spec_of, resolve_period, strategy_settings
    from nodes.settings import ConfigError, load_backtest_settings

    settings = load_backtest_settings(args.config)
    factor_config, strategy = strategy_settings(settings)
    start, end = resolve_period(settings, args.start, args.end)
    try:
        bar_specs = tuple(bar_spec_of(b) for b in _split(args.bars))
        for spec in bar_specs:
            interval_of_spec(spec)
        horizons = _split(args.horizons)
        for h in (*horizons, *_split(args.bucket_horizons)):
            horizon_ns(h)
    except ValueError as exc:
        raise ConfigError(Path("ats study"), str(exc)) from exc
    symbols = tuple(s.upper() for s in args.symbols) if args.symbols else settings.symbols
    options = StudyOptions(
        catalog=(args.catalog or settings.catalog).resolve(),
        symbols=symbols,
        start=start,
        end=end,
        factor_config=factor_config,
        min_score=strategy.min_score,
        cost_bps=float(2 * TAKER_FEE * 10_000),
        bar_specs=bar_specs,
        horizons=horizons,
        bucket_horizons=_split(args.bucket_horizons),
    )

    import sys

    result = run_study(options, progress=lambda m: print(m, file=sys.stderr))
    folder = args.out or Path(settings.report_dir) / f"study-{pd.Timestamp.now('UTC').strftime('%Y%m%d-%H%M%S')}"
    save_study(result, folder, draw=False)
    text = format_study(result)
    print(text)
    save_study(result, folder, text, draw=not args.no_html)
    print(f"\nstudy saved to {folder}")
    return 0
