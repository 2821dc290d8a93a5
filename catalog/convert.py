"""Validated frames of Binance files -> Nautilus data objects."""

from decimal import Decimal

import numpy as np
import pandas as pd
from nautilus_trader.adapters.binance.common.types import BinanceBar
from nautilus_trader.model.data import Bar, BarType, FundingRateUpdate, MarkPriceUpdate
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.model.objects import Price, Quantity

from catalog.errors import CatalogInputError
from catalog.files import (
    FUNDING_COLUMNS,
    INTERVALS_MS,
    KLINE_COLUMNS,
    MARK_COLUMNS,
    METRICS_COLUMNS,
    OHLCV_COLUMNS,
    VISION_FUNDING_COLUMNS,
    DataFile,
    FileKind,
    check_increasing,
    check_ohlc,
    read_freqtrade,
    read_table,
    read_text,
    to_ms,
)
from factors.inputs import OpenInterest, bar_type_for

MS = 1_000_000  # ns per ms
_BAR_SPEC = {
    "1m": "1-MINUTE",
    "3m": "3-MINUTE",
    "5m": "5-MINUTE",
    "15m": "15-MINUTE",
    "30m": "30-MINUTE",
    "1h": "1-HOUR",
    "2h": "2-HOUR",
    "4h": "4-HOUR",
    "6h": "6-HOUR",
    "8h": "8-HOUR",
    "12h": "12-HOUR",
    "1d": "1-DAY",
}


def interval_of_spec(bar_spec: str) -> str:
    """ "1-MINUTE" -> "1m"."""
    for interval, spec in _BAR_SPEC.items():
        if spec == bar_spec:
            return interval
    raise ValueError(f"unsupported bar spec {bar_spec!r}; use one of {', '.join(_BAR_SPEC.values())}")


def spec_of_bar(value: object) -> str:
    """A bar size as traders write it (``"5m"``, ``"1h"``, ``"5-MINUTE"``) -> the Nautilus spec ``"5-MINUTE"``."""
    if isinstance(value, str):
        text = value.strip()
        if text in _BAR_SPEC:
            return _BAR_SPEC[text]
        if text.upper() in _BAR_SPEC.values():
            return text.upper()
    raise ValueError(
        f"{value!r} is not a bar size; use one of {', '.join(_BAR_SPEC)} (or {', '.join(_BAR_SPEC.values())})"
    )


def _bars_ts_ns(data_file: DataFile, frame: pd.DataFrame, column: str) -> np.ndarray:
    open_ms = to_ms(frame[column])
    check_increasing(data_file.path, frame, open_ms)
    # Nautilus stamps a bar at its close: the bar opened at t is known at t + interval.
    return ((open_ms + INTERVALS_MS[data_file.interval]) * MS).astype(np.uint64)


def _plain_bars(bar_type: BarType, instrument: CryptoPerpetual, frame: pd.DataFrame, ts: np.ndarray) -> list[Bar]:
    # Nautilus wants writable buffers; pandas 3 hands out read-only views, hence the copies.
    arrays = [np.array(frame[k], dtype=np.float64) for k in ("open", "high", "low", "close")]
    volume = np.array(frame["volume"], dtype=np.float64) if "volume" in frame else np.zeros(len(frame))
    ts = np.array(ts, dtype=np.uint64)
    return Bar.from_raw_arrays_to_list(
        bar_type, instrument.price_precision, instrument.size_precision, *arrays, volume, ts, ts.copy()
    )


def _binance_bars(
    bar_type: BarType, instrument: CryptoPerpetual, frame: pd.DataFrame, ts: np.ndarray
) -> list[BinanceBar]:
    price_prec, size_prec = instrument.price_precision, instrument.size_precision
    names = (
        "open",
        "high",
        "low",
        "close",
        "volume",
        "quote_volume",
        "count",
        "taker_buy_volume",
        "taker_buy_quote_volume",
    )
    columns = zip(*(frame[name].tolist() for name in names), ts.tolist(), strict=True)
    return [
        BinanceBar(
            bar_type,
            Price(o, price_prec),
            Price(h, price_prec),
            Price(low, price_prec),
            Price(c, price_prec),
            Quantity(v, size_prec),
            Decimal(repr(qv)),
            int(n),
            Decimal(repr(tbv)),
            Decimal(repr(tbqv)),
            t,
            t,
        )
        for o, h, low, c, v, qv, n, tbv, tbqv, t in columns
    ]


