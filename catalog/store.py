"""Write Nautilus data into a ParquetDataCatalog so that re-ingesting is idempotent and a failure changes nothing.

Nautilus's ``write_data`` appends a file per call and refuses overlapping time ranges, so ingesting the same
month twice, or two overlapping files, would fail half way. Instead each (type, identifier) series is merged
with what the catalog already holds (one row per timestamp, the newest ingest wins), written whole into a
staging catalog, and swapped in by directory renames only once every series has been written.
"""

import fcntl
import shutil
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from nautilus_trader.model.data import CustomData
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.persistence.catalog import ParquetDataCatalog

LOCK_FILE = ".catalog.lock"


@contextmanager
def catalog_lock(catalog_dir: Path) -> Iterator[None]:
    """Hold the catalog's write lock: one writer at a time, across processes (``fcntl.flock``; released by the
    kernel if the holder dies, so a killed ingest never leaves the catalog locked)."""
    catalog_dir = Path(catalog_dir)
    catalog_dir.mkdir(parents=True, exist_ok=True)
    with open(catalog_dir / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _series_key(obj: object) -> tuple[type, str]:
    if isinstance(obj, Instrument):
        return type(obj), obj.id.value
    if hasattr(obj, "bar_type"):
        return type(obj), str(obj.bar_type)
    return type(obj), obj.instrument_id.value


def _existing(catalog: ParquetDataCatalog, cls: type, identifier: str) -> list:
    if not Path(catalog._make_path(data_cls=cls, identifier=identifier)).exists():
        return []
    # Custom data types come back wrapped in CustomData: unwrap so old and new rows are the same type.
    return [
        getattr(obj, "data", obj) if isinstance(obj, CustomData) else obj
        for obj in catalog.query(cls, identifiers=[identifier])
    ]


def _same_instruments(old: list, new: list) -> bool:
    """True when every new definition is already stored, unchanged (re-ingesting the same exchangeInfo)."""
    stored = {i.ts_init: type(i).to_dict(i) for i in old}
    return all(stored.get(i.ts_init) == type(i).to_dict(i) for i in new)


def _merge(old: list, new: list) -> list:
    if not old:
        merged = {obj.ts_init: obj for obj in new}
    else:
        merged = {obj.ts_init: obj for obj in old}
        merged.update((obj.ts_init, obj) for obj in new)
    return [merged[ts] for ts in sorted(merged)]


def write_series(catalog_dir: Path, objects: Iterable) -> dict[str, int]:
    """Merge ``objects`` into the catalog at ``catalog_dir``; returns rows per series now in the catalog.

    Holds the catalog lock from reading what is stored to the last rename: two processes writing the same
    series one after the other each merge with what the other wrote, instead of the second replacing it.
    """
    catalog_dir = Path(catalog_dir)
    with catalog_lock(catalog_dir):
        recover(catalog_dir)
        return _merge_and_swap(catalog_dir, objects)


def recover(catalog_dir: Path) -> list[str]:
    """Undo what a writer killed mid-write left (call holding the lock): a staging folder is dropped; a series
    moved aside but not yet replaced is put back (the old data, as before that write). Returns what was done."""
    done = []
    for staging in Path(catalog_dir).glob(".staging-*"):
        shutil.rmtree(staging, ignore_errors=True)
        done.append(f"removed {staging.name}")
    data = Path(catalog_dir) / "data"
    for backup in data.glob("*/.*.old-*") if data.is_dir() else []:
        target = backup.with_name(backup.name[1:].rsplit(".old-", 1)[0])
        if target.exists():
            shutil.rmtree(backup, ignore_errors=True)
        else:
            backup.rename(target)
            done.append(f"restored {target.parent.name}/{target.name}")
    return done


def _merge_and_swap(catalog_dir: Path, objects: Iterable) -> dict[str, int]:
    catalog = ParquetDataCatalog(str(catalog_dir))
    groups: dict[tuple[type, str], list] = defaultdict(list)
    for obj in objects:
        groups[_series_key(obj)].append(obj)

    staging_dir = Path(tempfile.mkdtemp(prefix=".staging-", dir=catalog_dir))
    backups: list[tuple[Path, Path]] = []
    swapped: list[Path] = []
    counts: dict[str, int] = {}
    try:
        staging = ParquetDataCatalog(str(staging_dir))
        plan: list[tuple[Path, Path]] = []
        stored_instruments: dict[str, list] = defaultdict(list)
        if any(issubclass(cls, Instrument) for cls, _ in groups) and (catalog_dir / "data").is_dir():
            for instrument in catalog.instruments():  # one read for all: a query per instrument is slow
                stored_instruments[instrument.id.value].append(instrument)
        for (cls, identifier), new in groups.items():
            if issubclass(cls, Instrument):
                old = stored_instruments.get(identifier, [])
            else:
                old = _existing(catalog, cls, identifier)
            # Instruments keep one definition per exchangeInfo time, like any series keeps one row per time.
            if issubclass(cls, Instrument) and old and _same_instruments(old, new):
                counts[f"{cls.__name__} {identifier}"] = len(old)
                continue
            merged = _merge(old, new)
            staging.write_data(merged)
            source = Path(staging._make_path(data_cls=cls, identifier=identifier))
            target = Path(catalog._make_path(data_cls=cls, identifier=identifier))
            plan.append((source, target))
            counts[f"{cls.__name__} {identifier}"] = len(merged)
        # Everything is written: now swap, keeping the old directories until all swaps succeeded.
        for source, target in plan:
            if target.exists():
                backup = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
                target.rename(backup)
                backups.append((backup, target))
            target.parent.mkdir(parents=True, exist_ok=True)
            source.rename(target)
            swapped.append(target)
    except BaseException:
        for target in swapped:
            shutil.rmtree(target, ignore_errors=True)
        for backup, target in backups:
            if not target.exists():
                backup.rename(target)
        raise
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)
    for backup, _ in backups:
        shutil.rmtree(backup, ignore_errors=True)
    return counts
