"""Any USDT-M perpetual an ingested exchangeInfo defines can be ingested and backtested; the definition nearest
the period is used; a JSON that is not exchangeInfo is refused cleanly. Real klines (FILUSDT, Binance Vision),
filed under a symbol the offline table lacks."""

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from catalog.ingest import ingest
from catalog.inventory import catalog_symbols, instrument_versions
from nodes.backtest.runner import run_backtest
from nodes.cli import main
from nodes.settings import ConfigError, load_backtest_settings
from tests.exchange_info import write_exchange_info

MS_2023 = 1_672_531_200_000  # 2023-01-01
MS_2025 = 1_735_689_600_000  # 2025-01-01


def doge_klines(shared_data: Path, folder: Path) -> Path:
    """Real FILUSDT 1m klines of September 2024 under the name of a symbol the offline table does not have."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "DOGEUSDT-1m-2024-09.csv.gz"
    shutil.copy(shared_data / "klines_1m_vision" / "FILUSDT-1m-2024-09.csv.gz", target)
    return target


def config(tmp_path: Path, catalog: Path, symbols: str = '"DOGEUSDT"') -> Path:
    path = tmp_path / "doge.toml"
    path.write_text(
        f"""
[backtest]
catalog = "{catalog}"
symbols = [{symbols}]
start = "2024-09-10"
end = "2024-09-11"
report_dir = "{tmp_path / "reports"}"

[venue]
starting_balance = 10000

[strategy]
path = "benchmarks.ema_cross:EMACrossNotional"
config_path = "benchmarks.ema_cross:EMACrossNotionalConfig"
per_instrument = true

[strategy.config]
notional_usdt = "200"
"""
    )
    return path


def test_symbol_defined_by_an_ingested_exchange_info_is_ingested_and_backtested(
    shared_data: Path, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog"
    klines = doge_klines(shared_data, tmp_path / "files")
    with pytest.raises(ConfigError, match="DOGEUSDT is not an instrument of the catalog"):
        load_backtest_settings(config(tmp_path, catalog))
    info = write_exchange_info(
        tmp_path / "exchangeInfo.json",
        shared_data,
        {"DOGEUSDT": ("0.00001", "1", "5"), "1000SHIBUSDT": ("0.000001", "1", "5")},
        MS_2025,
    )
    ingest([info, klines], catalog)
    assert {"DOGEUSDT", "1000SHIBUSDT"} <= catalog_symbols(catalog)
    outcome = run_backtest(load_backtest_settings(config(tmp_path, catalog)))
    assert len(outcome.positions) > 20
    used = outcome.engine.cache.instrument(outcome.instruments["DOGEUSDT"].id)
    assert used.price_increment.as_decimal() == Decimal("0.00001")
    assert used.ts_init == MS_2025 * 1_000_000


def test_the_definition_nearest_the_period_is_used(shared_data: Path, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    old = write_exchange_info(tmp_path / "old.json", shared_data, {"DOGEUSDT": ("0.001", "1", "5")}, MS_2023)
    new = write_exchange_info(tmp_path / "new.json", shared_data, {"DOGEUSDT": ("0.0001", "1", "20")}, MS_2025)
    ingest([old, new, doge_klines(shared_data, tmp_path / "files")], catalog)
    ingest([new], catalog)  # the same exchangeInfo again: no third version
    assert [i.ts_init for i in instrument_versions(catalog, "DOGEUSDT")] == [MS_2023 * 10**6, MS_2025 * 10**6]
    # September 2024 is nearer 2025-01-01 than 2023-01-01
    outcome = run_backtest(load_backtest_settings(config(tmp_path, catalog)))
    used = outcome.engine.cache.instrument(outcome.instruments["DOGEUSDT"].id)
    assert used.price_increment.as_decimal() == Decimal("0.0001")
    assert used.min_notional.as_decimal() == Decimal("20")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"symbols": "BTCUSDT"}', "not a Binance USDT-M futures exchangeInfo answer"),
        ("[1, 2, 3]", "not a Binance USDT-M futures exchangeInfo answer"),
        ('{"serverTime": 1, "symbols": [', "not valid JSON"),
        (
            '{"serverTime": 1700000000000, "symbols": [{"symbol": "XUSDT", "contractType": "PERPETUAL",'
            ' "quoteAsset": "USDT", "filters": []}]}',
            "no usable USDT-M perpetual in this exchangeInfo (XUSDT: lacks filter field 'PRICE_FILTER')",
        ),
        ('{"symbols": []}', "without a 'serverTime'"),
    ],
)
def test_a_json_that_is_not_a_usable_exchange_info_is_one_clear_line(
    tmp_path: Path, content: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "info.json"
    path.write_text(content)
    assert main(["data", "ingest", str(path), "--catalog", str(tmp_path / "catalog")]) == 2
    err = capsys.readouterr().err
    assert problem in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "catalog" / "data").exists()


def test_data_of_a_symbol_no_exchange_info_defines_is_refused(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    klines = doge_klines(shared_data, tmp_path / "files")
    assert main(["data", "ingest", str(klines), "--catalog", str(tmp_path / "catalog")]) == 2
    err = capsys.readouterr().err
    assert "unknown symbol 'DOGEUSDT': no exchangeInfo defines it" in err
    assert "ats data download DOGEUSDT" in err
