"""A BacktestNode run driven by a config file on real catalogued data: orders, positions, and determinism."""

from pathlib import Path

import pandas as pd
import pytest

from nodes.backtest.runner import CatalogMissingDataError, run_backtest
from nodes.settings import load_backtest_settings


def _config(tmp_path: Path, shared_data: Path, catalog: Path, sources: bool = True) -> Path:
    source_line = f'sources = ["{shared_data / "ohlcv_2025-03_2025-06"}"]' if sources else ""
    path = tmp_path / "ema.toml"
    path.write_text(
        f"""
[backtest]
catalog = "{catalog}"
{source_line}
symbols = ["ETHUSDT", "LTCUSDT"]
bar = "1-MINUTE"
start = "2025-05-10"
end = "2025-05-12"
report_dir = "{tmp_path / "reports"}"

[venue]
starting_balance = 10000
default_leverage = 3

[strategy]
path = "benchmarks.ema_cross:EMACrossNotional"
config_path = "benchmarks.ema_cross:EMACrossNotionalConfig"
per_instrument = true

[strategy.config]
notional_usdt = "500"
"""
    )
    return path


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("catalog")


def test_backtest_runs_twice_with_identical_results(shared_data: Path, tmp_path: Path, catalog_dir: Path) -> None:
    settings = load_backtest_settings(_config(tmp_path, shared_data, catalog_dir))
    first = run_backtest(settings)
    second = run_backtest(settings)
    # two symbols x two days of 1m bars (both ends included) + their funding and mark-price updates
    assert first.data_points == second.data_points == 2 * (2 * 24 * 60 + 1) + 2 * 2 * (6 + 1)
    assert len(first.positions) > 100
    assert len(first.fills) >= 2 * len(first.positions) - 2
    columns = [
        "instrument_id",
        "entry",
        "side",
        "quantity",
        "avg_px_open",
        "avg_px_close",
        "realized_pnl",
        "ts_closed",
    ]
    pd.testing.assert_frame_equal(
        first.positions[columns].reset_index(drop=True), second.positions[columns].reset_index(drop=True)
    )
    assert first.result.stats_pnls == second.result.stats_pnls
    assert set(first.positions.instrument_id) == {"ETHUSDT-PERP.BINANCE", "LTCUSDT-PERP.BINANCE"}


def test_empty_catalog_without_sources_says_what_to_run(shared_data: Path, tmp_path: Path) -> None:
    settings = load_backtest_settings(_config(tmp_path, shared_data, tmp_path / "empty", sources=False))
    with pytest.raises(CatalogMissingDataError) as info:
        run_backtest(settings)
    message = str(info.value)
    assert "uv run ats data download ETHUSDT LTCUSDT --start 2025-05-10 --end 2025-05-12 --interval 1m" in message
    assert "uv run ats data ingest" in message
