"""Bars of any size from finer catalogued bars (catalog.aggregate.ensure_bars), checked against real data:
Binance's own 1h bars, Binance Vision's per-minute taker-buy volume; and a 5m backtest where only 1m is catalogued."""

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from nautilus_trader.adapters.binance.common.types import BinanceBar
from nautilus_trader.model.data import Bar
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.aggregate import ensure_bars
from catalog.ingest import ingest
from nodes.backtest.runner import run_backtest
from nodes.settings import load_backtest_settings

MS = 1_000_000
NOV_2023 = (1_698_796_800_000, 1_701_388_800_000)  # 2023-11-01 .. 2023-12-01, open times in ms


def _slice(source: Path, target: Path) -> Path:
    frame = pd.read_csv(source)
    frame = frame[(frame.open_time_ms >= NOV_2023[0]) & (frame.open_time_ms < NOV_2023[1])]
    frame.to_csv(target, index=False)
    return target


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*.parquet")}


def test_hour_bars_built_from_five_minute_bars_equal_binances_hour_bars(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "ohlcv_2023-01_2024-05"
    five = _slice(folder / "BTCUSDT-5m.csv.gz", tmp_path / "BTCUSDT-5m.csv")
    real = pd.read_csv(_slice(folder / "BTCUSDT-1h.csv.gz", tmp_path / "BTCUSDT-1h.csv"))
    ingest([five], tmp_path / "catalog")

    ready = ensure_bars(tmp_path / "catalog", ["BTCUSDT"], "1h")

    assert ready["BTCUSDT"].bar_class is Bar and ready["BTCUSDT"].added == len(real) == 720
    built = ParquetDataCatalog(str(tmp_path / "catalog")).query(
        Bar, identifiers=["BTCUSDT-PERP.BINANCE-1-HOUR-LAST-EXTERNAL"]
    )
    assert [b.ts_event for b in built] == [(t + 3_600_000) * MS for t in real.open_time_ms]  # stamped at the close
    odd_hour = 1_699_628_400_000  # 2023-11-10 15:00: the source's 5m file holds a partial candle (206 BTC)
    for bar, row in zip(built, real.itertuples(), strict=True):
        for field in ("open", "high", "low", "close"):
            assert getattr(bar, field).as_decimal() == Decimal(repr(getattr(row, field)))
        if row.open_time_ms != odd_hour:
            assert bar.volume.as_decimal() == Decimal(repr(row.volume))


def test_binance_klines_keep_trade_count_and_taker_buy_volume_summed(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "klines_1m_vision" / "FILUSDT-1m-2024-09.csv.gz"
    ingest([source], tmp_path)
    ready = ensure_bars(tmp_path, ["FILUSDT"], "15m", "2024-09-10", "2024-09-12")
    assert ready["FILUSDT"].bar_class is BinanceBar
    assert ready["FILUSDT"].rows == 2 * 96 + 1  # both ends included, as a backtest replays them
    bars = ParquetDataCatalog(str(tmp_path)).query(
        BinanceBar, identifiers=["FILUSDT-PERP.BINANCE-15-MINUTE-LAST-EXTERNAL"]
    )
    frame = pd.read_csv(source, dtype={"taker_buy_volume": str, "quote_volume": str, "taker_buy_quote_volume": str})
    frame["close_ns"] = ((frame.open_time // 900_000 + 1) * 900_000) * MS
    groups = {k: g for k, g in frame.groupby("close_ns")}
    assert all(type(b) is BinanceBar for b in bars)
    for bar in bars:
        minutes = groups[bar.ts_event]
        assert len(minutes) == 15
        assert bar.count == minutes["count"].sum()
        assert bar.taker_buy_base_volume == sum(map(Decimal, minutes.taker_buy_volume))
        assert bar.taker_buy_quote_volume == sum(map(Decimal, minutes.taker_buy_quote_volume))
        assert bar.quote_volume == sum(map(Decimal, minutes.quote_volume))
        assert bar.open.as_decimal() == Decimal(repr(float(minutes.open.iloc[0])))
        assert bar.close.as_decimal() == Decimal(repr(float(minutes.close.iloc[-1])))
        assert bar.high.as_decimal() == Decimal(repr(float(minutes.high.max())))


def test_a_second_call_builds_nothing_and_a_longer_period_only_the_new_buckets(
    shared_data: Path, tmp_path: Path
) -> None:
    ingest([shared_data / "klines_1m_vision" / "FILUSDT-1m-2024-09.csv.gz"], tmp_path)
    first = ensure_bars(tmp_path, ["FILUSDT"], "5-MINUTE", "2024-09-10", "2024-09-11")["FILUSDT"]
    before = _tree(tmp_path / "data")
    again = ensure_bars(tmp_path, ["FILUSDT"], "5-MINUTE", "2024-09-10", "2024-09-11")["FILUSDT"]
    assert (first.added, again.added, again.rows) == (289, 0, 289)
    assert _tree(tmp_path / "data") == before  # nothing rewritten
    longer = ensure_bars(tmp_path, ["FILUSDT"], "5m", "2024-09-10", "2024-09-12")["FILUSDT"]
    assert (longer.added, longer.rows) == (288, 577)


def test_a_coarser_series_fills_the_buckets_the_finest_leaves(shared_data: Path, tmp_path: Path) -> None:
    """1m bars in May and only 5m bars in March (the shared 2025 set): 1h bars are built for both periods, each
    from the finest bars that cover it, and equal Binance's own 1h bars."""
    folder = shared_data / "ohlcv_2025-03_2025-06"
    march = pd.read_csv(folder / "BTCUSDT-5m.csv.gz")
    march = march[march.open_time_ms < 1_741_651_200_000]  # up to 2025-03-11 00:00
    march.to_csv(tmp_path / "BTCUSDT-5m.csv", index=False)
    ingest([tmp_path / "BTCUSDT-5m.csv", folder / "BTCUSDT-1m.csv.gz"], tmp_path / "catalog")

    march_hours = ensure_bars(tmp_path / "catalog", ["BTCUSDT"], "1h", "2025-03-07", "2025-03-10")["BTCUSDT"]
    may_hours = ensure_bars(tmp_path / "catalog", ["BTCUSDT"], "1h", "2025-05-10", "2025-05-12")["BTCUSDT"]

    assert (march_hours.rows, may_hours.rows) == (73, 49)  # both ends included
    real = pd.read_csv(folder / "BTCUSDT-1h.csv.gz").set_index("open_time_ms")
    built = ParquetDataCatalog(str(tmp_path / "catalog")).query(
        Bar,
        identifiers=["BTCUSDT-PERP.BINANCE-1-HOUR-LAST-EXTERNAL"],
        start=pd.Timestamp("2025-03-07", tz="UTC"),
        end=pd.Timestamp("2025-03-10", tz="UTC"),
    )
    assert len(built) == 73
    for bar in built:
        row = real.loc[bar.ts_event // MS - 3_600_000]
        for field in ("high", "low", "close"):
            assert getattr(bar, field).as_decimal() == Decimal(repr(float(getattr(row, field))))


def test_incomplete_buckets_at_the_edges_are_left_out(shared_data: Path, tmp_path: Path) -> None:
    # the shared BTCUSDT 1m file starts at 2025-05-04 15:33 (bar closing 15:34): 15:30-15:35 lacks 3 minutes
    ingest([shared_data / "ohlcv_2025-03_2025-06" / "BTCUSDT-1m.csv.gz"], tmp_path)
    ensure_bars(tmp_path, ["BTCUSDT"], "5m")
    bars = ParquetDataCatalog(str(tmp_path)).query(Bar, identifiers=["BTCUSDT-PERP.BINANCE-5-MINUTE-LAST-EXTERNAL"])
    assert pd.Timestamp(bars[0].ts_event, tz="UTC") == pd.Timestamp("2025-05-04 15:40", tz="UTC")
    assert pd.Timestamp(bars[-1].ts_event, tz="UTC") == pd.Timestamp("2025-06-03 15:30", tz="UTC")


@pytest.mark.parametrize("bar", ["5m", "15-MINUTE", "1h"])
def test_a_backtest_on_a_bar_size_the_catalog_lacks_runs_from_its_one_minute_bars(
    shared_data: Path, tmp_path: Path, bar: str
) -> None:
    catalog = tmp_path / "catalog"
    ingest([shared_data / "klines_1m_vision" / "FILUSDT-1m-2024-09.csv.gz"], catalog)
    config = tmp_path / "fil.toml"
    config.write_text(
        f"""
[backtest]
catalog = "{catalog}"
symbols = ["FILUSDT"]
bar = "{bar}"
start = "2024-09-02"
end = "2024-09-20"

[venue]
starting_balance = 10000

[strategy]
path = "benchmarks.ema_cross:EMACrossNotional"
config_path = "benchmarks.ema_cross:EMACrossNotionalConfig"
per_instrument = true
"""
    )
    outcome = run_backtest(load_backtest_settings(config))
    minutes = {"5m": 5, "15-MINUTE": 15, "1h": 60}[bar]
    assert outcome.bars == {"FILUSDT": 18 * 1440 // minutes + 1}
    assert outcome.data_points == outcome.bars["FILUSDT"]
    assert len(outcome.positions) > 5


def test_scan_on_a_bar_size_the_catalog_lacks_scores_from_built_bars(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nodes.cli import main

    catalog = tmp_path / "catalog"
    ingest([shared_data / "klines_1m_vision" / "FILUSDT-1m-2024-09.csv.gz"], catalog)
    config = tmp_path / "scan.toml"
    config.write_text(
        f"""
[backtest]
catalog = "{catalog}"
symbols = ["FILUSDT"]
bar = "15m"

[venue]
starting_balance = 1000

[strategy]
path = "strategies.ats:AtsStrategy"
config_path = "strategies.config:AtsStrategyConfig"
"""
    )
    assert main(["scan", str(config), "--at", "2024-09-20T12:00"]) == 0
    out = capsys.readouterr().out
    assert "FILUSDT" in out and "no 15-MINUTE bars" not in out
    assert "not available - C" not in out  # the built bars kept the taker-buy volume
