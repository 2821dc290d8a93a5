"""``ats check lookahead|recursive [CONFIG]``: does the model use the future, or depend on its start?"""

import argparse
import sys
from pathlib import Path

from nodes.paths import DEFAULT_BACKTEST_CONFIG


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config", nargs="?", type=Path, default=DEFAULT_BACKTEST_CONFIG,
        help="backtest config whose catalog, symbols, bar, period and factor settings are checked "
        "(default: the package's backtest.toml)",
    )  # fmt: skip
    parser.add_argument("--catalog", type=Path, help="catalog folder (default: the config's)")
    parser.add_argument("--symbols", nargs="+", metavar="SYMBOL", help="default: the config's")
    parser.add_argument("--start", help="first bar time, UTC (default: the config's start)")
    parser.add_argument("--end", help="last bar time, UTC (default: the config's end)")
    parser.add_argument("--bars", help="bar size, e.g. 1m or 1h (default: the config's bar)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="lookahead and recursive checks of the factors, the score and the strategy's decisions",
        description="Checks that nothing the model computes at a bar uses later data (lookahead) and how much "
        "the values depend on the history before them (recursive). Exit code 1 when lookahead is found.",
    )
    checks = parser.add_subparsers(dest="check", metavar="CHECK", required=True)
    lookahead = checks.add_parser(
        "lookahead",
        help="recompute everything with the data cut at many times and compare with the full-data values",
        description="Factors, score and signal (study pipeline and the strategy's FactorBook) recomputed with "
        "the data cut at --cuts times; then the backtest run with its period ending at --backtest-cuts times: "
        "every value and every order before a cut must be the same.",
    )
    _common(lookahead)
    lookahead.add_argument("--cuts", type=int, default=6, help="cut times for the factors (default 6)")
    lookahead.add_argument(
        "--backtest-cuts", type=int, default=2, help="cut times for the backtest's orders (default 2; 0 = skip)"
    )
    lookahead.add_argument("--no-book", action="store_true", help="skip the FactorBook replay (faster)")
    lookahead.set_defaults(handler=run_lookahead_check)
    recursive = checks.add_parser(
        "recursive",
        help="start the same period with different history lengths; largest difference per factor",
        description="Computes the period with each --history (bars before it) and compares with the longest.",
    )
    _common(recursive)
    recursive.add_argument(
        "--history", default="50,100,200,400,800,1600",
        help="bars of history before the period, comma separated (default 50,100,200,400,800,1600)",
    )  # fmt: skip
    recursive.set_defaults(handler=run_recursive_check)


def _resolve(args: argparse.Namespace):  # noqa: ANN202
    from dataclasses import replace

    from catalog.convert import interval_of_spec
    from nodes.research.study_config import bar_spec_of, resolve_period, strategy_settings
    from nodes.settings import ConfigError, load_backtest_settings

    settings = load_backtest_settings(args.config)
    factors, strategy = strategy_settings(settings)
    start, end = resolve_period(settings, args.start, args.end)
    bar_spec = settings.bar_spec
    if args.bars:
        try:
            bar_spec = bar_spec_of(args.bars)
            interval_of_spec(bar_spec)
        except ValueError as exc:
            raise ConfigError(Path("--bars"), str(exc)) from exc
    symbols = tuple(s.upper() for s in args.symbols) if args.symbols else settings.symbols
    catalog = (args.catalog or settings.catalog).resolve()
    settings = replace(settings, catalog=catalog, symbols=symbols, start=start, end=end, bar_spec=bar_spec)
    return settings, factors, strategy


def _progress(message: str) -> None:
    print(message, file=sys.stderr)


def run_lookahead_check(args: argparse.Namespace) -> int:
    from nodes.research.lookahead import format_lookahead, run_lookahead
    from nodes.research.lookahead_backtest import check_backtest_cuts, default_cuts, format_backtest_cuts
    from nodes.settings import ConfigError

    settings, factors, _ = _resolve(args)
    if args.cuts < 1 or args.backtest_cuts < 0:
        raise ConfigError(Path("ats check lookahead"), "--cuts must be >= 1 and --backtest-cuts >= 0")
    report = run_lookahead(
        str(settings.catalog), list(settings.symbols), settings.bar_spec, settings.start, settings.end, factors,
        args.cuts, with_book=not args.no_book, progress=_progress,
    )  # fmt: skip
    print(format_lookahead(report))
    ok = report.ok
    if args.backtest_cuts:
        try:
            cuts = default_cuts(settings, args.backtest_cuts)
        except ValueError as exc:
            raise ConfigError(settings.config_path, str(exc)) from exc
        backtest = check_backtest_cuts(settings, cuts, _progress)
        print()
        print(format_backtest_cuts(backtest))
        ok = ok and backtest.ok
    return 0 if ok else 1


def run_recursive_check(args: argparse.Namespace) -> int:
    from nodes.research.lookahead_recursive import format_recursive, run_recursive
    from nodes.settings import ConfigError

    settings, factors, strategy = _resolve(args)
    try:
        histories = tuple(int(h) for h in args.history.split(",") if h.strip())
    except ValueError as exc:
        raise ConfigError(Path("--history"), f"{args.history!r}: bar counts like 50,200,800") from exc
    if len(histories) < 2 or min(histories) < 0:
        raise ConfigError(Path("--history"), "give at least two bar counts >= 0, e.g. 50,200,800")
    if settings.start is None:
        raise ConfigError(
            settings.config_path, "the recursive check needs a start (config [backtest] start or --start)"
        )
    table = run_recursive(
        str(settings.catalog), list(settings.symbols), settings.bar_spec, settings.start, settings.end, factors,
        histories, strategy.min_score, _progress,
    )  # fmt: skip
    print(format_recursive(table))
    return 0
