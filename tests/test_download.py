"""``ats data download`` against a loopback Binance Vision server built from real data, over real HTTP."""

import hashlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from nautilus_trader.adapters.binance.common.types import BinanceBar
from nautilus_trader.model.data import FundingRateUpdate, MarkPriceUpdate
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.download import (
    DownloadError,
    Fetcher,
    ProgressBar,
    download,
    parse_checksum,
    plan_downloads,
)
from factors.inputs import OpenInterest
from nodes.cli import main
from tests.exchange_info import exchange_info
from tests.vision_server import VisionHTTPServer, VisionTree, serve


@pytest.fixture
def tree(tmp_path: Path, shared_data: Path) -> VisionTree:
    return VisionTree(tmp_path / "vision", shared_data)


@pytest.fixture
def server(tree: VisionTree) -> Iterator[VisionHTTPServer]:
    tree.root.mkdir(parents=True, exist_ok=True)
    with serve(tree.root) as running:
        yield running


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def download_args(server: VisionHTTPServer, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "data", "download", *extra, "--base-url", server.base_url, "--api-url", server.base_url,
        "--dest", str(tmp_path / "downloads"), "--catalog", str(tmp_path / "catalog"),
    ]


def bars(catalog_dir: Path) -> list[BinanceBar]:
    return ParquetDataCatalog(str(catalog_dir)).query(BinanceBar)


