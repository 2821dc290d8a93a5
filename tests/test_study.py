"""``ats study`` on real data: what it reads, what it computes (against independent computations), the CLI."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.adapters.binance.common.types import BinanceBar
from nautilus_trader.model.data import Bar
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from factors.book import FactorBook
from factors.config import FactorConfig
from nodes.cli import main
from nodes.research.study_data import aggregate_bars, bars_frame, segments
from nodes.research.study_factors import factor_frame
from nodes.research.study_stats import forward_return, newey_west_sum, rank_ic, score_buckets
from tests.research_data import SYMBOLS_2025

MINUTE = 60_000_000_000


@pytest.mark.parametrize(
    ("symbol", "cls", "bar_type"),
    [
        ("SOLUSDT", Bar, "SOLUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"),
        ("LINKUSDT", BinanceBar, "LINKUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"),
    ],
)
def test_bars_frame_reads_what_the_catalog_query_returns(
    research_catalog: Path,
    symbol: str,
    cls: type,
    bar_type: str,
) -> None:
    bars = ParquetDataCatalog(str(research_catalog)).query(cls, identifiers=[bar_type])
    frame = bars_frame(research_catalog, symbol, "1-MINUTE")
    assert frame.attrs["source"] == "catalog" and len(frame) == len(bars) > 2000
    assert np.array_equal(frame["ts"].to_numpy(), [b.ts_event for b in bars])
    for column in ("open", "high", "low", "close", "volume"):
        expected = np.array([getattr(b, column).as_double() for b in bars])
        assert np.allclose(frame[column].to_numpy(), expected, rtol=1e-15, atol=0), column
    if cls is BinanceBar:
        assert np.allclose(frame["taker_buy"], [float(b.taker_buy_base_volume) for b in bars], rtol=1e-15)
    # a window: both ends inclusive, on the bar's close time
    start, end = pd.Timestamp(bars[100].ts_event, tz="UTC"), pd.Timestamp(bars[199].ts_event, tz="UTC")
    assert len(bars_frame(research_catalog, symbol, "1-MINUTE", start, end)) == 100


def test_bars_frame_aggregates_1m_like_the_exchange(research_catalog: Path) -> None:
    minutes = bars_frame(research_catalog, "LINKUSDT", "1-MINUTE")
    five = bars_frame(research_catalog, "LINKUSDT", "5-MINUTE")
    assert five.attrs["source"] == "aggregated from 1m"
    # independent computation: pandas resample of the bars' open times into 5-minute buckets
    opened = minutes.assign(t=pd.to_datetime(minutes["ts"] - MINUTE, unit="ns")).set_index("t")
    expected = opened.resample("5min").agg(
        {
            "open": "first",
            "high": "max",
            "low": "min",
            "close": "last",
            "volume": "sum",
            "taker_buy": "sum",
            "ts": "size",
        }  # fmt: skip
    )
    expected = expected[expected["ts"] == 5]
    assert np.array_equal(five["ts"].to_numpy(), expected.index.as_unit("ns").asi8 + 5 * MINUTE)
    for column in ("open", "high", "low", "close", "volume", "taker_buy"):
        assert np.allclose(five[column].to_numpy(), expected[column].to_numpy(), rtol=1e-12), column
    # a missing minute drops its 5-minute bar, never a shortened bar
    holed = minutes.drop(index=[12])
    agg = aggregate_bars(holed, 5 * MINUTE)
    assert len(agg) == len(five) - 1 and five["ts"].iloc[2] not in set(agg["ts"])
    assert segments(agg["ts"].to_numpy(), 5 * MINUTE).max() == 1


def test_bars_frame_fills_what_the_catalog_lacks_from_1m(research_catalog: Path) -> None:
    five = bars_frame(research_catalog, "BTCUSDT", "5-MINUTE")
    assert five.attrs["source"] == "catalog + aggregated from 1m"
    march = five[five["ts"] < pd.Timestamp("2025-04-01", tz="UTC").value]
    may = aggregate_bars(bars_frame(research_catalog, "BTCUSDT", "1-MINUTE"), 5 * MINUTE)
    assert len(march) == 300 and len(five) == 300 + len(may) and len(may) == 575  # complete 5m bars only
    assert five["ts"].is_monotonic_increasing and segments(five["ts"].to_numpy(), 5 * MINUTE).max() == 1


def test_factor_frame_equals_the_factor_book(research_catalog: Path) -> None:
    """The study's factor values and scores are the ones the strategy's FactorBook computes, bar by bar."""
    config = FactorConfig()
    catalog = ParquetDataCatalog(str(research_catalog))
    bar_type = "LINKUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
    bars = catalog.query(BinanceBar, identifiers=[bar_type])[:1200]
    frame = bars_frame(catalog, "LINKUSDT", "1-MINUTE").iloc[:1200]
    study = factor_frame(frame, config, MINUTE)
    book = FactorBook(config, [InstrumentId.from_str("LINKUSDT-PERP.BINANCE")])
    iid = bars[0].bar_type.instrument_id
    compared = 0
    for i, bar in enumerate(bars):
        book.handle_bar(bar)
        if not book.is_warm(iid):
            assert not study["warm"].iat[i]
            continue
        compared += 1
        result = book.score(iid)
        for key in ("T", "M", "C", "S", "V", "F"):
            assert study[key].iat[i] == pytest.approx(result.values[key], abs=1e-9), (key, i)
        assert study["score"].iat[i] == pytest.approx(result.score, abs=1e-9)
        assert study["strength"].iat[i] == pytest.approx(result.strength, abs=1e-9)
    assert compared > 1000


def test_rank_ic_is_spearman_and_newey_west_is_the_long_run_sum() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    x = rng.normal(size=n)
    y = 0.1 * x + rng.normal(size=n)
    ts = np.arange(n, dtype=np.int64) * MINUTE
    data = pd.DataFrame({"symbol": np.repeat(["A", "B"], n // 2), "ts": np.tile(ts[: n // 2], 2), "x": x, "y": y})
    rows = {r["scope"]: r for r in rank_ic(data, "x", "y", 1, MINUTE, cross_section=False)}
    for symbol in ("A", "B"):
        part = data[data["symbol"] == symbol]
        assert rows[symbol]["ic"] == pytest.approx(part["x"].rank().corr(part["y"].rank()), abs=1e-12)
    assert rows["pooled"]["ic"] == pytest.approx((rows["A"]["ic"] + rows["B"]["ic"]) / 2, abs=1e-12)
    assert 3.0 < rows["A"]["t"] < 8.0  # a true IC of ~0.1 on 1,500 independent bars
    e = rng.normal(size=500)
    direct = sum(e[t] * e[t - lag] * (1 - lag / 6) * (2 if lag else 1) for lag in range(6) for t in range(lag, 500))
    assert newey_west_sum(e, 5) == pytest.approx(direct, rel=1e-9)


def test_forward_returns_never_cross_a_gap_and_buckets_follow_the_score() -> None:
    close = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    seg = np.array([0, 0, 0, 1, 1, 1])
    r = forward_return(close, seg, 0, 1)
    assert np.allclose(r[[0, 1, 3, 4]], 1.0) and np.isnan(r[[2, 5]]).all()
    assert np.isnan(forward_return(close, seg, 0, 3)).all()
    data = pd.DataFrame(
        {
            "score": [30.0, -30.0, 5.0, 80.0],
            "signal": [30.0, -30.0, 0.0, 80.0],
            "strength": [30.0, 30, 5, 80],
            "warm": True,
            "r": [0.01, 0.02, 0.5, -0.01],
            "symbol": "A",
            "ts": [0, 1, 2, 86_400_000_000_000],
        }  # fmt: skip
    )
    table = score_buckets(data, "r", min_score=70.0, cost_bps=10.0).set_index("bucket")
    assert table.loc["30-40", "n"] == 2 and table.loc["30-40", "mean_bps"] == pytest.approx((100 - 200) / 2)
    assert table.loc["30-40", "hit_pct"] == 50.0 and table.loc["0-10", "mean_bps"] == pytest.approx(5000)
    entries = table.loc["entries (strength>=70)"]
    assert entries["n"] == 1 and entries["mean_bps"] == pytest.approx(-100) and entries["net_bps"] == -110


def test_study_command_prints_saves_and_draws(
    research_catalog: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    out = tmp_path / "study"
    code = main(
        [
            "study",
            "--catalog",
            str(research_catalog),
            "--symbols",
            *SYMBOLS_2025,
            "DOGEUSDT",  # not in the catalog: listed with source "none", studied without it
            "--start",
            "all",
            "--end",
            "all",
            "--bars",
            "1m,15m",
            "--horizons",
            "5m,1h",
            "--bucket-horizons",
            "1h",
            "--out",
            str(out),
        ]  # fmt: skip
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "Rank IC, 1m bars, pooled over symbols" in text and "Rank IC, 15m bars" in text
    assert "aggregated from 1m" in text and "Score buckets, 1m bars, 1h ahead" in text
    assert any(line.split()[1:3] == ["DOGEUSDT", "none"] for line in text.splitlines() if "DOGEUSDT" in line)
    ic = pd.read_csv(out / "ic.csv")
    pooled = ic[(ic["scope"] == "pooled") & (ic["bar"] == "1m")]
    assert set(pooled["factor"]) == {"T", "M", "S", "V", "B", "F", "score", "signal"}  # B: SOL's funding
    assert set(ic["scope"]) == {"pooled", *SYMBOLS_2025}
    assert np.isfinite(pooled["t"]).all()
    cross = pooled[pooled["horizon"] == "1h"].set_index("factor")["cs_ic"]
    assert np.isfinite(cross.drop("B")).all() and np.isnan(cross["B"])  # one symbol has B: no cross-section
    for name in ("ic_decay.csv", "score_buckets.csv", "turnover.csv", "data.csv", "study.txt"):
        assert (out / name).stat().st_size > 100, name
    html = (out / "study.html").read_text()
    assert "Rank IC with the forward return" in html and "by |score| bucket" in html


def test_study_command_names_bad_input(research_catalog: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["study", "--catalog", str(research_catalog), "--horizons", "5 parsecs"]) == 2
    assert "horizon '5 parsecs'" in capsys.readouterr().err
    assert main(["study", "--catalog", str(research_catalog), "--bars", "7x"]) == 2
    assert "bar size '7x'" in capsys.readouterr().err
    assert main(["study", "--catalog", "/nonexistent/catalog"]) == 2
    assert "ats data ingest" in capsys.readouterr().err
