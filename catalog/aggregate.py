"""Bars of any size from finer catalogued bars: ``ensure_bars`` makes sure bars of a spec exist for a period.

A 5-minute, 15-minute or 1-hour bar is built from the finer bars of the same symbol already in the catalog
(1-minute preferred): open of the first, close of the last, highest high, lowest low, summed volume, and for
Binance klines (``BinanceBar``) the summed quote volume, trade count and taker-buy volumes, so the taker-flow factor
sees the same fields at every bar size. Buckets are aligned on UTC like Binance's klines (an hour bar opens on the
hour) and stamped at their close; a bucket whose finer bars are not all catalogued is left out rather than built
from part of its minutes. Aggregated bars are written into the catalog once and read like ingested ones: later
runs find them there. Only buckets the catalog lacks are built, so a call whose bars exist reads timestamps only.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from nautilus_trader.adapters.binance.common.types import BinanceBar
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.objects import FIXED_SCALAR, Price, Quantity

from catalog.convert import spec_of_bar
from catalog.instruments import instrument_id_for
from catalog.inventory import bar_step_ns, data_dir, series_timestamps
from catalog.store import write_series
from factors.inputs import bar_type_for

_FOLDERS = {BinanceBar: "binance_bar", Bar: "bar"}
_BINANCE_SUMS = ("quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume")


@dataclass(frozen=True)
class BarsReady:
    """What ``ensure_bars`` found or built for one symbol."""

    bar_type: str
    bar_class: type | None  # BinanceBar (taker-buy volume kept), Bar, or None when the catalog has no such bars
    rows: int  # bars of this type in the period now in the catalog
    added: int  # bars built from finer ones by this call
    source: str | None  # the finer bar type they were built from
    first_ns: int | None = None  # the first and last of those bars (their close times)
    last_ns: int | None = None


def _timestamp_ns(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).value


def _finer_sources(catalog_dir: Path, symbol: str, step_ns: int) -> list[tuple[type, str, int]]:
    """(class, bar type, step) of the symbol's catalogued LAST-price bars that divide ``step_ns``: Binance
    klines before plain OHLCV, then the finest first."""
    prefix = f"{instrument_id_for(symbol).value}-"
    found = []
    for cls, folder in _FOLDERS.items():
        root = data_dir(catalog_dir) / folder
        if not root.is_dir():
            continue
        for path in root.glob(f"{prefix}*-LAST-EXTERNAL"):
            step = bar_step_ns(path.name)
            if step and step < step_ns and step_ns % step == 0 and any(path.glob("*.parquet")):
                found.append((cls, path.name, step))
    return sorted(found, key=lambda s: (s[0] is not BinanceBar, s[2]))


def _missing_buckets(
    source_ts: np.ndarray, source_step: int, step_ns: int, have: np.ndarray, low: int | None, high: int | None
) -> np.ndarray:
    """Close times of the complete buckets the finer bars (their timestamps) make in (low, high] and the
    catalog lacks; from timestamp columns only."""
    if low is not None:
        source_ts = source_ts[source_ts > low]
    if high is not None:
        source_ts = source_ts[source_ts <= high]
    closes, counts = np.unique(((source_ts - 1) // step_ns + 1) * step_ns, return_counts=True)
    complete = closes[counts == step_ns // source_step]
    return complete[~np.isin(complete, have)]


def _read(folder: Path, low_ns: int | None, high_ns: int | None) -> pa.Table:
    tables = [pq.read_table(f) for f in sorted(folder.glob("*.parquet"))]
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    mask = None
    if low_ns is not None:
        mask = pc.greater(table["ts_init"], pa.scalar(low_ns, pa.uint64()))
    if high_ns is not None:
        upper = pc.less_equal(table["ts_init"], pa.scalar(high_ns, pa.uint64()))
        mask = upper if mask is None else pc.and_(mask, upper)
    if mask is not None:
        table = table.filter(mask)
    table = table.sort_by("ts_init")
    ts = table["ts_init"].to_numpy()
    if len(ts) > 1 and (ts[1:] == ts[:-1]).any():  # overlapping files: keep one row per time
        table = table.filter(pa.array(np.r_[True, ts[1:] != ts[:-1]]))
    return table


def _fixed_to_float(column: pa.ChunkedArray) -> np.ndarray:
    """Nautilus's 128-bit fixed-point prices/quantities (little-endian, scaled by FIXED_SCALAR) -> float64."""
    array = column.combine_chunks()
    raw = np.frombuffer(array.buffers()[1], dtype=np.uint8)[array.offset * 16 : (array.offset + len(array)) * 16]
    words = raw.view("<u8").reshape(-1, 2)
    high = words[:, 1].view("<i8").astype(np.float64)
    return (high * 2.0**64 + words[:, 0].astype(np.float64)) / FIXED_SCALAR


def _decimal_sums(values: list[str], n: int) -> list[Decimal]:
    numbers = [Decimal(v) for v in values]
    return [sum(numbers[i : i + n], Decimal(0)) for i in range(0, len(numbers), n)]