def catalog_bytes(catalog_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(catalog_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(catalog_dir.rglob("*")) if p.is_file()
    }


OPEN_INTEREST_RECORDING = Path("api_recordings/rest/http_futures_market_open_interest_historical.json")


# ---------------------------------------------------------------------------------------------- planning


def test_plan_uses_monthly_files_for_ended_months_and_daily_files_for_the_running_month() -> None:
    plan = plan_downloads(["filusdt"], date(2024, 9, 29), date(2024, 10, 9), "1m", today=date(2024, 10, 3))
    klines = [f for f in plan if f.dataset == "klines"]
    assert [f.path for f in klines] == [
        "data/futures/um/monthly/klines/FILUSDT/1m/FILUSDT-1m-2024-09.zip",
        "data/futures/um/daily/klines/FILUSDT/1m/FILUSDT-1m-2024-10-01.zip",
        "data/futures/um/daily/klines/FILUSDT/1m/FILUSDT-1m-2024-10-02.zip",  # 10-03 is not published yet
    ]
    # The monthly file falls back to the requested days of that month.
    assert [f.name for f in klines[0].fallback] == ["FILUSDT-1m-2024-09-29.zip", "FILUSDT-1m-2024-09-30.zip"]
    assert [f.path for f in plan if f.dataset == "fundingRate"] == [
        "data/futures/um/monthly/fundingRate/FILUSDT/FILUSDT-fundingRate-2024-09.zip",
        "data/futures/um/monthly/fundingRate/FILUSDT/FILUSDT-fundingRate-2024-10.zip",
    ]
    metrics = [f.path for f in plan if f.dataset == "metrics"]
    assert metrics[0] == "data/futures/um/daily/metrics/FILUSDT/FILUSDT-metrics-2024-09-29.zip"
    assert len(metrics) == 4
    assert all(f.optional for f in plan if f.dataset != "klines")
    assert not any(f.optional for f in klines)
    marks = [f.path for f in plan if f.dataset == "markPriceKlines"]
    assert marks == [
        "data/futures/um/monthly/markPriceKlines/FILUSDT/1h/FILUSDT-1h-2024-09.zip",
        "data/futures/um/daily/markPriceKlines/FILUSDT/1h/FILUSDT-1h-2024-10-01.zip",
        "data/futures/um/daily/markPriceKlines/FILUSDT/1h/FILUSDT-1h-2024-10-02.zip",
    ]


def test_plan_rejects_bad_requests() -> None:
    with pytest.raises(DownloadError, match="after end"):
        plan_downloads(["BTCUSDT"], date(2024, 2, 1), date(2024, 1, 1))
    with pytest.raises(DownloadError, match="interval"):
        plan_downloads(["BTCUSDT"], date(2024, 1, 1), date(2024, 1, 2), "7m")
    with pytest.raises(DownloadError, match="not a Binance symbol"):
        plan_downloads(["BTC/USDT"], date(2024, 1, 1), date(2024, 1, 2))
    with pytest.raises(DownloadError, match="nothing published yet"):
        plan_downloads(["BTCUSDT"], date(2024, 1, 5), date(2024, 1, 9), today=date(2024, 1, 5))
    with pytest.raises(DownloadError, match="base URL"):
        Fetcher("data.binance.vision")


def test_checksum_file_must_name_the_file() -> None:
    sha = "a" * 64
    assert parse_checksum(f"{sha}  X-1m-2024-01.zip\n", "X-1m-2024-01.zip", "u") == sha
    with pytest.raises(DownloadError, match="not 'X-1m-2024-02.zip'"):
        parse_checksum(f"{sha}  X-1m-2024-01.zip", "X-1m-2024-02.zip", "u")
    with pytest.raises(DownloadError, match="not a checksum file"):
        parse_checksum("<html>oops</html>", "X-1m-2024-01.zip", "u")


# ---------------------------------------------------------------------------------------------- over HTTP


def test_download_ingests_a_month_and_a_rerun_fetches_nothing_and_changes_nothing(
    tree: VisionTree, server: VisionHTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zip_path = tree.add_monthly_klines("FILUSDT", "2024-09")
    source_rows = tree.source_klines("FILUSDT", "2024-09").count(b"\n") - 1  # minus the header
    args = download_args(server, tmp_path, "FILUSDT", "--start", "2024-09-01", "--end", "2024-09-30")

    code, out, err = run_cli(args, capsys)

    assert code == 0, err
    assert zip_path in server.requests
    loaded = bars(tmp_path / "catalog")
    assert len(loaded) == source_rows == 43_200
    assert str(loaded[0].bar_type) == "FILUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
    # Funding and metrics are not on this server: warned about, not fatal.
    assert "warning: fundingRate not available" in err and "FILUSDT-fundingRate-2024-09.zip" in err
    assert "warning: metrics not available" in err
    assert "BinanceBar FILUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL" in out and "43200" in out
    assert "2024-09-01 00:01:00" in out and "2024-10-01 00:00:00" in out  # bars are stamped at their close
    local = tmp_path / "downloads/futures/um/monthly/klines/FILUSDT/1m/FILUSDT-1m-2024-09.zip"
    assert local.is_file() and local.with_name(local.name + ".CHECKSUM").is_file()
    before = [(b.ts_init, str(b)) for b in loaded]

    server.requests.clear()
    code, out, err = run_cli(args, capsys)

    assert code == 0, err
    assert not [r for r in server.requests if r.endswith(".zip")], "a verified file was fetched again"
    assert "0 file(s) downloaded, 1 already present" in err
    assert [(b.ts_init, str(b)) for b in bars(tmp_path / "catalog")] == before


def test_daily_files_are_used_when_the_monthly_file_is_not_published(
    tree: VisionTree, server: VisionHTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    days = ["2024-10-01", "2024-10-02", "2024-10-03"]
    tree.add_daily_klines("FILUSDT", "2024-10", days)
    _, by_day = tree.daily_klines("FILUSDT", "2024-10")

    code, _, err = run_cli(
        download_args(server, tmp_path, "FILUSDT", "--start", days[0], "--end", days[-1],
                      "--datasets", "klines"),
        capsys,
    )

    assert code == 0, err
    assert "data/futures/um/monthly/klines/FILUSDT/1m/FILUSDT-1m-2024-10.zip.CHECKSUM" in server.requests
    loaded = bars(tmp_path / "catalog")
    assert len(loaded) == sum(len(by_day[d]) for d in days) == 3 * 1440
    assert not [r for r in server.requests if "metrics" in r or "fundingRate" in r]


def test_a_bad_checksum_is_refused_and_nothing_is_ingested(
    tree: VisionTree, server: VisionHTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = tree.add_daily_klines("FILUSDT", "2024-10", ["2024-10-01", "2024-10-02"])
    code, _, err = run_cli(
        download_args(server, tmp_path, "FILUSDT", "--start", "2024-10-01", "--end", "2024-10-01",
                      "--datasets", "klines"),
        capsys,
    )
    assert code == 0, err
    catalog_before = catalog_bytes(tmp_path / "catalog")
    tree.corrupt_checksum(bad)

    code, out, err = run_cli(
        download_args(server, tmp_path, "FILUSDT", "--start", "2024-10-01", "--end", "2024-10-02",
                      "--datasets", "klines"),
        capsys,
    )

    assert code == 2
    assert "FILUSDT-1m-2024-10-02.zip: checksum mismatch" in err
    assert "nothing was ingested" in err
    assert catalog_bytes(tmp_path / "catalog") == catalog_before
    refused = tmp_path / "downloads/futures/um/daily/klines/FILUSDT/1m/FILUSDT-1m-2024-10-02.zip"
    assert not refused.exists()
    assert not [p for p in refused.parent.iterdir() if ".part-" in p.name], "a temporary file was left behind"


def test_missing_klines_are_an_error_naming_the_url(
    tree: VisionTree, server: VisionHTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        download_args(server, tmp_path, "NEARUSDT", "--start", "2024-09-01", "--end", "2024-09-02"), capsys
    )

    assert code == 2
    daily = f"{server.base_url}/data/futures/um/daily/klines/NEARUSDT/1m/NEARUSDT-1m-2024-09-01.zip"
    monthly = f"{server.base_url}/data/futures/um/monthly/klines/NEARUSDT/1m/NEARUSDT-1m-2024-09.zip"
    assert daily in err and "404" in err and monthly in err
    assert not (tmp_path / "catalog").exists()


def test_funding_is_fetched_and_ingested(
    tree: VisionTree, server: VisionHTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree.add_monthly_funding("AVAXUSDT", "2025-04")
    events = tree.funding_rows("AVAXUSDT", "2025-04")

    code, _, err = run_cli(
        download_args(server, tmp_path, "AVAXUSDT", "--start", "2025-04-01", "--end", "2025-04-30",
                      "--datasets", "funding"),
        capsys,
    )

    assert code == 0, err
    rates = ParquetDataCatalog(str(tmp_path / "catalog")).query(FundingRateUpdate)
    assert len(rates) == len(events) == 90
    assert [Decimal(str(r.rate)) for r in rates] == [Decimal(rate) for _, rate in events]


def test_server_errors_are_retried_and_then_reported(
    tree: VisionTree, server: VisionHTTPServer, tmp_path: Path
) -> None:
    (path,) = tree.add_daily_klines("FILUSDT", "2024-10", ["2024-10-01"])
    plan = plan_downloads(["FILUSDT"], date(2024, 10, 1), date(2024, 10, 1), datasets=["klines"],
                          today=date(2024, 10, 2))
    server.fail(path, 2)
    result = download(plan, Fetcher(server.base_url, retries=2, backoff=0.0), tmp_path / "dl")
    assert result.fetched == ["FILUSDT-1m-2024-10-01.zip"]
    assert server.requests.count(path) == 3

    # A local copy damaged after download no longer matches the published checksum: fetched again.
    local = result.files[0]
    local.write_bytes(local.read_bytes()[:-10])
    again = download(plan, Fetcher(server.base_url, backoff=0.0), tmp_path / "dl")
    assert again.fetched == ["FILUSDT-1m-2024-10-01.zip"] and again.files == [local]
    assert server.requests.count(path) == 4

    server.fail(path + ".CHECKSUM", 5)
    with pytest.raises(DownloadError, match="HTTP 503"):
        download(plan, Fetcher(server.base_url, retries=1, backoff=0.0), tmp_path / "other")


def test_unreachable_server_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serve(tmp_path) as stopped:
        url = stopped.base_url  # a port that was just ours and is closed once the server stops
    code, _, err = run_cli(
        ["data", "download", "FILUSDT", "--start", "2024-09-01", "--end", "2024-09-01", "--base-url", url,
         "--api-url", url, "--dest", str(tmp_path / "dl"), "--catalog", str(tmp_path / "catalog"),
         "--timeout", "2", "--retries", "1"],
        capsys,
    )
    assert code == 2
    assert url in err and "gave up" in err


def test_progress_bar_draws_on_a_terminal_and_lists_files_otherwise() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, log = Tty(), io.StringIO()
    for stream in (terminal, log):
        bar = ProgressBar(2, stream)
        bar.start_file("A-1m-2024-01.zip", 2_000_000)
        bar.advance(1_000_000)
        bar.finish_file("downloaded")
        bar.message("warning: something")
        bar.close()
    assert "\r" in terminal.getvalue() and "1/2 files" in terminal.getvalue()
    assert log.getvalue() == "[1/2] A-1m-2024-01.zip: downloaded\nwarning: something\n"


# ------------------------------------------------------------------------------------------ ats data ingest


def test_ingest_of_a_missing_path_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope" / "FILUSDT-1m-2024-09.csv"
    code, _, err = run_cli(["data", "ingest", str(missing), "--catalog", str(tmp_path / "catalog")], capsys)
    assert code == 2
    assert "ats data: error:" in err and str(missing) in err and "no such file" in err


def test_ingest_of_a_corrupt_csv_fails_clearly_and_writes_nothing(
    tree: VisionTree, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header, by_day = tree.daily_klines("FILUSDT", "2024-09")
    rows = by_day["2024-09-01"]
    good = tmp_path / "FILUSDT-1m-2024-09-01.csv"
    good.write_bytes(header + b"".join(rows))
    corrupt = tmp_path / "in" / "FILUSDT-1m-2024-09-02.csv"
    corrupt.parent.mkdir()
    broken = rows[1].replace(b",", b",x", 1)  # open column of the file's 3rd line is no longer a number
    corrupt.write_bytes(header + rows[0] + broken + b"".join(rows[2:]))
    catalog_dir = tmp_path / "catalog"

    code, _, err = run_cli(["data", "ingest", str(good), str(corrupt), "--catalog", str(catalog_dir)], capsys)

    assert code == 2
    assert f"{corrupt}, line 3" in err and "'open'" in err
    assert not catalog_dir.exists() or not bars(catalog_dir)

    code, out, err = run_cli(["data", "ingest", str(good), "--catalog", str(catalog_dir)], capsys)
    assert code == 0, err
    assert "BinanceBar FILUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL" in out and " 1440 " in out
    assert "2024-09-01 00:01:00" in out and "2024-09-02 00:00:00" in out


# ---------------------------------------------------------------------------------- exchangeInfo, mark, metrics


def test_exchange_info_is_fetched_and_defines_a_symbol_the_offline_table_lacks(
    tree: VisionTree, server: VisionHTTPServer, tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree.add_exchange_info(exchange_info(shared_data, {"DOGEUSDT": ("0.00001", "1", "5")}, 1_735_689_600_000))
    # real FILUSDT klines published under DOGEUSDT's name
    header, by_day = tree.daily_klines("FILUSDT", "2024-10")
    day = "2024-10-01"
    tree.publish(f"data/futures/um/daily/klines/DOGEUSDT/1m/DOGEUSDT-1m-{day}.zip", header + b"".join(by_day[day]))

    code, out, err = run_cli(
        download_args(server, tmp_path, "DOGEUSDT", "--start", day, "--end", day, "--datasets", "klines"), capsys
    )

    assert code == 0, err
    assert "fapi/v1/exchangeInfo" in server.requests
    saved = list((tmp_path / "downloads" / "exchangeInfo").glob("exchangeInfo-20250101T000000Z.json"))
    assert len(saved) == 1
    (instrument,) = ParquetDataCatalog(str(tmp_path / "catalog")).instruments(instrument_ids=["DOGEUSDT-PERP.BINANCE"])
    assert instrument.price_increment.as_decimal() == Decimal("0.00001")
    assert len(bars(tmp_path / "catalog")) == 1440


def test_a_symbol_binance_does_not_list_is_refused_before_downloading(
    tree: VisionTree, server: VisionHTTPServer, tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree.add_exchange_info(exchange_info(shared_data, {"DOGEUSDT": ("0.00001", "1", "5")}, 1_735_689_600_000))
    code, _, err = run_cli(download_args(server, tmp_path, "DOGEUSDTT", "--start", "2024-10-01"), capsys)
    assert code == 2
    assert "DOGEUSDTT is not a USDT-M perpetual in Binance's exchangeInfo" in err and "did you mean 'DOGEUSDT'" in err
    assert not [r for r in server.requests if r.endswith((".zip", ".CHECKSUM"))]


def test_without_exchange_info_an_unknown_symbol_is_an_error_and_a_known_one_a_warning(
    tree: VisionTree, server: VisionHTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(download_args(server, tmp_path, "DOGEUSDT", "--start", "2024-10-01"), capsys)
    assert code == 2 and "without exchangeInfo DOGEUSDT cannot be defined" in err
    tree.add_daily_klines("FILUSDT", "2024-10", ["2024-10-01"])
    code, _, err = run_cli(
        download_args(server, tmp_path, "FILUSDT", "--start", "2024-10-01", "--end", "2024-10-01",
                      "--datasets", "klines"),
        capsys,
    )
    assert code == 0, err
    assert "warning: exchangeInfo not fetched" in err


def test_mark_price_klines_and_open_interest_metrics_are_fetched_and_ingested(
    tree: VisionTree, server: VisionHTTPServer, tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree.add_monthly_mark("AVAXUSDT", "2025-04")
    # the two real open-interest points of the recorded /futures/data/openInterestHist answer
    recorded = json.loads((shared_data / OPEN_INTEREST_RECORDING).read_text())
    rows = [
        (datetime.fromtimestamp(int(r["timestamp"]) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S"),
         r["sumOpenInterest"], r["sumOpenInterestValue"])
        for r in recorded
    ]
    tree.add_daily_metrics("AVAXUSDT", "2025-04-01", rows)

    code, _, err = run_cli(
        download_args(server, tmp_path, "AVAXUSDT", "--start", "2025-04-01", "--end", "2025-04-30",
                      "--datasets", "mark,metrics", "--mark-interval", "8h"),
        capsys,
    )

    assert code == 0, err
    catalog = ParquetDataCatalog(str(tmp_path / "catalog"))
    marks = catalog.query(MarkPriceUpdate)
    assert len(marks) == 90  # 30 days x 3 candles: the mark at each candle's open
    interest = [v.data for v in catalog.query(OpenInterest)]
    assert [v.open_interest for v in interest] == [float(r[1]) for r in rows]
    assert "warning: metrics not available" in err  # the 29 other days are not on the server
