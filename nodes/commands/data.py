"""``ats data ingest`` and ``ats data download``: Binance files into the Parquet catalog."""

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from catalog.ingest import IngestReport

DEFAULT_CATALOG = Path("data/catalog")
# Short names a trader types -> Vision dataset folders.
DATASET_NAMES = {"klines": "klines", "funding": "fundingRate", "metrics": "metrics", "mark": "markPriceKlines"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from catalog.endpoints import DEFAULT_API_URL, DEFAULT_BASE_URL, DEFAULT_DEST

    parser = subparsers.add_parser(
        "data",
        help="download Binance Vision files and ingest Binance data into the catalog",
        description="Manage the Parquet data catalog the backtests read.",
    )
    parser.set_defaults(handler=lambda _args: parser.print_help() or 2)
    commands = parser.add_subparsers(dest="data_command", metavar="ACTION")

    ingest = commands.add_parser(
        "ingest",
        help="validate Binance files (csv, csv.gz, zip, exchangeInfo json) and write them into the catalog",
        description="Validate every file first, then write them all; on any error the catalog is unchanged.",
    )
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders to ingest")
    ingest.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG, help=f"(default: {DEFAULT_CATALOG})")
    ingest.set_defaults(handler=run_ingest)

    listing = commands.add_parser(
        "list",
        help="what the catalog holds: per symbol and data type, coverage and gaps",
        description="Per symbol and data type: rows, first and last time, and every gap longer than one step "
        "(for bars their size; for funding, marks and open interest three times their usual spacing).",
    )
    listing.add_argument("symbols", nargs="*", metavar="SYMBOL", help="only these symbols (default: all)")
    listing.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG, help=f"(default: {DEFAULT_CATALOG})")
    listing.add_argument("--gaps", type=int, default=5, help="gaps shown per series (default: 5; all: 0)")
    listing.set_defaults(handler=run_list)

    download = commands.add_parser(
        "download",
        help="fetch Binance exchangeInfo and Vision klines/funding/metrics/mark-price zips, verify, ingest",
        description=(
            "Fetch the instruments' definitions (GET /fapi/v1/exchangeInfo from --api-url) and the USDT-M "
            "futures files of Binance Vision: monthly files for ended months, daily files for the running month "
            "(or when a monthly file is not published). Every zip is checked against its published sha256; files "
            "already present with a good checksum are not fetched again. Missing funding, metrics or mark-price "
            "files are warnings; missing klines are an error."
        ),
    )
    download.add_argument("symbols", nargs="+", metavar="SYMBOL", help="e.g. BTCUSDT ETHUSDT")
    download.add_argument("--start", type=_day, required=True, help="first UTC day, YYYY-MM-DD")
    download.add_argument(
        "--end",
        type=_day,
        default=None,
        help="last UTC day, YYYY-MM-DD (default: yesterday, the latest published)",
    )
    download.add_argument("--interval", default="1m", help="kline interval (default: 1m)")
    download.add_argument(
        "--mark-interval", default="1h", help="mark-price kline interval (default: 1h, every funding instant)"
    )
    download.add_argument(
        "--datasets",
        default="klines,funding,metrics,mark",
        help="comma-separated subset of klines,funding,metrics,mark (default: all four)",
    )
    add = download.add_argument
    add("--catalog", type=Path, default=DEFAULT_CATALOG, help=f"(default: {DEFAULT_CATALOG})")
    add("--base-url", default=DEFAULT_BASE_URL, help=f"Vision mirror (default: {DEFAULT_BASE_URL})")
    add("--api-url", default=DEFAULT_API_URL, help=f"Binance futures API for exchangeInfo (default: {DEFAULT_API_URL})")
    add("--dest", type=Path, default=DEFAULT_DEST, help=f"download folder (default: {DEFAULT_DEST})")
    add("--timeout", type=float, default=30.0, help="seconds per HTTP request (default: 30)")
    add("--retries", type=int, default=4, help="retries per request, with doubling pauses (default: 4)")
    add("--no-ingest", action="store_true", help="only download and verify")
    download.set_defaults(handler=run_download)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-01-31") from None


