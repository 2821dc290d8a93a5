"""A series' timestamps are kept beside the catalog and read back while its files are unchanged: the check every
``ats backtest`` makes before its run does not read the same parquet files again and again."""

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from catalog.ingest import ingest
from catalog.inventory import TIMESTAMPS_CACHE, data_dir, series_timestamps

SERIES = ("funding_rate_update", "BTCUSDT-PERP.BINANCE")


def _read(catalog: Path) -> np.ndarray:
    files = sorted((data_dir(catalog) / SERIES[0] / SERIES[1]).glob("*.parquet"))
    return np.unique(np.concatenate([pq.read_table(f, columns=["ts_init"])["ts_init"].to_numpy() for f in files]))


def test_timestamps_are_kept_until_a_file_of_the_series_changes(shared_data: Path, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    ingest([shared_data / "ohlcv_2025-03_2025-06" / "BTCUSDT-funding_rate.csv.gz"], catalog)
    truth = _read(catalog)
    assert len(truth) > 100
    assert np.array_equal(series_timestamps(catalog, *SERIES), truth)
    (kept,) = (catalog / TIMESTAMPS_CACHE / SERIES[0] / SERIES[1]).glob("*.npy")

    # what is kept is what is read back: a planted entry under the files' key is returned as it is
    np.save(kept, truth[:3])
    assert np.array_equal(series_timestamps(catalog, *SERIES), truth[:3])

    # a file touched (or rewritten, added, removed) makes a new key: the files are read again, the old entry goes
    (first, *_) = sorted((data_dir(catalog) / SERIES[0] / SERIES[1]).glob("*.parquet"))
    stat = first.stat()
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000))
    assert np.array_equal(series_timestamps(catalog, *SERIES), truth)
    assert [p.name for p in kept.parent.glob("*.npy")] != [kept.name] and len(list(kept.parent.glob("*.npy"))) == 1

    # a damaged entry is read past, and replaced
    (entry,) = kept.parent.glob("*.npy")
    entry.write_bytes(b"not an array")
    assert np.array_equal(series_timestamps(catalog, *SERIES), truth)
    assert np.array_equal(np.load(entry), truth)

    # a cache that cannot be written (here a file where its folder should be) is passed over
    entry.unlink()
    kept.parent.rmdir()
    kept.parent.write_text("in the way")
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000))
    assert np.array_equal(series_timestamps(catalog, *SERIES), truth)
