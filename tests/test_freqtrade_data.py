"""freqtrade data folders ingested as they are (.feather, .json, .json.gz; futures, funding_rate, mark), every
file left out listed with its reason; and ``ats data list`` showing coverage and gaps. The folders are written in
tmp dirs from the shared real data, in freqtrade's own layout (user_data/data/binance/futures/)."""

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from nautilus_trader.model.data import Bar, FundingRateUpdate, MarkPriceUpdate
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.ingest import ingest
from nodes.cli import main

SPRING_2025 = "ohlcv_2025-03_2025-06"
DAYS = (pd.Timestamp("2025-05-10", tz="UTC"), pd.Timestamp("2025-05-13", tz="UTC"))


def _candles(source: Path, time_column: str = "open_time_ms") -> pd.DataFrame:
    raw = pd.read_csv(source)
    frame = pd.DataFrame({"date": pd.to_datetime(raw[time_column], unit="ms", utc=True)})
    for column in ("open", "high", "low", "close", "volume"):
        frame[column] = raw[column].astype(float) if column in raw else 0.0
    return frame


def freqtrade_folder(shared_data: Path, root: Path) -> Path:
    """user_data/data/binance/futures as ``freqtrade download-data --trading-mode futures`` leaves it."""
    folder = root / "user_data" / "data" / "binance" / "futures"
    folder.mkdir(parents=True)
    source = shared_data / SPRING_2025
    btc = _candles(source / "BTCUSDT-1m.csv.gz")
    btc[(btc.date >= DAYS[0]) & (btc.date < DAYS[1])].reset_index(drop=True).to_feather(
        folder / "BTC_USDT_USDT-1m-futures.feather"
    )
    funding = pd.read_csv(source / "BTCUSDT-funding_rate.csv.gz")
    # freqtrade keeps the rate in the 'open' column of an OHLCV-shaped frame
    pd.DataFrame(
        {
            "date": pd.to_datetime(funding.funding_time_ms, unit="ms", utc=True),
            "open": funding.funding_rate,
            "high": 0.0,
            "low": 0.0,
            "close": 0.0,
            "volume": 0.0,
        }
    ).to_feather(folder / "BTC_USDT_USDT-8h-funding_rate.feather")
    _candles(source / "BTCUSDT-mark-8h.csv.gz").to_feather(folder / "BTC_USDT_USDT-8h-mark.feather")
    eth = pd.read_csv(source / "ETHUSDT-5m.csv.gz")
    rows = eth[["open_time_ms", "open", "high", "low", "close", "volume"]].values.tolist()
    (folder / "ETH_USDT_USDT-5m-futures.json").write_text(json.dumps([[int(r[0]), *r[1:]] for r in rows]))
    hourly = pd.read_csv(source / "ETHUSDT-1h.csv.gz")[["open_time_ms", "open", "high", "low", "close", "volume"]]
    with gzip.open(folder / "ETH_USDT_USDT-1h-futures.json.gz", "wt") as fh:
        json.dump([[int(r[0]), *r[1:]] for r in hourly.values.tolist()], fh)
    # what else such a folder holds: spot candles, index candles, trades, notes
    btc.head(10).to_feather(folder.parent / "BTC_USDT-1m.feather")
    btc.head(10).to_feather(folder / "BTC_USDT_USDT-1h-index.feather")
    btc.head(10).to_feather(folder / "BTC_USDT_USDT-trades.feather")
    (folder / "notes.txt").write_text("downloaded with freqtrade 2026.9\n")
    return root / "user_data"