def run_ingest(args: argparse.Namespace) -> int:
    from catalog.ingest import ingest, stderr_progress

    report = ingest(args.paths, args.catalog, stderr_progress)
    print_ingest_report(args.catalog, report)
    return 0


def print_ingest_report(catalog_dir: Path, report: "IngestReport") -> None:
    """What was ingested, what was left out and why, and the catalog series touched."""
    if report.skipped:
        print(f"left out {len(report.skipped)} file(s):")
        for path, why in report.skipped:
            print(f"  {path}: {why}")
    if report.instruments:
        line = f"{report.instruments} instrument definition(s) from exchangeInfo"
        if report.unusable_symbols:
            shown = ", ".join(f"{s} ({why})" for s, why in report.unusable_symbols[:5])
            more = len(report.unusable_symbols) - 5
            line += f"; {len(report.unusable_symbols)} unusable entries left out: {shown}"
            line += f" and {more} more" if more > 0 else ""
        print(line)
    print(f"ingested {len(report.files)} file(s), {report.objects_read:,} records into {catalog_dir}")
    print_series_table(catalog_dir, {k: v for k, v in report.series.items() if k.split(" ", 1)[0] in _data_classes()})


def run_download(args: argparse.Namespace) -> int:
    from catalog.download import DownloadError, Fetcher, ProgressBar, download, plan_downloads
    from catalog.ingest import ingest, stderr_progress

    try:
        datasets = [DATASET_NAMES[name.strip()] for name in args.datasets.split(",") if name.strip()]
    except KeyError as exc:
        known = ",".join(DATASET_NAMES)
        print(f"ats data download: error: unknown dataset {exc}; use {known}", file=sys.stderr)
        return 2
    end = args.end or datetime.now(UTC).date() - timedelta(days=1)
    symbols = [s.upper() for s in args.symbols]
    try:
        plan = plan_downloads(symbols, args.start, end, args.interval, datasets, mark_interval=args.mark_interval)
        info_path = _exchange_info(args, symbols)
        fetcher = Fetcher(args.base_url, timeout=args.timeout, retries=max(0, args.retries))
        bar = ProgressBar(len(plan))
        try:
            result = download(plan, fetcher, args.dest, bar)
        finally:
            bar.close()
    except DownloadError as exc:
        print(f"ats data download: error: {exc}", file=sys.stderr)
        print("nothing was ingested", file=sys.stderr)
        return 2
    print(
        f"{len(result.fetched)} file(s) downloaded, {len(result.cached)} already present, "
        f"{len(result.missing)} not available on the server; files in {args.dest}",
        file=sys.stderr,
    )
    files = ([info_path] if info_path else []) + result.files
    if args.no_ingest or not files:
        return 0
    report = ingest(files, args.catalog, stderr_progress)
    print_ingest_report(args.catalog, report)
    return 0


def _exchange_info(args: argparse.Namespace, symbols: list[str]) -> Path | None:
    """Fetch and save exchangeInfo; check every symbol is a USDT-M perpetual it (or the catalog) defines.

    Without an answer from the API, symbols the catalog or the offline table already define go on with a
    warning; any other symbol is an error, before anything is downloaded.
    """
    from catalog.download import EXCHANGE_INFO_PATH, DownloadError, Fetcher, fetch_exchange_info
    from catalog.instruments import load_exchange_info, offline_symbols
    from catalog.inventory import catalog_symbols
    from nodes.settings import did_you_mean

    known = catalog_symbols(args.catalog) | offline_symbols()
    api = Fetcher(args.api_url, timeout=args.timeout, retries=max(0, args.retries))
    try:
        path = fetch_exchange_info(api, args.dest)
    except DownloadError as exc:
        unknown = [s for s in symbols if s not in known]
        if unknown:
            raise DownloadError(
                f"{exc}; without exchangeInfo {', '.join(unknown)} cannot be defined: check --api-url, or save "
                f"{api.url(EXCHANGE_INFO_PATH)} from a browser and run `ats data ingest FILE --catalog "
                f"{args.catalog}` first"
            ) from None
        print(f"warning: exchangeInfo not fetched, using the instruments already known: {exc}", file=sys.stderr)
        return None
    listed = {i.raw_symbol.value for i in load_exchange_info(path).instruments}
    for symbol in symbols:
        if symbol in listed:
            continue
        if symbol in known:  # delisted since, or not in this answer: the catalog's definition serves
            print(
                f"warning: {symbol} is not in Binance's exchangeInfo now; using the catalog's definition",
                file=sys.stderr,
            )
            continue
        raise DownloadError(
            f"{symbol} is not a USDT-M perpetual in Binance's exchangeInfo ({api.url(EXCHANGE_INFO_PATH)})"
            f"{did_you_mean(symbol, listed)}"
        )
    print(f"exchangeInfo saved to {path}", file=sys.stderr)
    return path


