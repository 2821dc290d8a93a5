"""Ingest Binance files (and exchangeInfo JSON) into a ParquetDataCatalog: all validated first, then written."""

import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from nautilus_trader.model.instruments import CryptoPerpetual

from catalog.convert import convert_file
from catalog.errors import CatalogInputError
from catalog.files import FREQTRADE_SUFFIXES, DataFile, freqtrade_name, identify
from catalog.instruments import (
    ExchangeInfoError,
    UnknownSymbolError,
    binance_perpetual,
    load_exchange_info,
    nearest_version,
)
from catalog.inventory import instrument_versions
from catalog.store import catalog_lock, write_series

DATA_SUFFIXES = (".csv", ".csv.gz", ".zip", *FREQTRADE_SUFFIXES)
INGESTED_MANIFEST = "ingested_files.json"  # in the catalog folder: the files it holds, by path, size and time
_FILE_MONTH = re.compile(r"-(\d{4})-(\d{2})(?:-(\d{2}))?(?:\.csv)?(?:\.gz|\.zip)?$")


@dataclass
class IngestReport:
    files: list[DataFile] = field(default_factory=list)
    series: dict[str, int] = field(default_factory=dict)  # "Bar BTCUSDT-PERP...-1-MINUTE-..." -> rows in catalog
    objects_read: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # files found in folders and left out, why
    instruments: int = 0  # instrument definitions read from exchangeInfo files
    unusable_symbols: list[tuple[str, str]] = field(default_factory=list)  # exchangeInfo entries left out, why


@dataclass
class Expanded:
    data_files: list[Path] = field(default_factory=list)
    info_files: list[Path] = field(default_factory=list)
    info_found_in_folders: set[Path] = field(default_factory=set)  # may be other JSON: skipped, not an error
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def _is_data_file(path: Path) -> bool:
    return path.name.endswith(DATA_SUFFIXES)


def _freqtrade_json(path: Path) -> bool:
    """A .json named like freqtrade candles (BTC_USDT_USDT-1m-futures.json), not an exchangeInfo answer."""
    return path.name.endswith((".json", ".json.gz")) and freqtrade_name(path)


def expand(paths: Iterable[Path]) -> Expanded:
    """Data files and exchangeInfo JSON files under the given paths, and every other file found with the reason
    it is left out. A named file or folder that is missing is an error."""
    found = Expanded()
    for path in map(Path, paths):
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if not child.is_file():
                    continue
                if child.name.startswith("."):
                    found.skipped.append((child, "hidden file"))
                elif child.suffix == ".json" and not _freqtrade_json(child):
                    found.info_files.append(child)
                    found.info_found_in_folders.add(child)
                elif not _is_data_file(child):
                    found.skipped.append((child, "not a data file (.csv, .csv.gz, .zip, .feather, .json, .parquet)"))
                else:
                    try:
                        identify(child)
                    except CatalogInputError as exc:
                        found.skipped.append((child, exc.problem))
                        continue
                    found.data_files.append(child)
        elif path.is_file():
            info = path.suffix == ".json" and not _freqtrade_json(path)
            (found.info_files if info else found.data_files).append(path)
        else:
            raise CatalogInputError(path, "no such file or folder")
    return found


def file_time_ns(path: Path) -> int | None:
    """The month or day a Vision file name carries (``BTCUSDT-1m-2024-01.zip``), as ns; None without one."""
    match = _FILE_MONTH.search(path.name)
    if not match:
        return None
    year, month, day = int(match[1]), int(match[2]), int(match[3] or 1)
    try:
        return int(datetime(year, month, day, tzinfo=UTC).timestamp()) * 1_000_000_000
    except ValueError:
        return None


