"""Recognise a Binance data file by its name and read it into a validated pandas frame.

Every reader checks what it reads: column count, numbers where numbers belong, increasing timestamps and OHLC
sanity, and raises ``CatalogInputError`` naming the file and the line (1-based, counting a header line).
"""

import gzip
import io
import json
import re
import zipfile
import zlib
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
import pandas as pd

from catalog.errors import CatalogInputError

KLINE_COLUMNS = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
]
OHLCV_COLUMNS = ["open_time_ms", "open", "high", "low", "close", "volume"]
MARK_COLUMNS = ["open_time_ms", "open", "high", "low", "close"]
FUNDING_COLUMNS = ["funding_time_ms", "funding_rate"]
VISION_FUNDING_COLUMNS = ["calc_time", "funding_interval_hours", "last_funding_rate"]
METRICS_COLUMNS = [
    "create_time",
    "symbol",
    "sum_open_interest",
    "sum_open_interest_value",
    "count_toptrader_long_short_ratio",
    "sum_toptrader_long_short_ratio",
    "count_long_short_ratio",
    "sum_taker_long_short_vol_ratio",
]
INTERVALS_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}


class FileKind(Enum):
    KLINES = "klines"  # Binance Vision 12-column klines (taker-buy volume, trade count)
    OHLCV = "ohlcv"  # open_time_ms, open, high, low, close, volume
    MARK_KLINES = "mark"  # mark-price klines (OHLC, or Vision's 12 columns with zero volumes)
    FUNDING = "funding"  # funding-rate events
    METRICS = "metrics"  # Vision metrics: open interest every 5 minutes


@dataclass(frozen=True)
class DataFile:
    path: Path
    kind: FileKind
    symbol: str
    interval: str | None  # "1m", "8h"...; None for events
    freqtrade: bool = False  # a freqtrade data file (.feather, .json, .json.gz, .parquet), read by read_freqtrade


# freqtrade's futures data: BTC_USDT_USDT-1m-futures.feather, -8h-funding_rate, -8h-mark (also .json, .json.gz)
FREQTRADE_SUFFIXES = (".feather", ".json", ".json.gz", ".parquet")
_FREQTRADE_FUTURES = re.compile(
    r"^(?P<base>[0-9A-Z]+)_(?P<quote>[0-9A-Z]+)_(?P<settle>[0-9A-Z]+)-(?P<interval>\d+[mhdwM])-(?P<kind>[A-Za-z_]+)$"
)
_FREQTRADE_SPOT = re.compile(r"^(?P<base>[0-9A-Z]+)_(?P<quote>[0-9A-Z]+)-(?P<interval>\d+[mhdwM])(-spot)?$")
_FREQTRADE_TRADES = re.compile(r"^[0-9A-Z]+_[0-9A-Z]+(_[0-9A-Z]+)?-trades$")
_FREQTRADE_KINDS = {"futures": FileKind.OHLCV, "mark": FileKind.MARK_KLINES, "funding_rate": FileKind.FUNDING}


_NAME_PATTERNS: list[tuple[re.Pattern[str], FileKind | None]] = [
    (re.compile(r"^(?P<symbol>[0-9A-Z]+)-metrics-\d{4}-\d{2}-\d{2}$"), FileKind.METRICS),
    (re.compile(r"^(?P<symbol>[0-9A-Z]+)-(funding_rate|fundingRate)(-\d{4}-\d{2})?$"), FileKind.FUNDING),
    (re.compile(r"^(?P<symbol>[0-9A-Z]+)-mark-(?P<interval>\d+[mhd])$"), FileKind.MARK_KLINES),
    # Vision monthly/daily klines: SYMBOL-1m-2024-01(.csv) or SYMBOL-1m-2024-01-05; kind depends on the folder
    (re.compile(r"^(?P<symbol>[0-9A-Z]+)-(?P<interval>\d+[mhd])-\d{4}-\d{2}(-\d{2})?$"), None),
    (re.compile(r"^(?P<symbol>[0-9A-Z]+)-(?P<interval>\d+[mhd])$"), FileKind.OHLCV),
]


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".zip", ".csv", ".feather", ".json", ".parquet"):
        name = name.removesuffix(suffix)
    return name.removesuffix(".csv")


def freqtrade_name(path: Path) -> bool:
    """Named like freqtrade data (BTC_USDT_USDT-1m-futures, BTC_USDT-1m, BTC_USDT_USDT-trades), any suffix."""
    stem = _stem(Path(path))
    return any(p.match(stem) for p in (_FREQTRADE_FUTURES, _FREQTRADE_SPOT, _FREQTRADE_TRADES))