def aggregate_table(
    table: pa.Table, source_step_ns: int, step_ns: int, bar_type: BarType, cls: type, skip_ns: np.ndarray | None = None
) -> list[Bar]:
    """The complete ``step_ns`` buckets of a catalog table of finer bars as bars of ``bar_type``; buckets whose
    close time is in ``skip_ns`` (already catalogued) are not built."""
    if table.num_rows == 0:
        return []
    metadata = table.schema.metadata or {}
    price_precision = int(metadata[b"price_precision"])
    size_precision = int(metadata[b"size_precision"])
    n = step_ns // source_step_ns
    ts = table["ts_init"].to_numpy().astype(np.int64)
    closes = ((ts - 1) // step_ns + 1) * step_ns  # the bucket each finer bar belongs to, by its close time
    starts = np.flatnonzero(np.r_[True, closes[1:] != closes[:-1]])
    sizes = np.diff(np.r_[starts, len(ts)])
    keep = sizes == n
    if skip_ns is not None and len(skip_ns):
        keep &= ~np.isin(closes[starts], skip_ns)
    if not keep.any():
        return []
    table = table.filter(pa.array(np.repeat(keep, sizes)))
    # every kept bucket now has exactly n consecutive rows: a (buckets, n) view of each column
    o, h, low, c, v = (_fixed_to_float(table[k]).reshape(-1, n) for k in ("open", "high", "low", "close", "volume"))
    stamps = closes[starts[keep]].astype(np.uint64)
    # round to the instrument's decimals: the nearest double of each decimal value, as a parsed CSV gives
    opens, highs, lows, last = (np.round(x, price_precision) for x in (o[:, 0], h.max(1), low.min(1), c[:, -1]))
    volumes = np.round(v.sum(1), size_precision)
    if cls is Bar:
        return Bar.from_raw_arrays_to_list(
            bar_type, price_precision, size_precision, opens, highs, lows, last, volumes, stamps, stamps.copy()
        )
    sums = {k: _decimal_sums(table[k].to_pylist(), n) for k in _BINANCE_SUMS}
    trades = table["count"].to_numpy().astype(np.int64).reshape(-1, n).sum(1).tolist()
    return [
        BinanceBar(
            bar_type,
            Price(float(opens[i]), price_precision),
            Price(float(highs[i]), price_precision),
            Price(float(lows[i]), price_precision),
            Price(float(last[i]), price_precision),
            Quantity(float(volumes[i]), size_precision),
            sums["quote_volume"][i],
            trades[i],
            sums["taker_buy_base_volume"][i],
            sums["taker_buy_quote_volume"][i],
            int(stamps[i]),
            int(stamps[i]),
        )
        for i in range(len(stamps))
    ]


def ensure_bars(
    catalog_path: Path | str,
    symbols: Iterable[str],
    bar_spec: str,
    start: object = None,
    end: object = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, BarsReady]:
    """Make sure bars of ``bar_spec`` exist in the catalog for these symbols over ``start``..``end``.

    ``bar_spec``: ``"5-MINUTE"`` or ``"5m"``, ``"1h"``...; ``start``/``end``: anything ``pd.Timestamp`` reads
    (naive means UTC) or epoch ns, None for all the data. Buckets missing from the catalog are built from the
    symbol's finer catalogued bars (Binance klines first, then the finest) and written; bars already there are
    kept. Returns, per symbol, the bar type and class to replay, the bars now in the period, and how many were
    added. Files are never read again: only the catalog.
    """
    catalog_dir = Path(catalog_path)
    spec = spec_of_bar(bar_spec)
    start_ns, end_ns = _timestamp_ns(start), _timestamp_ns(end)
    ready: dict[str, BarsReady] = {}
    for symbol in (s.upper() for s in symbols):
        bar_type = bar_type_for(instrument_id_for(symbol), spec)
        step_ns = bar_step_ns(str(bar_type))
        added, source_name = 0, None
        sources = _finer_sources(catalog_dir, symbol, step_ns)
        if sources:
            cls = sources[0][0]
            # the finer bars of the first bucket end one bucket after the period's start
            low = None if start_ns is None else (start_ns // step_ns) * step_ns - step_ns
            # the finest series first; a coarser one fills the buckets it leaves (1m bars in May, 5m in March)
            for name, source_step in [(n, step) for c, n, step in sources if c is cls]:
                have = series_timestamps(catalog_dir, _FOLDERS[cls], str(bar_type))
                source_ts = series_timestamps(catalog_dir, _FOLDERS[cls], name)
                missing = _missing_buckets(source_ts, source_step, step_ns, have, low, end_ns)
                if not len(missing):
                    continue
                # read the finer bars (all columns) only around what is missing
                table = _read(data_dir(catalog_dir) / _FOLDERS[cls] / name, int(missing[0]) - step_ns, end_ns)
                new = aggregate_table(table, source_step, step_ns, bar_type, cls, have)
                if new:
                    if progress:
                        progress(f"{symbol}: building {len(new):,} {spec} bars from {name} into the catalog")
                    write_series(catalog_dir, new)
                    added += len(new)
                    source_name = source_name or name
        bar_class, rows, first, last = None, 0, None, None
        for cls in (BinanceBar, Bar):
            stamps = series_timestamps(catalog_dir, _FOLDERS[cls], str(bar_type))
            if len(stamps):
                bar_class = cls
                low = 0 if start_ns is None else int(np.searchsorted(stamps, start_ns, side="left"))
                high = len(stamps) if end_ns is None else int(np.searchsorted(stamps, end_ns, side="right"))
                rows = max(0, high - low)
                if rows:
                    first, last = int(stamps[low]), int(stamps[high - 1])
                break
        ready[symbol] = BarsReady(str(bar_type), bar_class, rows, added, source_name if added else None, first, last)
    return ready