def run_list(args: argparse.Namespace) -> int:
    from catalog.errors import CatalogInputError
    from catalog.inventory import catalog_symbols, coverage_of, list_series, series_timestamps

    if not (args.catalog / "data").is_dir():
        raise CatalogInputError(args.catalog, "no catalog here; fill one with `ats data ingest` or `ats data download`")
    wanted = {s.upper() for s in args.symbols}
    rows = []
    gap_lines: list[str] = []
    for series in list_series(args.catalog):
        if wanted and series.symbol not in wanted:
            continue
        stamps = series_timestamps(args.catalog, series.folder, series.identifier)
        cover = coverage_of(stamps, series.step_ns)
        gaps = f"{len(cover.gaps)}" if cover.gaps else "none"
        rows.append(
            (series.symbol, series.label, f"{cover.rows:,}", _utc_min(cover.first_ns), _utc_min(cover.last_ns), gaps)
        )
        shown = cover.gaps if args.gaps <= 0 else cover.gaps[: args.gaps]
        for before, after in shown:
            gap_lines.append(
                f"  {series.symbol} {series.label}: {_utc_min(before)} -> {_utc_min(after)} ({_span(after - before)})"
            )
        if len(shown) < len(cover.gaps):
            gap_lines.append(f"  {series.symbol} {series.label}: and {len(cover.gaps) - len(shown)} more gaps")
    symbols = catalog_symbols(args.catalog)
    with_data = {r[0] for r in rows}
    print(f"catalog {args.catalog}: {len(symbols)} instruments, {len(with_data)} with data")
    if not rows:
        print("no data series" + (f" for {', '.join(sorted(wanted))}" if wanted else ""))
        return 0
    header = ("symbol", "data", "rows", "first (UTC)", "last (UTC)", "gaps")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                cell.rjust(w) if i == 2 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    if gap_lines:
        print("\ngaps (last time before -> first time after):")
        print("\n".join(gap_lines))
    return 0


def _utc_min(ts_ns: int | None) -> str:
    return "-" if ts_ns is None else datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M")


def _span(ns: int) -> str:
    minutes = ns // 60_000_000_000
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    return f"{days} d {hours} h" if days else (f"{hours} h {minutes} min" if hours else f"{minutes} min")


def series_spans(catalog_dir: Path, series: dict[str, int]) -> list[tuple[str, int, str, str]]:
    """(series, rows, first, last) per catalog series; times are the ts of the first and last record."""
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    catalog = ParquetDataCatalog(str(catalog_dir))
    classes = _data_classes()
    rows = []
    for key, count in sorted(series.items()):
        class_name, identifier = key.split(" ", 1)
        first = last = "-"
        cls = classes.get(class_name)
        if cls is not None:  # instruments have no time span worth showing
            intervals = catalog.get_intervals(cls, identifier)
            if intervals:
                first = _utc(min(start for start, _ in intervals))
                last = _utc(max(end for _, end in intervals))
        rows.append((key, count, first, last))
    return rows


def print_series_table(catalog_dir: Path, series: dict[str, int]) -> None:
    rows = series_spans(catalog_dir, series)
    header = ("series", "rows", "first (UTC)", "last (UTC)")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]:<{widths[3]}}")


def _utc(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _data_classes() -> dict[str, type]:
    from nautilus_trader.adapters.binance.common.types import BinanceBar
    from nautilus_trader.model.data import Bar, FundingRateUpdate, MarkPriceUpdate

    from factors.inputs import OpenInterest

    return {cls.__name__: cls for cls in (BinanceBar, Bar, FundingRateUpdate, MarkPriceUpdate, OpenInterest)}