class InstrumentChooser:
    """The instrument definition each data file is converted with: the exchangeInfo version nearest the file's
    period, from the files being ingested and the catalog; the offline table when neither defines the symbol."""

    def __init__(self, catalog_dir: Path, given: list[CryptoPerpetual]) -> None:
        self.catalog_dir = Path(catalog_dir)
        self.given: dict[str, list[CryptoPerpetual]] = {}
        for instrument in given:
            self.given.setdefault(instrument.raw_symbol.value, []).append(instrument)
        self.defaults: list[CryptoPerpetual] = []  # offline-table instruments to write with the data
        self._catalogued: dict[str, list[CryptoPerpetual]] = {}

    def for_file(self, data_file: DataFile) -> CryptoPerpetual:
        symbol = data_file.symbol
        if symbol not in self._catalogued:
            self._catalogued[symbol] = instrument_versions(self.catalog_dir, symbol)
        versions = self.given.get(symbol, []) + self._catalogued[symbol]
        if versions:
            when = file_time_ns(data_file.path)
            return nearest_version(versions, when, when)
        try:
            instrument = binance_perpetual(symbol)
        except UnknownSymbolError as exc:
            raise CatalogInputError(data_file.path, str(exc)) from exc
        self._catalogued[symbol] = [instrument]
        self.defaults.append(instrument)
        return instrument


def ingest(
    paths: Iterable[Path],
    catalog_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """Read, validate and convert every file, then write all of it; on any error the catalog is untouched."""
    paths = list(paths)
    found = expand(paths)
    report = IngestReport(skipped=found.skipped)
    given: list[CryptoPerpetual] = []
    for info_path in found.info_files:
        try:
            info = load_exchange_info(info_path)
        except ExchangeInfoError as exc:
            problem = str(exc).removeprefix(f"{info_path}: ")
            if info_path in found.info_found_in_folders:
                report.skipped.append((info_path, problem))
                continue
            raise CatalogInputError(info_path, problem) from None
        given += info.instruments
        report.unusable_symbols += info.skipped
    report.instruments = len(given)
    if not found.data_files and not given:
        named = ", ".join(str(p) for p in paths)
        raise CatalogInputError(
            named,
            "no Binance data files found (expected e.g. BTCUSDT-1m-2024-01.csv.gz)"
            + (f"; left out: {_skipped_summary(report.skipped)}" if report.skipped else ""),
        )
    chooser = InstrumentChooser(Path(catalog_dir), given)

    objects: list = list(given)
    data_files = [identify(p) for p in found.data_files]
    for number, data_file in enumerate(data_files, start=1):
        instrument = chooser.for_file(data_file)
        if progress:
            progress(f"[{number}/{len(data_files)}] reading {data_file.path.name}")
        converted = convert_file(data_file, instrument)
        report.objects_read += len(converted)
        objects.extend(converted)
        report.files.append(data_file)
    objects += chooser.defaults
    if progress:
        progress(f"writing {report.objects_read:,} records to {catalog_dir}")
    report.series = write_series(Path(catalog_dir), objects)
    record_ingested(Path(catalog_dir), [f.path for f in report.files] + found.info_files)
    return report


def _file_stamp(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _read_manifest(catalog_dir: Path) -> dict[str, dict[str, int]]:
    try:
        return json.loads((Path(catalog_dir) / INGESTED_MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def record_ingested(catalog_dir: Path, paths: Iterable[Path]) -> None:
    """Note the files now in the catalog (path, size, modification time), for ``not_yet_ingested``."""
    with catalog_lock(catalog_dir):
        manifest = _read_manifest(catalog_dir)
        manifest.update({str(Path(p).resolve()): _file_stamp(Path(p)) for p in paths})
        target = Path(catalog_dir) / INGESTED_MANIFEST
        temporary = target.with_name(f".{target.name}.{os.getpid()}")
        temporary.write_text(json.dumps(manifest, indent=0, sort_keys=True))
        os.replace(temporary, target)


def not_yet_ingested(catalog_dir: Path, paths: Iterable[Path]) -> list[Path]:
    """The files the catalog does not hold yet: never ingested, or changed since (other size or time)."""
    manifest = _read_manifest(catalog_dir)
    return [p for p in map(Path, paths) if manifest.get(str(p.resolve())) != _file_stamp(p)]


def _skipped_summary(skipped: list[tuple[Path, str]]) -> str:
    shown = "; ".join(f"{p.name} ({why})" for p, why in skipped[:5])
    return shown + (f"; and {len(skipped) - 5} more" if len(skipped) > 5 else "")


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
