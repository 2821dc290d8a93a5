"""``ats data ingest`` and ``ats data download``: Binance files into the Parquet catalog."""

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

DEFAULT_CATALOG = Path("data/catalog")
# Short names a trader types -> Vision dataset folders.
DATASET_NAMES = {"klines": "klines", "funding": "fundingRate", "metrics": "metrics"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from catalog.download import DEFAULT_BASE_URL, DEFAULT_DEST

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

    download = commands.add_parser(
        "download",
        help="fetch Binance Vision klines/funding/metrics zips, verify their checksums, and ingest them",
        description=(
            "Fetch USDT-M futures files from Binance Vision: monthly files for ended months, daily files "
            "for the running month (or when a monthly file is not published). Every zip is checked against "
            "its published sha256; files already present with a good checksum are not fetched again. Missing "
            "funding or metrics files are warnings; missing klines are an error."
        ),
    )
    download.add_argument("symbols", nargs="+", metavar="SYMBOL", help="e.g. BTCUSDT ETHUSDT")
    download.add_argument("--start", type=_day, required=True, help="first UTC day, YYYY-MM-DD")
    download.add_argument(
        "--end", type=_day, default=None,
        help="last UTC day, YYYY-MM-DD (default: yesterday, the latest published)",
    )
    download.add_argument("--interval", default="1m", help="kline interval (default: 1m)")
    download.add_argument(
        "--datasets", default="klines,funding,metrics",
        help="comma-separated subset of klines,funding,metrics (default: all three)",
    )
    add = download.add_argument
    add("--catalog", type=Path, default=DEFAULT_CATALOG, help=f"(default: {DEFAULT_CATALOG})")
    add("--base-url", default=DEFAULT_BASE_URL, help=f"Vision mirror (default: {DEFAULT_BASE_URL})")
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
    print(f"ingested {len(report.files)} file(s), {report.objects_read:,} records into {args.catalog}")
    print_series_table(args.catalog, report.series)
    return 0


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
    try:
        plan = plan_downloads(args.symbols, args.start, end, args.interval, datasets)
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
    if args.no_ingest or not result.files:
        return 0
    report = ingest(result.files, args.catalog, stderr_progress)
    print(f"ingested {len(report.files)} file(s), {report.objects_read:,} records into {args.catalog}")
    print_series_table(args.catalog, report.series)
    return 0


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
