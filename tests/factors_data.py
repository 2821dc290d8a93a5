"""Real Binance bars for the factor tests: Nautilus bars from ../shared/data, and their numbers as a frame."""

from pathlib import Path

import pandas as pd
from nautilus_trader.model.data import Bar, QuoteTick
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price, Quantity

from catalog.convert import convert_file
from catalog.files import identify
from catalog.instruments import binance_perpetual


def load_bars(path: Path, rows: slice | None = None) -> list[Bar]:
    """Bars (BinanceBar for Vision klines, Bar for OHLCV files) of one shared-data file, optionally sliced."""
    data_file = identify(path)
    bars = [b for b in convert_file(data_file, binance_perpetual(data_file.symbol)) if isinstance(b, Bar)]
    return bars[rows] if rows is not None else bars


def bars_frame(bars: list[Bar]) -> pd.DataFrame:
    """The floats the indicators see, one row per bar: ts, open, high, low, close, volume[, taker_buy]."""
    frame = pd.DataFrame(
        {
            "ts": [b.ts_event for b in bars],
            "open": [b.open.as_double() for b in bars],
            "high": [b.high.as_double() for b in bars],
            "low": [b.low.as_double() for b in bars],
            "close": [b.close.as_double() for b in bars],
            "volume": [b.volume.as_double() for b in bars],
        }
    )
    if bars and hasattr(bars[0], "taker_buy_base_volume"):
        frame["taker_buy"] = [float(b.taker_buy_base_volume) for b in bars]
    return frame


def book_ticker_quote(instrument_id: InstrumentId, ticker: dict, ts: int) -> QuoteTick:
    """A QuoteTick from one captured Binance bookTicker message (b/a prices, B/A sizes), stamped ``ts``."""
    return QuoteTick(
        instrument_id,
        Price.from_str(ticker["b"]),
        Price.from_str(ticker["a"]),
        Quantity.from_str(ticker["B"]),
        Quantity.from_str(ticker["A"]),
        ts,
        ts,
    )
