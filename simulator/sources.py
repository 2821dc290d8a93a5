"""Where replay data comes from: Binance data files (read and checked by ``catalog.files``) or a
``ParquetDataCatalog``.

Both give instruments, one ``KlineSeries`` per symbol (columnar: files are read straight into arrays) and
funding events, for ``SimulatorConfig(data.instruments, data.series, ..., funding=data.funding)``.
"""

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from nautilus_trader.model.data import Bar, FundingRateUpdate
from nautilus_trader.model.instruments import CryptoPerpetual

from catalog.convert import convert_file
from catalog.files import (
    INTERVALS_MS,
    KLINE_COLUMNS,
    OHLCV_COLUMNS,
    DataFile,
    FileKind,
    check_increasing,
    check_ohlc,
    identify,
    read_table,
    read_text,
    to_ms,
)
from catalog.instruments import binance_perpetual
from simulator.series import KlineSeries, series_from_bars


@dataclass
class ReplayData:
    instruments: list[CryptoPerpetual] = field(default_factory=list)
    series: list[KlineSeries] = field(default_factory=list)  # one per symbol
    funding: dict[str, list[tuple[int, Decimal]]] = field(default_factory=dict)

    def window(self, start_ms: int | None = None, limit: int | None = None, history: int = 0) -> "ReplayData":
        """Replay the klines opened at ``start_ms`` or later, at most ``limit`` per symbol; ``history`` klines per
        symbol before ``start_ms`` are kept apart, to be served as past klines. Views, not copies."""
        return ReplayData(self.instruments, [s.window(start_ms, limit, history) for s in self.series], self.funding)

    @property
    def replayed(self) -> int:
        """Klines to replay, all symbols together."""
        return sum(s.replayed for s in self.series)


