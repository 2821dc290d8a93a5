"""Two ``ats data ingest`` processes writing the same symbol into one catalog at once: nothing is lost."""

import subprocess
import sys
from pathlib import Path

from nautilus_trader.adapters.binance.common.types import BinanceBar
from nautilus_trader.persistence.catalog import ParquetDataCatalog

ROOT = Path(__file__).resolve().parents[1]


def test_two_processes_ingesting_one_symbol_at_once_lose_nothing(shared_data: Path, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    months = [shared_data / "klines_1m_vision" / f"FILUSDT-1m-2023-{m}.csv.gz" for m in ("04", "05")]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "nodes.cli", "data", "ingest", str(month), "--catalog", str(catalog)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for month in months
    ]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    bars = ParquetDataCatalog(str(catalog)).query(
        BinanceBar, identifiers=["FILUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"]
    )
    assert len(bars) == 43_200 + 44_640  # April and May, every minute (without the lock: one month)
    assert len({b.ts_event for b in bars}) == len(bars)


def test_a_write_killed_between_its_renames_is_undone_by_the_next_one(shared_data: Path, tmp_path: Path) -> None:
    from catalog.ingest import ingest

    vision = shared_data / "klines_1m_vision"
    ingest([vision / "FILUSDT-1m-2023-04.csv.gz"], tmp_path)
    series = tmp_path / "data" / "binance_bar" / "FILUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
    # what kill -9 leaves after moving the old series aside and before moving the new one in
    series.rename(series.with_name(f".{series.name}.old-1a2b3c4d"))
    (tmp_path / ".staging-killed").mkdir()
    ingest([vision / "FILUSDT-1m-2023-05.csv.gz"], tmp_path)
    bars = ParquetDataCatalog(str(tmp_path)).query(BinanceBar, identifiers=[series.name])
    assert len(bars) == 43_200 + 44_640
    assert not list(tmp_path.glob(".staging-*")) and not list(series.parent.glob(".*"))
