"""``run_scan`` on a real-data catalog: ranking, availability, no lookahead; the FactorBook helpers."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.model.identifiers import InstrumentId

from catalog.convert import convert_file
from catalog.files import identify
from catalog.instruments import binance_perpetual
from catalog.store import write_series
from factors import reference
from factors.book import FactorBook
from factors.config import FactorConfig
from factors.inputs import OpenInterest
from nodes.research.scan import format_scan_table, run_scan
from tests.factors_data import load_bars

ROWS = slice(1000, 1800)
SOL = "SOLUSDT-PERP.BINANCE"
LINK = "LINKUSDT-PERP.BINANCE"


def _oi_frame(sol_bars: list) -> pd.DataFrame:
    """An explicit OI series for SOL, one value every 5 minutes over the bars' span: NOT market data (none
    exists in ../shared/data); it only proves the catalog -> scan -> factor O plumbing."""
    ts = np.array([b.ts_event for b in sol_bars if b.ts_event % (5 * 60_000_000_000) == 0], dtype=np.int64)
    return pd.DataFrame({"ts": ts, "oi": 1.0e6 * (1.0 + 0.05 * np.sin(np.arange(len(ts)) / 20.0))})


def _explicit_sol_oi(objects: list) -> list:
    sol = [o for o in objects if hasattr(o, "bar_type") and str(o.bar_type).startswith("SOLUSDT")]
    frame = _oi_frame(sol)
    iid = InstrumentId.from_str(SOL)
    return [
        OpenInterest(instrument_id=iid, open_interest=float(v), ts_event=int(t), ts_init=int(t))
        for t, v in zip(frame.ts, frame.oi, strict=True)
    ]


@pytest.fixture(scope="module")
def catalog_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = shared_data / "ohlcv_2025-03_2025-06"
    objects: list = []
    for s in ("BTC", "ETH", "SOL"):
        objects += load_bars(folder / f"{s}USDT-1m.csv.gz", ROWS)
    for name in ("SOLUSDT-funding_rate.csv.gz", "SOLUSDT-mark-8h.csv.gz"):
        data_file = identify(folder / name)
        objects += convert_file(data_file, binance_perpetual("SOLUSDT"))
    objects += load_bars(shared_data / "klines_1m_vision/LINKUSDT-1m-2023-02.csv.gz", slice(0, 800))
    objects += _explicit_sol_oi(objects)
    path = tmp_path_factory.mktemp("catalog")
    write_series(path, objects)
    return path


def test_scan_ranks_and_reports_availability(catalog_dir: Path) -> None:
    ids = [SOL, LINK, "BTCUSDT-PERP.BINANCE", "NOPEUSDT-PERP.BINANCE"]
    results = run_scan(str(catalog_dir), ids, None, FactorConfig())
    assert [r.instrument_id for r in results][-1] == "NOPEUSDT-PERP.BINANCE"
    assert "no 1-MINUTE bars" in results[-1].notes["data"]
    signals = [r for r in results if r.direction != "FLAT"]
    assert [r.strength for r in signals] == sorted((r.strength for r in signals), reverse=True)
    by_id = {r.instrument_id: r for r in results}
    # LINK's Vision klines carry taker-buy volume: C is live; SOL's OHLCV bars have none: C missing, said why
    assert by_id[LINK].values["C"] is not None
    assert by_id[SOL].values["C"] is None and "taker-buy" in by_id[SOL].notes["C"]
    # SOL has real funding and marks in the catalog -> B live; BTC/ETH bars in the catalog -> I live
    assert by_id[SOL].values["B"] is not None and by_id[SOL].values["I"] is not None
    assert by_id[LINK].values["I"] is None  # 2023 LINK bars share no timestamp with the 2025 BTC/ETH bars
    table = format_scan_table(results)
    assert "SOLUSDT" in table and "LINKUSDT" in table and "not available - C:" in table


def test_scan_at_a_time_uses_no_later_bar(catalog_dir: Path, shared_data: Path) -> None:
    bars = load_bars(shared_data / "ohlcv_2025-03_2025-06/SOLUSDT-1m.csv.gz", ROWS)
    at_bar = bars[500]
    at = pd.Timestamp(at_bar.ts_event, unit="ns", tz="UTC")
    config = FactorConfig(weights={"B": 0.0})  # bars only, so the hand-fed book below sees the same data
    result = next(r for r in run_scan(str(catalog_dir), [SOL], at, config) if r.instrument_id == SOL)
    assert result.ts_ns == at_bar.ts_event
    iid = InstrumentId.from_str(SOL)
    book = FactorBook(config, [iid])
    oi = _oi_frame(bars)
    k = 0
    for b in bars[:501]:
        while k < len(oi) and oi.ts[k] <= b.ts_event:  # the catalog's OI series, replayed the same way
            book.handle_open_interest(iid, float(oi.oi[k]), int(oi.ts[k]))
            k += 1
        book.handle_bar(b)
    for key in ("T", "M", "S", "V", "F", "O"):
        assert result.values[key] == pytest.approx(book.factor_value(iid, key), abs=1e-9), key


def test_scan_reads_open_interest_from_the_catalog(catalog_dir: Path, shared_data: Path) -> None:
    bars = load_bars(shared_data / "ohlcv_2025-03_2025-06/SOLUSDT-1m.csv.gz", ROWS)
    config = FactorConfig()
    result = next(r for r in run_scan(str(catalog_dir), [SOL], None, config) if r.instrument_id == SOL)
    frame = pd.DataFrame({"ts": [b.ts_event for b in bars], "close": [b.close.as_double() for b in bars]})
    expected = reference.open_interest(frame, _oi_frame(bars), config).iloc[-1]
    assert not np.isnan(expected)
    assert result.values["O"] == pytest.approx(expected, abs=1e-9)


def test_scan_bad_catalog_path_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ats data ingest"):
        run_scan(str(tmp_path / "missing"), [SOL], None, FactorConfig())


def test_book_correlation_and_atr_on_real_bars(shared_data: Path) -> None:
    folder = shared_data / "ohlcv_2025-03_2025-06"
    data = {s: load_bars(folder / f"{s}USDT-1m.csv.gz", slice(0, 400)) for s in ("BTC", "ETH", "XMR")}
    ids = {s: b[0].bar_type.instrument_id for s, b in data.items()}
    config = FactorConfig(correlation_window=120)
    book = FactorBook(config, list(ids.values()))
    for i in range(400):
        for s in data:
            book.handle_bar(data[s][i])
    # XMR's file starts two minutes after BTC's: the book pairs returns by bar time, not by position
    closes = {s: pd.Series({b.ts_event: b.close.as_double() for b in data[s]}) for s in data}
    rets = {s: c / c.shift() - 1.0 for s, c in closes.items()}
    for a, b in (("BTC", "ETH"), ("BTC", "XMR")):
        pair = pd.concat([rets[a].iloc[-120:], rets[b].iloc[-120:]], axis=1, join="inner").dropna()
        expected = float(np.corrcoef(pair.iloc[:, 0], pair.iloc[:, 1])[0, 1])
        assert book.returns_correlation(ids[a], ids[b]) == pytest.approx(expected, abs=1e-12)
    assert book.returns_correlation(ids["BTC"], ids["ETH"]) > 0.5  # BTC and ETH move together
    frame = pd.DataFrame({k: [getattr(b, k).as_double() for b in data["XMR"]] for k in ("high", "low", "close")})
    from factors.reference import wilder_atr

    atr = float(wilder_atr(frame, config.atr_period).iloc[-1])
    assert book.atr(ids["XMR"]) == pytest.approx(atr, rel=1e-12)
    assert book.atr_pct(ids["XMR"]) == pytest.approx(100 * atr / frame["close"].iloc[-1], rel=1e-12)
    fresh = FactorBook(config, [ids["BTC"]])
    assert fresh.atr(ids["BTC"]) is None and fresh.returns_correlation(ids["BTC"], ids["BTC"]) is None
    assert len(book.indicators(ids["BTC"])) == 11


def test_book_requires_market_ids_in_universe() -> None:
    btc = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
    sol = InstrumentId.from_str(SOL)
    with pytest.raises(ValueError, match="not in instrument_ids"):
        FactorBook(FactorConfig(), [sol], btc_id=btc)


def test_independence_goes_stale_when_the_market_bars_stop(shared_data: Path) -> None:
    folder = shared_data / "ohlcv_2025-03_2025-06"
    data = {s: load_bars(folder / f"{s}USDT-1m.csv.gz", slice(10, 200)) for s in ("BTC", "ETH", "XMR")}
    ids = {s: b[0].bar_type.instrument_id for s, b in data.items()}
    book = FactorBook(FactorConfig(), list(ids.values()), ids["BTC"], ids["ETH"])
    for i in range(150):
        for s in data:
            book.handle_bar(data[s][i])
    assert book.score(ids["XMR"]).values["I"] is not None
    for b in data["XMR"][150:]:  # BTC and ETH go quiet, XMR keeps trading
        book.handle_bar(b)
    r = book.score(ids["XMR"])
    assert r.values["I"] is None and "stale" in r.notes["I"]