def test_a_freqtrade_folder_is_ingested_as_it_is_and_every_left_out_file_is_listed(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user_data = freqtrade_folder(shared_data, tmp_path)
    assert main(["data", "ingest", str(user_data), "--catalog", str(tmp_path / "catalog")]) == 0
    out = capsys.readouterr().out
    assert "left out 4 file(s):" in out
    assert "BTC_USDT-1m.feather: freqtrade spot data (BTC/USDT)" in out
    assert "BTC_USDT_USDT-1h-index.feather: freqtrade 'index' candles are not used" in out
    assert "BTC_USDT_USDT-trades.feather: freqtrade trades file" in out
    assert "notes.txt: not a data file" in out
    catalog = ParquetDataCatalog(str(tmp_path / "catalog"))
    bars = catalog.query(Bar, identifiers=["BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"])
    source = pd.read_csv(shared_data / SPRING_2025 / "BTCUSDT-1m.csv.gz")
    source = source[(source.open_time_ms >= DAYS[0].value // 10**6) & (source.open_time_ms < DAYS[1].value // 10**6)]
    assert len(bars) == len(source) == 3 * 1440
    for bar, row in zip(bars[::577], source.iloc[::577].itertuples(), strict=True):
        assert bar.ts_event == (row.open_time_ms + 60_000) * 1_000_000
        assert bar.close.as_decimal() == Decimal(repr(row.close))
        assert bar.volume.as_decimal() == Decimal(repr(row.volume))
    rates = catalog.query(FundingRateUpdate, identifiers=["BTCUSDT-PERP.BINANCE"])
    funding = pd.read_csv(shared_data / SPRING_2025 / "BTCUSDT-funding_rate.csv.gz")
    assert [Decimal(str(r.rate)) for r in rates] == [Decimal(repr(x)) for x in funding.funding_rate]
    assert len(catalog.query(MarkPriceUpdate, identifiers=["BTCUSDT-PERP.BINANCE"])) == 266
    eth5 = catalog.query(Bar, identifiers=["ETHUSDT-PERP.BINANCE-5-MINUTE-LAST-EXTERNAL"])
    eth1h = catalog.query(Bar, identifiers=["ETHUSDT-PERP.BINANCE-1-HOUR-LAST-EXTERNAL"])
    assert (len(eth5), len(eth1h)) == (10906, 719)


def test_a_feather_file_named_directly_is_ingested(shared_data: Path, tmp_path: Path) -> None:
    folder = freqtrade_folder(shared_data, tmp_path) / "data" / "binance" / "futures"
    report = ingest([folder / "BTC_USDT_USDT-1m-futures.feather"], tmp_path / "catalog")
    assert report.objects_read == 3 * 1440 and not report.skipped


def test_a_broken_freqtrade_file_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "BTC_USDT_USDT-1m-futures.json"
    path.write_text('[[1746864000000, 100.0, 101.0, 99.0, 100.5, 3.0], [1746864060000, "x", 1, 1, 1, 1]]')
    assert main(["data", "ingest", str(path), "--catalog", str(tmp_path / "catalog")]) == 2
    err = capsys.readouterr().err
    assert "BTC_USDT_USDT-1m-futures.json: row 2: open 'x' is not a number" in err
    assert not (tmp_path / "catalog" / "data").exists()


def test_data_list_shows_coverage_and_a_ten_month_hole(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vision = shared_data / "klines_1m_vision"
    ingest([vision / "ALGOUSDT-1m-2023-02.csv.gz", vision / "ALGOUSDT-1m-2024-02.csv.gz"], tmp_path)
    ingest([shared_data / "ohlcv_2021-11_xrp"], tmp_path)
    assert main(["data", "list", "--catalog", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    algo = next(line for line in lines if line.startswith("ALGOUSDT"))
    assert algo.split() == [
        "ALGOUSDT",
        "1-MINUTE-LAST",
        "bars",
        "(Binance",
        "klines)",
        "82,080",
        "2023-02-01",
        "00:01",
        "2024-03-01",
        "00:00",
        "1",
    ]
    assert "ALGOUSDT 1-MINUTE-LAST bars (Binance klines): 2023-03-01 00:00 -> 2024-02-01 00:01 (337 d 0 h)" in out
    assert any(line.startswith("XRPUSDT") and "funding rates" in line and line.endswith("none") for line in lines)
    assert main(["data", "list", "XRPUSDT", "--catalog", str(tmp_path)]) == 0
    assert "ALGOUSDT" not in capsys.readouterr().out.split("\n", 1)[1]
