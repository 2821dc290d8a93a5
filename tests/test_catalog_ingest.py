"""Ingest every family of the shared Binance data and read it back exactly; bad input changes nothing."""

import gzip
import hashlib
import shutil
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from nautilus_trader.adapters.binance.common.types import BinanceBar
from nautilus_trader.model.data import Bar, FundingRateUpdate, MarkPriceUpdate
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.errors import CatalogInputError
from catalog.ingest import ingest
from factors.inputs import OpenInterest
from nodes.cli import main

MS = 1_000_000


def _tree_digest(folder: Path) -> dict[str, str]:
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _bars(catalog_dir: Path, cls: type, bar_type: str) -> list:
    return ParquetDataCatalog(str(catalog_dir)).query(cls, identifiers=[bar_type])


def test_vision_klines_keep_taker_buy_volume_and_values(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "klines_1m_vision" / "FILUSDT-1m-2023-02.csv.gz"
    ingest([source], tmp_path)
    bars = _bars(tmp_path, BinanceBar, "FILUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")
    frame = pd.read_csv(source)
    assert len(bars) == len(frame) == 40320
    assert all(type(b) is BinanceBar for b in bars[:10])
    # Nautilus stamps bars at their close: open_time + 1 minute.
    assert bars[0].ts_event == (int(frame.open_time.iloc[0]) + 60_000) * MS
    assert bars[-1].ts_event == (int(frame.open_time.iloc[-1]) + 60_000) * MS
    for row in (0, 1234, 40319):
        bar, src = bars[row], frame.iloc[row]
        for field in ("open", "high", "low", "close"):
            assert getattr(bar, field).as_decimal() == Decimal(repr(float(src[field])))
        assert bar.volume.as_double() == pytest.approx(src.volume, abs=1e-9)
        assert float(bar.taker_buy_base_volume) == pytest.approx(src.taker_buy_volume, abs=1e-9)
        assert float(bar.quote_volume) == pytest.approx(src.quote_volume, abs=1e-6)
        assert bar.count == src["count"]


@pytest.mark.parametrize(
    ("folder", "name", "bar_type", "interval_ms"),
    [
        ("ohlcv_2025-03_2025-06", "BTCUSDT-1m.csv.gz", "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL", 60_000),
        (
            "ohlcv_2025-03_2025-06",
            "SOLUSDT-5m.csv.gz",
            "SOLUSDT-PERP.BINANCE-5-MINUTE-LAST-EXTERNAL",
            300_000,
        ),
        (
            "ohlcv_2023-01_2024-05",
            "ETHUSDT-15m.csv.gz",
            "ETHUSDT-PERP.BINANCE-15-MINUTE-LAST-EXTERNAL",
            900_000,
        ),
        (
            "ohlcv_2023-01_2024-05",
            "1000PEPEUSDT-1h.csv.gz",
            "1000PEPEUSDT-PERP.BINANCE-1-HOUR-LAST-EXTERNAL",
            3_600_000,
        ),
        ("ohlcv_2021-11_xrp", "XRPUSDT-5m.csv.gz", "XRPUSDT-PERP.BINANCE-5-MINUTE-LAST-EXTERNAL", 300_000),
    ],
)
def test_ohlcv_files_read_back(
    shared_data: Path, tmp_path: Path, folder: str, name: str, bar_type: str, interval_ms: int
) -> None:
    source = shared_data / folder / name
    ingest([source], tmp_path)
    bars = _bars(tmp_path, Bar, bar_type)
    frame = pd.read_csv(source)
    assert len(bars) == len(frame)
    assert bars[0].ts_event == (int(frame.open_time_ms.iloc[0]) + interval_ms) * MS
    assert bars[-1].ts_event == (int(frame.open_time_ms.iloc[-1]) + interval_ms) * MS
    precision = bars[0].open.precision
    for row in (0, len(frame) // 2, len(frame) - 1):
        bar, src = bars[row], frame.iloc[row]
        # The freqtrade-derived XRP sample carries float noise (1.1893000000000002): prices land on the tick.
        for field in ("open", "high", "low", "close"):
            assert getattr(bar, field).as_decimal() == round(Decimal(repr(float(src[field]))), precision)
        assert bar.volume.as_double() == pytest.approx(src.volume, rel=1e-12)


def test_funding_and_mark_prices(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "ohlcv_2025-03_2025-06"
    ingest([folder / "ENAUSDT-funding_rate.csv.gz", folder / "ENAUSDT-mark-8h.csv.gz"], tmp_path)
    catalog = ParquetDataCatalog(str(tmp_path))
    funding = catalog.query(FundingRateUpdate, identifiers=["ENAUSDT-PERP.BINANCE"])
    source = pd.read_csv(folder / "ENAUSDT-funding_rate.csv.gz")
    assert len(funding) == len(source) == 474  # ENA funds every 4 h at times: more events than 8 h mark bars
    for row in (0, 100, 473):
        assert Decimal(str(funding[row].rate)) == Decimal(repr(float(source.funding_rate.iloc[row])))
        assert funding[row].ts_event == (int(source.funding_time_ms.iloc[row]) // 1000 * 1000) * MS
    marks = catalog.query(MarkPriceUpdate, identifiers=["ENAUSDT-PERP.BINANCE"])
    mark_source = pd.read_csv(folder / "ENAUSDT-mark-8h.csv.gz")
    assert len(marks) == len(mark_source)
    assert marks[5].value.as_decimal() == round(Decimal(repr(float(mark_source.open.iloc[5]))), 4)
    mark_bars = _bars(tmp_path, Bar, "ENAUSDT-PERP.BINANCE-8-HOUR-MARK-EXTERNAL")
    assert len(mark_bars) == len(mark_source)


def test_header_less_and_microsecond_klines_equal_the_original(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "klines_1m_vision" / "NEARUSDT-1m-2024-06.csv.gz"
    frame = pd.read_csv(source)
    variant = frame.copy()
    variant["open_time"] *= 1000  # Binance Vision moved some files to microseconds in 2025
    variant["close_time"] *= 1000
    folder = tmp_path / "src"
    folder.mkdir()
    variant.to_csv(folder / "NEARUSDT-1m-2024-06.csv", header=False, index=False)
    ingest([folder / "NEARUSDT-1m-2024-06.csv"], tmp_path / "a")
    ingest([source], tmp_path / "b")
    bar_type = "NEARUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
    a, b = _bars(tmp_path / "a", BinanceBar, bar_type), _bars(tmp_path / "b", BinanceBar, bar_type)
    assert len(a) == len(b) == len(frame)
    assert [(x.ts_event, x.close, x.taker_buy_base_volume) for x in a[::997]] == [
        (x.ts_event, x.close, x.taker_buy_base_volume) for x in b[::997]
    ]


def test_open_interest_metrics(tmp_path: Path) -> None:
    # The shared set has no metrics files; this is the documented Binance Vision metrics format.
    path = tmp_path / "BTCUSDT-metrics-2025-05-01.csv"
    path.write_text(
        "create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
        "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio\n"
        "2025-05-01 00:00:00,BTCUSDT,80000.5,7600000000.1,1.5,1.4,1.3,0.9\n"
        "2025-05-01 00:05:00,BTCUSDT,80010.25,7601000000.2,1.5,1.4,1.3,1.1\n"
    )
    ingest([path], tmp_path / "catalog")
    ingest([path], tmp_path / "catalog")  # idempotent for custom data too
    values = [v.data for v in ParquetDataCatalog(str(tmp_path / "catalog")).query(OpenInterest)]
    assert [(v.ts_event, v.open_interest) for v in values] == [
        (pd.Timestamp("2025-05-01T00:00:00Z").value, 80000.5),
        (pd.Timestamp("2025-05-01T00:05:00Z").value, 80010.25),
    ]


def test_reingest_is_idempotent_and_merges_months(shared_data: Path, tmp_path: Path) -> None:
    feb = shared_data / "klines_1m_vision" / "FILUSDT-1m-2023-02.csv.gz"
    apr = shared_data / "klines_1m_vision" / "FILUSDT-1m-2023-04.csv.gz"
    ingest([feb], tmp_path)
    first = _tree_digest(tmp_path / "data")
    ingest([feb], tmp_path)
    assert _tree_digest(tmp_path / "data") == first
    ingest([apr, feb], tmp_path)
    bars = _bars(tmp_path, BinanceBar, "FILUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")
    assert len(bars) == 40320 + 43200
    assert all(a.ts_event < b.ts_event for a, b in zip(bars, bars[1:], strict=False))


def _catalog_with_one_file(shared_data: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    catalog_dir = tmp_path / "catalog"
    ingest([shared_data / "ohlcv_2021-11_xrp" / "XRPUSDT-1h.csv.gz"], catalog_dir)
    return catalog_dir, _tree_digest(catalog_dir)


def _broken_copy(shared_data: Path, tmp_path: Path, edit_line: int, new_text: str) -> Path:
    lines = gzip.decompress((shared_data / "klines_1m_vision" / "ALGOUSDT-1m-2023-02.csv.gz").read_bytes())
    rows = lines.decode().splitlines()
    rows[edit_line - 1] = new_text
    path = tmp_path / "in" / "ALGOUSDT-1m-2023-02.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    ("line", "text", "expected"),
    [
        (
            500,
            "1675239480000,0.2551,0.2552,abc,0.2551,1,1675239539999,1,1,1,1,0",
            "line 500: column 'low': 'abc'",
        ),
        (9, "1675209960000,0.2551,0.2552", "line 9: expected 12 comma-separated fields, found 3"),
        (
            30,
            "1675211280000,0.2551,0.2500,0.2552,0.2551,1,1675211339999,1,1,1,1,0",
            "line 30: impossible candle",
        ),
    ],
)
def test_corrupt_csv_names_file_and_line_and_leaves_catalog(
    shared_data: Path, tmp_path: Path, line: int, text: str, expected: str
) -> None:
    catalog_dir, before = _catalog_with_one_file(shared_data, tmp_path)
    good = shared_data / "klines_1m_vision" / "AVAXUSDT-1m-2023-02.csv.gz"  # valid file in the same batch
    broken = _broken_copy(shared_data, tmp_path, line, text)
    with pytest.raises(CatalogInputError, match="ALGOUSDT-1m-2023-02.csv, " + expected):
        ingest([good, broken], catalog_dir)
    assert _tree_digest(catalog_dir) == before


def test_truncated_gzip_is_refused(shared_data: Path, tmp_path: Path) -> None:
    catalog_dir, before = _catalog_with_one_file(shared_data, tmp_path)
    data = (shared_data / "ohlcv_2025-03_2025-06" / "LTCUSDT-1h.csv.gz").read_bytes()
    path = tmp_path / "LTCUSDT-1h.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CatalogInputError, match="LTCUSDT-1h.csv.gz: corrupt or truncated archive"):
        ingest([path], catalog_dir)
    assert _tree_digest(catalog_dir) == before


def test_cli_errors_are_clear_and_change_nothing(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog_dir, before = _catalog_with_one_file(shared_data, tmp_path)
    unknown = tmp_path / "FOOUSDT-1h.csv.gz"
    shutil.copy(shared_data / "ohlcv_2025-03_2025-06" / "LTCUSDT-1h.csv.gz", unknown)
    cases = [
        (
            ["data", "ingest", str(tmp_path / "nope.csv"), "--catalog", str(catalog_dir)],
            "no such file or folder",
        ),
        (["data", "ingest", str(unknown), "--catalog", str(catalog_dir)], "unknown symbol 'FOOUSDT'"),
    ]
    broken_config = tmp_path / "broken.toml"
    broken_config.write_text(
        "[backtest]\nsymbols = ['BTCUSDT']\n[venue]\nstarting_balance = -5\n[strategy]\n"
    )
    cases.append((["backtest", str(broken_config)], "starting_balance must be positive"))
    not_toml = tmp_path / "not.toml"
    not_toml.write_text("[backtest\n")
    cases.append((["backtest", str(not_toml)], "not valid TOML"))
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err, err
        assert "Traceback" not in err
    assert _tree_digest(catalog_dir) == before
