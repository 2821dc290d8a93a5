"""Replayed market data: klines taken from Nautilus bars, and the intra-bar price path the exchange trades on.

A 1-minute bar only says open, high, low and close. The simulator walks each bar along four points,
open -> nearer extreme -> farther extreme -> close (the usual OHLC path assumption of bar backtests), and
treats the moves between them as straight lines: a stop or limit whose price lies on a segment is touched at
that price, and one that the segment opened beyond (a gap) at the segment's first price.
"""

from dataclasses import dataclass
from decimal import Decimal

from nautilus_trader.model.data import Bar
from nautilus_trader.model.enums import BarAggregation

_INTERVAL_SUFFIX = {
    BarAggregation.MINUTE: ("m", 60_000),
    BarAggregation.HOUR: ("h", 3_600_000),
    BarAggregation.DAY: ("d", 86_400_000),
}


@dataclass(frozen=True, slots=True)
class Kline:
    """One Binance kline; times in epoch ms, ``close_time = open_time + interval - 1`` as Binance has it."""

    symbol: str
    interval: str
    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    count: int
    taker_buy_base: Decimal
    taker_buy_quote: Decimal

    @property
    def interval_ms(self) -> int:
        return self.close_time + 1 - self.open_time

    def path(self) -> list[Decimal]:
        """Open, nearer-looking extreme, other extreme, close: a down bar visits its high first."""
        if self.close >= self.open:
            return [self.open, self.low, self.high, self.close]
        return [self.open, self.high, self.low, self.close]

    def to_rest(self, shift_ms: int = 0) -> list[int | str]:
        """The 12-column array of ``GET /fapi/v1/klines``."""
        return [
            self.open_time + shift_ms,
            str(self.open),
            str(self.high),
            str(self.low),
            str(self.close),
            str(self.volume),
            self.close_time + shift_ms,
            str(self.quote_volume),
            self.count,
            str(self.taker_buy_base),
            str(self.taker_buy_quote),
            "0",
        ]


def interval_of(bar: Bar) -> tuple[str, int]:
    """Binance interval name and length in ms of a bar's type, e.g. ``("1m", 60000)``."""
    spec = bar.bar_type.spec
    if spec.aggregation not in _INTERVAL_SUFFIX:
        raise ValueError(f"cannot replay {bar.bar_type}: only MINUTE, HOUR and DAY bars map to Binance klines")
    suffix, unit_ms = _INTERVAL_SUFFIX[spec.aggregation]
    return f"{spec.step}{suffix}", spec.step * unit_ms


def raw_symbol(bar: Bar) -> str:
    """``BTCUSDT-PERP.BINANCE`` -> ``BTCUSDT``."""
    return bar.bar_type.instrument_id.symbol.value.removesuffix("-PERP")


@dataclass(frozen=True, slots=True)
class Step:
    """One replay step: a symbol's price moves from ``start`` to ``end`` during ``kline``."""

    symbol: str
    kline: Kline
    index: int  # 0..3: the segment of the bar's path; the bar closes after segment 3
    start: Decimal
    end: Decimal
    ts_ms: int  # data time of the segment end

    @property
    def closes_bar(self) -> bool:
        return self.index == 3


def touch_price(start: Decimal, end: Decimal, level: Decimal, up: bool) -> Decimal | None:
    """Where a move from ``start`` to ``end`` first reaches ``level`` from below (up) or above (down).

    Returns None when it never does; ``start`` itself when the move began beyond the level (a gap).
    """
    if up:
        if start >= level:
            return start
        return level if end >= level else None
    if start <= level:
        return start
    return level if end <= level else None
