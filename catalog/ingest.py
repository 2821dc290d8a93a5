"""Ingest Binance files (and exchangeInfo JSON) into a ParquetDataCatalog: all validated first, then written."""

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.convert import convert_file
from catalog.errors import CatalogInputError
from catalog.files import DataFile, identify
from catalog.instruments import (
    UnknownSymbolError,
    binance_perpetual,
    load_exchange_info,
)
from catalog.store import write_series

DATA_SUFFIXES = (".csv", ".csv.gz", ".zip")


@dataclass
class IngestReport:
    files: list[DataFile] = field(default_factory=list)
    series: dict[str, int] = field(
        default_factory=dict
    )  # "Bar BTCUSDT-PERP...-1-MINUTE-..." -> rows in catalog
    objects_read: int = 0


def _is_data_file(path: Path) -> bool:
    return path.name.endswith(DATA_SUFFIXES) and not path.name.startswith(("manifest", "."))


def expand(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """(data files, exchangeInfo JSON files) under the given paths; a named file that is missing is an error."""
    data_files: list[Path] = []
    info_files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and _is_data_file(child):
                    try:
                        identify(child)
                    except CatalogInputError:
                        continue  # folders hold other files too (READMEs, other formats): take what we know
                    data_files.append(child)
        elif path.is_file():
            (info_files if path.suffix == ".json" else data_files).append(path)
        else:
            raise CatalogInputError(path, "no such file or folder")
    return data_files, info_files


def ingest(
    paths: Iterable[Path],
    catalog_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """Read, validate and convert every file, then write all of it; on any error the catalog is untouched."""
    data_paths, info_paths = expand(paths)
    if not data_paths and not info_paths:
        raise CatalogInputError(
            paths, "no Binance data files found (expected e.g. BTCUSDT-1m-2024-01.csv.gz)"
        )
    instruments: dict[str, CryptoPerpetual] = {}
    for info_path in info_paths:
        for instrument in load_exchange_info(info_path):
            instruments[instrument.raw_symbol.value] = instrument
    existing = {}
    if (Path(catalog_dir) / "data").exists():
        existing = {i.raw_symbol.value: i for i in ParquetDataCatalog(str(catalog_dir)).instruments()}

    report = IngestReport()
    objects: list = list(instruments.values())
    data_files = [identify(p) for p in data_paths]
    for number, data_file in enumerate(data_files, start=1):
        instrument = instruments.get(data_file.symbol) or existing.get(data_file.symbol)
        if instrument is None:
            try:
                instrument = binance_perpetual(data_file.symbol)
            except UnknownSymbolError as exc:
                raise CatalogInputError(data_file.path, str(exc)) from exc
            instruments[data_file.symbol] = instrument
            objects.append(instrument)
        if progress:
            progress(f"[{number}/{len(data_files)}] reading {data_file.path.name}")
        converted = convert_file(data_file, instrument)
        report.objects_read += len(converted)
        objects.extend(converted)
        report.files.append(data_file)
    if progress:
        progress(f"writing {report.objects_read:,} records to {catalog_dir}")
    report.series = write_series(Path(catalog_dir), objects)
    return report


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


