"""What a catalog holds: its instruments (every exchangeInfo version), its series, and their coverage and gaps.

Reads the catalog's folders and parquet timestamp columns directly (no Nautilus objects are built), so checking a
config against a large catalog, or listing it, takes a moment rather than a full read.
"""

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from nautilus_trader.adapters.binance.common.types import BinanceBar
from nautilus_trader.model.data import Bar, FundingRateUpdate, MarkPriceUpdate
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.instruments import instrument_id_for, nearest_version, symbol_of
from factors.inputs import OpenInterest

INSTRUMENT_FOLDER = "crypto_perpetual"
# catalog folder -> (data type name shown to traders, Nautilus class)
SERIES_FOLDERS: dict[str, tuple[str, type]] = {
    "binance_bar": ("bars (Binance klines)", BinanceBar),
    "bar": ("bars", Bar),
    "funding_rate_update": ("funding rates", FundingRateUpdate),
    "mark_price_update": ("mark prices", MarkPriceUpdate),
    "custom_open_interest": ("open interest", OpenInterest),
}
_SPEC_NS = {"MINUTE": 60_000_000_000, "HOUR": 3_600_000_000_000, "DAY": 86_400_000_000_000}


def data_dir(catalog_dir: Path) -> Path:
    return Path(catalog_dir) / "data"


def catalog_symbols(catalog_dir: Path) -> set[str]:
    """Symbols (``BTCUSDT``) the catalog has an instrument for."""
    folder = data_dir(catalog_dir) / INSTRUMENT_FOLDER
    if not folder.is_dir():
        return set()
    return {symbol_of(p.name) for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}


def instrument_versions(catalog_dir: Path, symbol: str) -> list[CryptoPerpetual]:
    """Every stored definition of a symbol's instrument, oldest first (one per exchangeInfo time)."""
    folder = data_dir(catalog_dir) / INSTRUMENT_FOLDER / instrument_id_for(symbol).value
    if not folder.is_dir():
        return []
    versions = ParquetDataCatalog(str(catalog_dir)).instruments(instrument_ids=[instrument_id_for(symbol).value])
    return sorted(versions, key=lambda i: i.ts_init)


def instrument_for_period(
    catalog_dir: Path, symbol: str, start_ns: int | None, end_ns: int | None
) -> CryptoPerpetual | None:
    """The catalogued definition whose exchangeInfo time is nearest the period; None if there is none."""
    versions = instrument_versions(catalog_dir, symbol)
    return nearest_version(versions, start_ns, end_ns) if versions else None


def bar_step_ns(bar_type: str) -> int | None:
    """``BTCUSDT-PERP.BINANCE-5-MINUTE-LAST-EXTERNAL`` -> 300 s in ns; None when not a time bar."""
    parts = bar_type.split("-")
    for index in range(len(parts) - 1):
        if parts[index].isdigit() and parts[index + 1] in _SPEC_NS:
            return int(parts[index]) * _SPEC_NS[parts[index + 1]]
    return None


def bar_class_in(catalog_dir: Path, bar_type: str) -> type | None:
    """BinanceBar when the catalog holds klines with taker-buy volume for this bar type, plain Bar for OHLCV."""
    for folder, cls in (("binance_bar", BinanceBar), ("bar", Bar)):
        path = data_dir(catalog_dir) / folder / bar_type
        if path.is_dir() and any(path.glob("*.parquet")):
            return cls
    return None


TIMESTAMPS_CACHE = ".ats-cache/timestamps"  # under the catalog folder: each series' timestamps, as last read


