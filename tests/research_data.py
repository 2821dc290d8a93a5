"""A small catalog of real Binance data for the research tools' tests (study, lookahead checks, plot).

Two days of 1m bars of six 2025 perpetuals (plus SOL's real funding rates and mark prices), and 3,000 Vision
klines with taker-buy volume of LINK (2023-02), and 300 of BTC's real 5m bars of March 2025, written once per test
session.
"""

from pathlib import Path

import pytest

from catalog.convert import convert_file
from catalog.files import identify
from catalog.instruments import binance_perpetual
from catalog.store import write_series
from tests.conftest import require_shared_data
from tests.factors_data import load_bars

SYMBOLS_2025 = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT", "ADAUSDT")
ROWS_2025 = slice(7000, 9880)  # 2025-05-09 12:14 -> 2025-05-11 12:13 UTC, 2,880 one-minute bars
ROWS_VISION = slice(0, 3000)
ROWS_BTC_5M = slice(0, 300)


@pytest.fixture(scope="session")
def research_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shared = require_shared_data()
    folder = shared / "ohlcv_2025-03_2025-06"
    objects: list = [binance_perpetual(s) for s in (*SYMBOLS_2025, "LINKUSDT")]
    for symbol in SYMBOLS_2025:
        objects += load_bars(folder / f"{symbol}-1m.csv.gz", ROWS_2025)
    for name in ("SOLUSDT-funding_rate.csv.gz", "SOLUSDT-mark-8h.csv.gz"):
        data_file = identify(folder / name)
        objects += convert_file(data_file, binance_perpetual("SOLUSDT"))
    objects += load_bars(shared / "klines_1m_vision/LINKUSDT-1m-2023-02.csv.gz", ROWS_VISION)
    objects += load_bars(folder / "BTCUSDT-5m.csv.gz", ROWS_BTC_5M)  # March 5m files beside May 1m files
    path = tmp_path_factory.mktemp("research-catalog")
    write_series(path, objects)
    return path
