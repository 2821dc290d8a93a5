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


def _bars_ts_ns(data_file: DataFile, frame: pd.DataFrame, column: str) -> np.ndarray:
    open_ms = to_ms(frame[column])
    check_increasing(data_file.path, frame, open_ms)
    # Nautilus stamps a bar at its close: the bar opened at t is known at t + interval.
    return ((open_ms + INTERVALS_MS[data_file.interval]) * MS).astype(np.uint64)


def _plain_bars(
    bar_type: BarType, instrument: CryptoPerpetual, frame: pd.DataFrame, ts: np.ndarray
) -> list[Bar]:
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


def convert_file(data_file: DataFile, instrument: CryptoPerpetual) -> list:
    """All Nautilus objects of one file: bars, mark bars and mark prices, funding rates, or open interest."""
    path, kind = data_file.path, data_file.kind
    text = read_text(path)
    if kind is FileKind.KLINES:
        frame = read_table(path, KLINE_COLUMNS, text)
        check_ohlc(path, frame)
        bad = np.flatnonzero(frame["taker_buy_volume"].to_numpy() > frame["volume"].to_numpy() * (1 + 1e-9))
        if bad.size:
            raise CatalogInputError(
                path, "taker_buy_volume exceeds volume", int(bad[0]) + frame.attrs["line_offset"]
            )
        ts = _bars_ts_ns(data_file, frame, "open_time")
        return _binance_bars(bar_type_for(instrument.id, _BAR_SPEC[data_file.interval]), instrument, frame, ts)
    if kind is FileKind.OHLCV:
        frame = read_table(path, OHLCV_COLUMNS, text)
        check_ohlc(path, frame)
        ts = _bars_ts_ns(data_file, frame, "open_time_ms")
        return _plain_bars(bar_type_for(instrument.id, _BAR_SPEC[data_file.interval]), instrument, frame, ts)
    if kind is FileKind.MARK_KLINES:
        vision = text.split(",", 1)[0].strip() == "open_time" or text.count(",", 0, text.find("\n")) == 11
        frame = read_table(path, KLINE_COLUMNS if vision else MARK_COLUMNS, text)
        check_ohlc(path, frame)
        column = "open_time" if vision else "open_time_ms"
        ts = _bars_ts_ns(data_file, frame, column)
        bars = _plain_bars(bar_type_for(instrument.id, _BAR_SPEC[data_file.interval], "MARK"), instrument, frame, ts)
        # The mark price at each candle's open is a real observation: Binance settles funding at that instant.
        open_ns = (to_ms(frame[column]) * MS).tolist()
        marks = [
            MarkPriceUpdate(instrument.id, Price(o, instrument.price_precision), t, t)
            for o, t in zip(frame["open"].tolist(), open_ns, strict=True)
        ]
        return bars + marks
    if kind is FileKind.FUNDING:
        vision = text.startswith("calc_time")
        frame = read_table(path, VISION_FUNDING_COLUMNS if vision else FUNDING_COLUMNS, text)
        column = "calc_time" if vision else "funding_time_ms"
        rate_column = "last_funding_rate" if vision else "funding_rate"
        # Funding events carry a few ms of jitter; they settle on the second.
        ts_ms = (to_ms(frame[column]) // 1000) * 1000
        check_increasing(path, frame, ts_ms)
        return [
            FundingRateUpdate(instrument.id, Decimal(repr(rate)), int(t) * MS, int(t) * MS)
            for rate, t in zip(frame[rate_column].tolist(), ts_ms.tolist(), strict=True)
        ]
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