def _convert_frame(data_file: DataFile, instrument: CryptoPerpetual, frame: pd.DataFrame) -> list:
    """Objects of a frame in the OHLCV, MARK or FUNDING column layout (freqtrade's and the shared CSVs')."""
    if data_file.kind is FileKind.OHLCV:
        check_ohlc(data_file.path, frame)
        ts = _bars_ts_ns(data_file, frame, "open_time_ms")
        return _plain_bars(bar_type_for(instrument.id, _BAR_SPEC[data_file.interval]), instrument, frame, ts)
    if data_file.kind is FileKind.MARK_KLINES:
        return _mark(data_file, instrument, frame, "open_time_ms")
    if data_file.kind is FileKind.FUNDING:
        return _funding(data_file, instrument, frame, "funding_time_ms")
    raise CatalogInputError(data_file.path, f"no converter for {data_file.kind}")


def _mark(data_file: DataFile, instrument: CryptoPerpetual, frame: pd.DataFrame, column: str) -> list:
    check_ohlc(data_file.path, frame)
    ts = _bars_ts_ns(data_file, frame, column)
    bars = _plain_bars(bar_type_for(instrument.id, _BAR_SPEC[data_file.interval], "MARK"), instrument, frame, ts)
    # The mark price at each candle's open is a real observation: Binance settles funding at that instant.
    open_ns = (to_ms(frame[column]) * MS).tolist()
    marks = [
        MarkPriceUpdate(instrument.id, Price(o, instrument.price_precision), t, t)
        for o, t in zip(frame["open"].tolist(), open_ns, strict=True)
    ]
    return bars + marks


def _funding(data_file: DataFile, instrument: CryptoPerpetual, frame: pd.DataFrame, column: str) -> list:
    rate_column = "last_funding_rate" if column == "calc_time" else "funding_rate"
    # Funding events carry a few ms of jitter; they settle on the second.
    ts_ms = (to_ms(frame[column]) // 1000) * 1000
    check_increasing(data_file.path, frame, ts_ms)
    return [
        FundingRateUpdate(instrument.id, Decimal(repr(rate)), int(t) * MS, int(t) * MS)
        for rate, t in zip(frame[rate_column].tolist(), ts_ms.tolist(), strict=True)
    ]


def convert_file(data_file: DataFile, instrument: CryptoPerpetual) -> list:
    """All Nautilus objects of one file: bars, mark bars and mark prices, funding rates, or open interest."""
    path, kind = data_file.path, data_file.kind
    if data_file.freqtrade:
        return _convert_frame(data_file, instrument, read_freqtrade(data_file))
    text = read_text(path)
    if kind is FileKind.KLINES:
        frame = read_table(path, KLINE_COLUMNS, text)
        check_ohlc(path, frame)
        bad = np.flatnonzero(frame["taker_buy_volume"].to_numpy() > frame["volume"].to_numpy() * (1 + 1e-9))
        if bad.size:
            raise CatalogInputError(path, "taker_buy_volume exceeds volume", int(bad[0]) + frame.attrs["line_offset"])
        ts = _bars_ts_ns(data_file, frame, "open_time")
        return _binance_bars(bar_type_for(instrument.id, _BAR_SPEC[data_file.interval]), instrument, frame, ts)
    if kind is FileKind.OHLCV:
        return _convert_frame(data_file, instrument, read_table(path, OHLCV_COLUMNS, text))
    if kind is FileKind.MARK_KLINES:
        vision = text.split(",", 1)[0].strip() == "open_time" or text.count(",", 0, text.find("\n")) == 11
        if not vision:
            return _convert_frame(data_file, instrument, read_table(path, MARK_COLUMNS, text))
        return _mark(data_file, instrument, read_table(path, KLINE_COLUMNS, text), "open_time")
    if kind is FileKind.FUNDING:
        vision = text.startswith("calc_time")
        if not vision:
            return _convert_frame(data_file, instrument, read_table(path, FUNDING_COLUMNS, text))
        return _funding(data_file, instrument, read_table(path, VISION_FUNDING_COLUMNS, text), "calc_time")
    if kind is FileKind.METRICS:
        frame = read_table(path, METRICS_COLUMNS, text)
        try:
            stamps = pd.to_datetime(frame["create_time"], format="%Y-%m-%d %H:%M:%S", utc=True)
        except ValueError as exc:
            raise CatalogInputError(path, f"create_time is not 'YYYY-MM-DD HH:MM:SS' ({exc})") from exc
        ts_ns = pd.DatetimeIndex(stamps).as_unit("ns").asi8
        check_increasing(path, frame, ts_ns // MS)
        return [
            OpenInterest(int(t), int(t), instrument.id, float(oi), float(oiv))
            for t, oi, oiv in zip(
                ts_ns.tolist(),
                frame["sum_open_interest"].tolist(),
                frame["sum_open_interest_value"].tolist(),
                strict=True,
            )
        ]
    raise CatalogInputError(path, f"no converter for {kind}")