def _identify_freqtrade(path: Path, stem: str) -> DataFile:
    if _FREQTRADE_TRADES.match(stem):
        raise CatalogInputError(path, "freqtrade trades file: ats backtests on candles, not on single trades")
    spot = _FREQTRADE_SPOT.match(stem)
    if spot:
        raise CatalogInputError(
            path,
            f"freqtrade spot data ({spot['base']}/{spot['quote']}): ats trades USDT-M perpetuals, whose freqtrade "
            f"files are named {spot['base']}_{spot['quote']}_{spot['quote']}-{spot['interval']}-futures{path.suffix}",
        )
    match = _FREQTRADE_FUTURES.match(stem)
    if not match:
        raise CatalogInputError(
            path,
            "freqtrade file name not recognised; expected futures data named like BTC_USDT_USDT-1m-futures.feather, "
            "BTC_USDT_USDT-8h-funding_rate.feather or BTC_USDT_USDT-8h-mark.feather (also .json, .json.gz)",
        )
    if (match["quote"], match["settle"]) != ("USDT", "USDT"):
        raise CatalogInputError(
            path, f"{match['base']}/{match['quote']}:{match['settle']} is not a USDT-margined USDT perpetual"
        )
    kind = _FREQTRADE_KINDS.get(match["kind"])
    if kind is None:
        raise CatalogInputError(
            path, f"freqtrade {match['kind']!r} candles are not used (only futures, mark and funding_rate)"
        )
    interval = match["interval"]
    if interval not in INTERVALS_MS:
        raise CatalogInputError(path, f"unknown candle interval {interval!r} (known: {', '.join(INTERVALS_MS)})")
    return DataFile(path, kind, f"{match['base']}USDT", None if kind is FileKind.FUNDING else interval, True)


def identify(path: Path) -> DataFile:
    """What a file holds, from its name (and for Vision klines, its folder: markPriceKlines vs klines)."""
    path = Path(path)
    stem = _stem(path)
    if path.name.endswith(FREQTRADE_SUFFIXES):
        return _identify_freqtrade(path, stem)
    for pattern, kind in _NAME_PATTERNS:
        match = pattern.match(stem)
        if not match:
            continue
        interval = match.groupdict().get("interval")
        if interval is not None and interval not in INTERVALS_MS:
            raise CatalogInputError(path, f"unknown kline interval {interval!r} (known: {', '.join(INTERVALS_MS)})")
        if kind is None:
            kind = FileKind.MARK_KLINES if "markPrice" in str(path.parent) else FileKind.KLINES
        return DataFile(path, kind, match["symbol"], interval)
    raise CatalogInputError(
        path,
        "file name not recognised; expected Binance Vision names like BTCUSDT-1m-2024-01.csv[.gz|.zip], "
        "BTCUSDT-fundingRate-2024-01.csv, BTCUSDT-metrics-2024-01-05.csv, or BTCUSDT-1m.csv.gz, "
        "BTCUSDT-funding_rate.csv.gz, BTCUSDT-mark-8h.csv.gz, or freqtrade's BTC_USDT_USDT-1m-futures.feather",
    )


def read_text(path: Path) -> str:
    """The file's text, from .csv, .csv.gz or a .zip holding one csv; a truncated archive is an error."""
    path = Path(path)
    if not path.is_file():
        raise CatalogInputError(path, "file not found")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        elif path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith(".csv")]
                if len(names) != 1:
                    raise CatalogInputError(path, f"expected one .csv inside the zip, found {names}")
                raw = archive.read(names[0])
        else:
            raw = path.read_bytes()
    except (EOFError, OSError, zlib.error, zipfile.BadZipFile) as exc:
        raise CatalogInputError(path, f"corrupt or truncated archive ({exc}); download it again") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogInputError(path, f"not UTF-8 text (byte {exc.start}); is this a CSV file?") from exc