def series_timestamps(catalog_dir: Path, folder: str, identifier: str) -> np.ndarray:
    """Sorted ``ts_init`` (ns) of one series, read from its parquet files' timestamp column only.

    Every ``ats backtest`` checks its series before the run: the result is kept beside the catalog, under a key
    made of each file's name, size, modification time (ns) and inode, and read back while no file of the series was
    added, removed, rewritten or touched. A cache that cannot be read or written is ignored."""
    path = data_dir(catalog_dir) / folder / identifier
    if not path.is_dir():
        return np.empty(0, dtype=np.int64)
    files = sorted(path.glob("*.parquet"))
    if not files:
        return np.empty(0, dtype=np.int64)
    try:
        stats = [(file.name, file.stat()) for file in files]
    except OSError:  # a file went away meanwhile, or a broken link: no key, read the files as they are
        return _read_timestamps(files)
    stamp = [(name, st.st_size, st.st_mtime_ns, st.st_ino) for name, st in stats]
    key = hashlib.sha256(repr(stamp).encode()).hexdigest()[:32]
    cache = Path(catalog_dir) / TIMESTAMPS_CACHE / folder / identifier
    try:
        with open(cache / f"{key}.npy", "rb") as kept:
            return np.load(kept, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        pass
    stamps = _read_timestamps(files)
    _keep(cache, key, stamps)
    return stamps


def _read_timestamps(files: list[Path]) -> np.ndarray:
    parts = [pq.read_table(file, columns=["ts_init"]).column(0).to_numpy().astype(np.int64) for file in files]
    return np.unique(np.concatenate(parts))


def _keep(cache: Path, key: str, stamps: np.ndarray) -> None:
    """Store the timestamps under ``key`` (written whole, then renamed: a reader never sees half a file) and drop
    the series' older entries."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / f".{key}.{os.getpid()}.partial"
        with open(partial, "wb") as out:
            np.save(out, stamps, allow_pickle=False)
        os.replace(partial, cache / f"{key}.npy")
        for old in cache.glob("*.npy"):
            if old.name != f"{key}.npy":
                old.unlink(missing_ok=True)
    except OSError:  # a read-only catalog, a full disk: the next check reads the files again
        pass


@dataclass(frozen=True)
class Coverage:
    """The time span of a series, how many rows it has and the holes in it."""

    rows: int
    first_ns: int | None
    last_ns: int | None
    gaps: list[tuple[int, int]]  # (last timestamp before the hole, first timestamp after it)


def rows_between(timestamps: np.ndarray, start_ns: int | None, end_ns: int | None) -> int:
    """How many of the sorted timestamps fall in [start, end] (both ends included, as a backtest replays)."""
    low = 0 if start_ns is None else int(np.searchsorted(timestamps, start_ns, side="left"))
    high = len(timestamps) if end_ns is None else int(np.searchsorted(timestamps, end_ns, side="right"))
    return max(0, high - low)


def coverage_of(timestamps: np.ndarray, step_ns: int | None) -> Coverage:
    """Span and gaps of sorted timestamps; a gap is a step longer than ``step_ns`` (or, for event series without
    a fixed step, longer than three times the usual step, so 8 h funding turning 4 h is not a hole)."""
    if len(timestamps) == 0:
        return Coverage(0, None, None, [])
    steps = np.diff(timestamps)
    if step_ns is None:
        step_ns = int(np.median(steps)) * 3 if len(steps) else 0
    holes = np.flatnonzero(steps > step_ns) if step_ns else np.empty(0, dtype=np.int64)
    gaps = [(int(timestamps[i]), int(timestamps[i + 1])) for i in holes]
    return Coverage(len(timestamps), int(timestamps[0]), int(timestamps[-1]), gaps)


@dataclass(frozen=True)
class Series:
    folder: str
    identifier: str  # bar type or instrument id

    @property
    def kind(self) -> str:
        return SERIES_FOLDERS[self.folder][0]

    @property
    def symbol(self) -> str:
        return symbol_of(self.identifier)

    @property
    def step_ns(self) -> int | None:
        return bar_step_ns(self.identifier) if self.folder in ("bar", "binance_bar") else None

    @property
    def label(self) -> str:
        """``1-MINUTE-LAST bars (Binance klines)`` or ``funding rates``."""
        if self.folder in ("bar", "binance_bar"):
            spec = self.identifier.split(".", 1)[1].split("-", 1)[1].removesuffix("-EXTERNAL")
            return f"{spec} {self.kind}"
        return self.kind


def list_series(catalog_dir: Path) -> Iterator[Series]:
    """Every data series of the catalog, by symbol then type."""
    found = []
    for folder in SERIES_FOLDERS:
        path = data_dir(catalog_dir) / folder
        if path.is_dir():
            found += [Series(folder, p.name) for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    order = list(SERIES_FOLDERS)
    yield from sorted(found, key=lambda s: (s.symbol, order.index(s.folder), s.step_ns or 0, s.identifier))