def _funding_rows(updates: Sequence[FundingRateUpdate]) -> list[tuple[int, Decimal]]:
    return [(u.ts_event // 1_000_000, Decimal(str(u.rate))) for u in updates]


def _numeric_table(path: Path, columns: list[str]) -> pd.DataFrame:
    """The file's table, all numbers. Parsed typed in one pass (about 10x faster than ``read_table``, which
    reads text first to name a bad line); a file that does not parse cleanly goes through ``read_table``, whose
    error says what is wrong and where."""
    text = read_text(path)
    header = text.split(",", 1)[0].strip() == columns[0]
    try:
        frame = pd.read_csv(io.StringIO(text), header=0 if header else None, names=columns, dtype=np.float64)
    except ValueError:
        frame = None
    if frame is None or len(frame.columns) != len(columns) or frame.isna().to_numpy().any():
        return read_table(path, columns, text)
    frame.attrs["line_offset"] = 2 if header else 1
    return frame


def read_series(data_file: DataFile, instrument: CryptoPerpetual) -> KlineSeries:
    """A kline (Binance Vision, 12 columns) or OHLCV file as one series, checked as the catalog checks it."""
    path = data_file.path
    vision = data_file.kind is FileKind.KLINES
    frame = _numeric_table(path, KLINE_COLUMNS if vision else OHLCV_COLUMNS)
    check_ohlc(path, frame)
    open_ms = to_ms(frame["open_time" if vision else "open_time_ms"])
    check_increasing(path, frame, open_ms)

    def column(name: str) -> np.ndarray:
        return frame[name].to_numpy(dtype=np.float64)

    assert data_file.interval is not None
    return KlineSeries(
        symbol=data_file.symbol,
        interval=data_file.interval,
        interval_ms=INTERVALS_MS[data_file.interval],
        price_precision=instrument.price_precision,
        size_precision=instrument.size_precision,
        open_time=open_ms.astype(np.int64),
        open=column("open"),
        high=column("high"),
        low=column("low"),
        close=column("close"),
        volume=column("volume"),
        quote_volume=column("quote_volume") if vision else None,
        count=frame["count"].to_numpy(dtype=np.int64) if vision else None,
        taker_buy_base=column("taker_buy_volume") if vision else None,
        taker_buy_quote=column("taker_buy_quote_volume") if vision else None,
    )


def from_files(paths: Sequence[Path]) -> ReplayData:
    """Kline / OHLCV files and funding files, named as in ``../shared/data/binance`` or by Binance Vision.

    Several kline files of one symbol (e.g. Vision's monthly files) are joined in time order."""
    data = ReplayData()
    instruments: dict[str, CryptoPerpetual] = {}
    parts: dict[str, list[KlineSeries]] = {}
    for path in paths:
        data_file = identify(Path(path))
        if data_file.kind not in (FileKind.KLINES, FileKind.OHLCV, FileKind.FUNDING):
            raise ValueError(f"{path}: the simulator replays klines and funding files, not {data_file.kind.value}")
        instrument = instruments.get(data_file.symbol) or binance_perpetual(data_file.symbol)
        instruments[data_file.symbol] = instrument
        if data_file.kind is FileKind.FUNDING:
            objects = convert_file(data_file, instrument)
            rows = _funding_rows([o for o in objects if isinstance(o, FundingRateUpdate)])
            data.funding.setdefault(data_file.symbol, []).extend(rows)
        else:
            parts.setdefault(data_file.symbol, []).append(read_series(data_file, instrument))
    data.series = [_joined(symbol, pieces) for symbol, pieces in parts.items()]
    data.instruments = list(instruments.values())
    return data


def _joined(symbol: str, pieces: list[KlineSeries]) -> KlineSeries:
    if len(pieces) == 1:
        return pieces[0]
    intervals = sorted({p.interval for p in pieces})
    if len(intervals) != 1:
        raise ValueError(f"{symbol}: kline files of several intervals {intervals}; give one interval per symbol")
    pieces = sorted(pieces, key=lambda p: int(p.open_time[0]))

    def joined(name: str) -> np.ndarray | None:
        columns = [getattr(p, name) for p in pieces]
        return None if any(c is None for c in columns) else np.concatenate(columns)

    first = pieces[0]
    return KlineSeries(
        symbol=symbol,
        interval=first.interval,
        interval_ms=first.interval_ms,
        price_precision=first.price_precision,
        size_precision=first.size_precision,
        open_time=np.concatenate([p.open_time for p in pieces]),
        open=np.concatenate([p.open for p in pieces]),
        high=np.concatenate([p.high for p in pieces]),
        low=np.concatenate([p.low for p in pieces]),
        close=np.concatenate([p.close for p in pieces]),
        volume=np.concatenate([p.volume for p in pieces]),
        quote_volume=joined("quote_volume"),
        count=joined("count"),
        taker_buy_base=joined("taker_buy_base"),
        taker_buy_quote=joined("taker_buy_quote"),
    )


def from_catalog(path: Path, instrument_ids: Sequence[str], bar_spec: str = "1-MINUTE-LAST-EXTERNAL") -> ReplayData:
    """Bars of one spec (``BinanceBar`` where catalogued, else ``Bar``) and funding rates from a catalog."""
    from nautilus_trader.adapters.binance.common.types import BinanceBar
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    catalog = ParquetDataCatalog(str(path))
    instruments = [i for i in catalog.instruments() if i.id.value in set(instrument_ids)]
    if not instruments:
        raise ValueError(f"none of {list(instrument_ids)} in the catalog at {path}")
    data = ReplayData(instruments=list(instruments))
    for instrument in instruments:
        bar_type = f"{instrument.id}-{bar_spec}"
        bars: list[Bar] = []
        for cls in (BinanceBar, Bar):
            try:
                bars = [b for b in catalog.query(cls, identifiers=[bar_type]) if isinstance(b, Bar)]
            except Exception:  # a data class the catalog does not hold raises; try the next one
                bars = []
            if bars:
                break
        if not bars:
            raise ValueError(f"no {bar_type} bars in the catalog at {path}")
        data.series.extend(series_from_bars(bars).values())
        symbol = instrument.raw_symbol.value
        try:
            updates = catalog.query(FundingRateUpdate, identifiers=[instrument.id.value])
        except Exception:
            updates = []
        data.funding[symbol] = _funding_rows(updates)
    return data