def _first_bad_line(path: Path, text: str, expected_columns: int, header: bool) -> None:
    """Raise naming the first line with the wrong number of fields."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or (header and number == 1):
            continue
        fields = line.count(",") + 1
        if fields != expected_columns:
            raise CatalogInputError(path, f"expected {expected_columns} comma-separated fields, found {fields}", number)


def read_table(path: Path, columns: list[str], text: str | None = None) -> pd.DataFrame:
    """A CSV with the given columns, header row optional (some Vision files have none); numbers checked."""
    text = read_text(path) if text is None else text
    lines = text.splitlines()
    if not lines or not any(line.strip() for line in lines):
        raise CatalogInputError(path, "file is empty")
    first = lines[0].split(",")
    header = not _is_number(first[0])
    if header and [c.strip() for c in first] != columns:
        raise CatalogInputError(
            path, f"unexpected header {first}; expected {len(columns)} columns: {','.join(columns)}", 1
        )
    _first_bad_line(path, text, len(columns), header)
    frame = pd.read_csv(
        io.StringIO(text), header=0 if header else None, names=columns, dtype=str, keep_default_na=False
    )
    offset = 2 if header else 1  # frame row 0 is file line `offset`
    for column in columns:
        if column in ("symbol", "create_time"):
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy())
        if bad.size:
            row = int(bad[0])
            raise CatalogInputError(
                path, f"column {column!r}: {frame[column].iloc[row]!r} is not a number", row + offset
            )
        frame[column] = values
    frame.attrs["line_offset"] = offset
    return frame


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def to_ms(values: pd.Series) -> np.ndarray:
    """Epoch timestamps in ms; Vision switched some files to microseconds in 2025, so detect by size."""
    raw = values.to_numpy(dtype=np.int64)
    return np.where(raw > 10**14, raw // 1000, raw)


def check_increasing(path: Path, frame: pd.DataFrame, ts_ms: np.ndarray) -> None:
    steps = np.diff(ts_ms)
    bad = np.flatnonzero(steps <= 0)
    if bad.size:
        row = int(bad[0]) + 1
        problem = "duplicate timestamp" if steps[bad[0]] == 0 else "timestamp goes backwards"
        raise CatalogInputError(path, f"{problem} ({int(ts_ms[row])} ms)", row + frame.attrs["line_offset"])


def check_ohlc(path: Path, frame: pd.DataFrame) -> None:
    o, h, low, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
    bad = np.flatnonzero((low > np.minimum(o, c)) | (h < np.maximum(o, c)) | (low <= 0))
    if bad.size:
        row = int(bad[0])
        raise CatalogInputError(
            path,
            f"impossible candle open={o[row]} high={h[row]} low={low[row]} close={c[row]}",
            row + frame.attrs["line_offset"],
        )


def read_freqtrade(data_file: DataFile) -> pd.DataFrame:
    """A freqtrade data file as a frame with the columns of the matching CSV layout (OHLCV_COLUMNS, MARK_COLUMNS
    or FUNDING_COLUMNS), numbers checked; row numbers in errors count from 1."""
    path = data_file.path
    if not path.is_file():
        raise CatalogInputError(path, "file not found")
    try:
        if path.suffix == ".feather":
            raw = pd.read_feather(path)
        elif path.suffix == ".parquet":
            raw = pd.read_parquet(path)
        else:
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as fh:
                rows = json.load(fh)
            if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) >= 2 for r in rows):
                raise CatalogInputError(path, "expected freqtrade's JSON candles: a list of [ms, open, ...] lists")
            width = max(len(r) for r in rows) if rows else 6
            names = ["date", "open", "high", "low", "close", "volume"][:width]
            raw = pd.DataFrame([r[:width] for r in rows], columns=names)
            raw["date"] = pd.to_datetime(pd.to_numeric(raw["date"], errors="coerce"), unit="ms", utc=True)
    except CatalogInputError:
        raise
    except (OSError, EOFError, ValueError, zlib.error, UnicodeDecodeError) as exc:
        raise CatalogInputError(path, f"cannot read this freqtrade file ({exc})") from exc
    if raw.empty:
        raise CatalogInputError(path, "file is empty")
    if "date" not in raw.columns:
        raise CatalogInputError(path, f"no 'date' column (columns: {', '.join(map(str, raw.columns))})")
    dates = pd.to_datetime(raw["date"], utc=True, errors="coerce")
    if dates.isna().any():
        row = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise CatalogInputError(path, f"row {row + 1}: date {raw['date'].iloc[row]!r} is not a time")
    ms = pd.DatetimeIndex(dates).as_unit("ms").asi8
    if data_file.kind is FileKind.FUNDING:
        source = "funding_rate" if "funding_rate" in raw.columns else "open"  # freqtrade keeps the rate in 'open'
        columns, values = FUNDING_COLUMNS, {"funding_rate": raw.get(source)}
    else:
        columns = OHLCV_COLUMNS if data_file.kind is FileKind.OHLCV else MARK_COLUMNS
        values = {c: raw.get(c) for c in columns[1:]}
    frame = pd.DataFrame({columns[0]: ms})
    for column, series in values.items():
        if series is None:
            raise CatalogInputError(path, f"no {column!r} column (columns: {', '.join(map(str, raw.columns))})")
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(numbers))
        if bad.size:
            row = int(bad[0])
            raise CatalogInputError(path, f"row {row + 1}: {column} {series.iloc[row]!r} is not a number")
        frame[column] = numbers
    frame.attrs["line_offset"] = 1
    return frame
