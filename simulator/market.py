"""Replayed market data: klines taken from Nautilus bars, and the intra-bar price path the exchange trades on.

A 1-minute bar only says open, high, low and close. The simulator walks each bar along four points,
open -> nearer extreme -> farther extreme -> close (the usual OHLC path assumption of bar backtests), and
treats the moves between them as straight lines: a stop or limit whose price lies on a segment is touched at
that price, and one that the segment opened beyond (a gap) at the segment's first price.
"""

from collections.abc import Iterable, Sequence
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


def kline_from_bar(bar: Bar) -> Kline:
    """Bar timestamps are the bar close; BinanceBar carries the extra kline columns, a Bar gets zeros."""
    interval, interval_ms = interval_of(bar)
    close_ms = bar.ts_event // 1_000_000
    # Works whether ts_event is open + interval (Nautilus) or open + interval - 1 ms (Binance close_time).
    open_ms = ((close_ms - 1) // interval_ms) * interval_ms
    volume = Decimal(str(bar.volume))
    close = Decimal(str(bar.close))
    quote_volume = Decimal(str(getattr(bar, "quote_volume", volume * close)))
    return Kline(
        symbol=raw_symbol(bar),
        interval=interval,
        open_time=open_ms,
        close_time=open_ms + interval_ms - 1,
        open=Decimal(str(bar.open)),
        high=Decimal(str(bar.high)),
        low=Decimal(str(bar.low)),
        close=close,
        volume=volume,
        quote_volume=quote_volume,
        count=int(getattr(bar, "count", 0)),
        taker_buy_base=Decimal(str(getattr(bar, "taker_buy_base_volume", 0))),
        taker_buy_quote=Decimal(str(getattr(bar, "taker_buy_quote_volume", 0))),
    )


def klines_by_symbol(bars: Iterable[Bar]) -> dict[str, list[Kline]]:
    """Group bars per raw symbol, ordered by time; one interval per symbol (the finest drives the replay)."""
    out: dict[str, list[Kline]] = {}
    for bar in bars:
        k = kline_from_bar(bar)
        out.setdefault(k.symbol, []).append(k)
    for symbol, klines in out.items():
        klines.sort(key=lambda k: k.open_time)
        intervals = {k.interval for k in klines}
        if len(intervals) != 1:
            raise ValueError(f"{symbol}: bars of several intervals {sorted(intervals)}; give one bar type per symbol")
    return out


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


def replay_steps(klines: dict[str, Sequence[Kline]]) -> list[list[Step]]:
    """All symbols in lock step by open time: a list of ticks, each the segments that happen at one moment."""
    by_time: dict[int, list[Kline]] = {}
    for series in klines.values():
        for k in series:
            by_time.setdefault(k.open_time, []).append(k)
    ticks: list[list[Step]] = []
    for open_time in sorted(by_time):
        group = sorted(by_time[open_time], key=lambda k: k.symbol)
        paths = [(k, k.path()) for k in group]
        for i in range(4):
            tick = []
            for k, path in paths:
                start = path[i - 1] if i > 0 else path[0]
                ts = k.close_time if i == 3 else k.open_time + (k.interval_ms * i) // 3
                tick.append(Step(k.symbol, k, i, start, path[i], ts))
            ticks.append(tick)
    return ticks


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
