"""Kline series in columns: one symbol's klines as numpy arrays, made into ``Kline`` objects only when the replay
or ``GET /fapi/v1/klines`` reaches them.

A month of 1m klines is 43,200 rows per symbol. Built up front as Python objects with Decimal fields (and four
replay steps per kline), 16 symbols took about 100 s and 1.7 GB; as arrays a symbol takes under 4 MB and loads
in well under a second. A series replayed under another symbol name (``renamed``) shares its arrays, and a
window of a series (``window``) is a view, not a copy.
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

import numpy as np
from nautilus_trader.model.data import Bar

from simulator.market import Kline, Step, interval_of, raw_symbol

_ZERO = Decimal(0)


@dataclass(frozen=True, eq=False)
class KlineSeries:
    """The klines of one symbol and one interval, oldest first.

    Rows before ``replay_from`` are history: served by ``GET /fapi/v1/klines`` as past klines (a strategy's
    warm-up), never replayed. Prices and volumes are float64 read from the data's decimal text; ``kline``
    rounds them back to the instrument's precision, so the Decimals it gives are the data's own values.
    """

    symbol: str
    interval: str  # Binance's name, e.g. "1m"
    interval_ms: int
    price_precision: int
    size_precision: int
    open_time: np.ndarray  # int64, epoch ms of each kline's open
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote_volume: np.ndarray | None = None  # None: volume x close
    count: np.ndarray | None = None  # trade count; None: 0
    taker_buy_base: np.ndarray | None = None  # None: 0
    taker_buy_quote: np.ndarray | None = None
    replay_from: int = 0

    def __post_init__(self) -> None:
        n = len(self.open_time)
        for name in ("open", "high", "low", "close", "volume"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{self.symbol}: column {name} has {len(getattr(self, name))} rows, not {n}")
        if not 0 <= self.replay_from <= n:
            raise ValueError(f"{self.symbol}: replay_from {self.replay_from} outside 0..{n}")
        if n > 1 and not bool(np.all(np.diff(self.open_time) > 0)):
            raise ValueError(f"{self.symbol}: kline open times must increase strictly")

    def __len__(self) -> int:
        return len(self.open_time)

    @property
    def replayed(self) -> int:
        """Rows the replay walks (those from ``replay_from`` on)."""
        return len(self) - self.replay_from

    def kline(self, i: int) -> Kline:
        """Row ``i`` as a ``Kline``, with the Decimal values the data file holds."""
        p, q = self.price_precision, self.size_precision
        open_ms = int(self.open_time[i])
        volume = Decimal(f"{self.volume[i]:.{q}f}")
        close = Decimal(f"{self.close[i]:.{p}f}")
        return Kline(
            symbol=self.symbol,
            interval=self.interval,
            open_time=open_ms,
            close_time=open_ms + self.interval_ms - 1,
            open=Decimal(f"{self.open[i]:.{p}f}"),
            high=Decimal(f"{self.high[i]:.{p}f}"),
            low=Decimal(f"{self.low[i]:.{p}f}"),
            close=close,
            volume=volume,
            quote_volume=_exact(self.quote_volume, i) if self.quote_volume is not None else volume * close,
            count=int(self.count[i]) if self.count is not None else 0,
            taker_buy_base=_exact(self.taker_buy_base, i) if self.taker_buy_base is not None else _ZERO,
            taker_buy_quote=_exact(self.taker_buy_quote, i) if self.taker_buy_quote is not None else _ZERO,
        )

    def renamed(self, symbol: str) -> "KlineSeries":
        """The same klines under another symbol name; the arrays are shared, not copied."""
        return replace(self, symbol=symbol)

    def window(self, start_ms: int | None = None, limit: int | None = None, history: int = 0) -> "KlineSeries":
        """Replay the klines opened at ``start_ms`` or later (all from the first when None), at most ``limit``;
        keep up to ``history`` rows before them as history. Chosen among all rows, history included."""
        first = 0 if start_ms is None else int(np.searchsorted(self.open_time, start_ms, side="left"))
        begin = max(0, first - history)
        end = len(self) if limit is None else min(len(self), first + limit)
        return self._rows(begin, end, replay_from=first - begin)

    def _rows(self, begin: int, end: int, replay_from: int) -> "KlineSeries":
        def cut(column: np.ndarray | None) -> np.ndarray | None:
            return None if column is None else column[begin:end]

        return replace(
            self,
            open_time=self.open_time[begin:end],
            open=self.open[begin:end],
            high=self.high[begin:end],
            low=self.low[begin:end],
            close=self.close[begin:end],
            volume=self.volume[begin:end],
            quote_volume=cut(self.quote_volume),
            count=cut(self.count),
            taker_buy_base=cut(self.taker_buy_base),
            taker_buy_quote=cut(self.taker_buy_quote),
            replay_from=replay_from,
        )

    def closed_rows(self, closed: int, start_ms: int | None, end_ms: int | None, limit: int) -> range:
        """Row indexes among the first ``closed`` rows whose open time is within [start_ms, end_ms], as
        ``GET /fapi/v1/klines`` windows them: the first ``limit`` after a start, else the last ``limit``."""
        times = self.open_time[:closed]
        lo = 0 if start_ms is None else int(np.searchsorted(times, start_ms, side="left"))
        hi = closed if end_ms is None else int(np.searchsorted(times, end_ms, side="right"))
        if hi <= lo:
            return range(0)
        return range(lo, min(hi, lo + limit)) if start_ms is not None else range(max(lo, hi - limit), hi)


def _exact(column: np.ndarray, i: int) -> Decimal:
    """A float column's value as the shortest decimal that reads back to it (what the file said)."""
    return Decimal(repr(float(column[i])))


def series_from_bars(bars: Iterable[Bar], history: Iterable[Bar] = ()) -> dict[str, KlineSeries]:
    """Nautilus bars (``Bar`` or ``BinanceBar``) grouped into one series per raw symbol; ``history`` bars opened
    before a symbol's first replayed bar become its history rows. One interval per symbol."""
    replayed = _group(bars)
    past = _group(history)
    out: dict[str, KlineSeries] = {}
    for symbol, rows in replayed.items():
        first_open = _open_ms(rows[0])
        before = [b for b in past.get(symbol, []) if _open_ms(b) < first_open]
        out[symbol] = _series_of(symbol, before + rows, replay_from=len(before))
    return out


def _group(bars: Iterable[Bar]) -> dict[str, list[Bar]]:
    out: dict[str, list[Bar]] = {}
    for bar in bars:
        out.setdefault(raw_symbol(bar), []).append(bar)
    for rows in out.values():
        rows.sort(key=lambda b: b.ts_event)
    return out


def _open_ms(bar: Bar) -> int:
    _, interval_ms = interval_of(bar)
    # Works whether ts_event is open + interval (Nautilus) or open + interval - 1 ms (Binance close_time).
    return ((bar.ts_event // 1_000_000 - 1) // interval_ms) * interval_ms


def _series_of(symbol: str, bars: list[Bar], replay_from: int) -> KlineSeries:
    intervals = {interval_of(b) for b in bars}
    if len(intervals) != 1:
        names = sorted(name for name, _ in intervals)
        raise ValueError(f"{symbol}: bars of several intervals {names}; give one bar type per symbol")
    ((interval, interval_ms),) = intervals
    binance = all(hasattr(b, "taker_buy_base_volume") for b in bars)

    def floats(values: Iterable[object]) -> np.ndarray:
        return np.fromiter((float(v) for v in values), dtype=np.float64, count=len(bars))  # type: ignore[arg-type]

    return KlineSeries(
        symbol=symbol,
        interval=interval,
        interval_ms=interval_ms,
        price_precision=bars[0].open.precision,
        size_precision=bars[0].volume.precision,
        open_time=np.fromiter((_open_ms(b) for b in bars), dtype=np.int64, count=len(bars)),
        open=floats(b.open for b in bars),
        high=floats(b.high for b in bars),
        low=floats(b.low for b in bars),
        close=floats(b.close for b in bars),
        volume=floats(b.volume for b in bars),
        quote_volume=floats(b.quote_volume for b in bars) if binance else None,  # type: ignore[attr-defined]
        count=np.fromiter((int(b.count) for b in bars), np.int64, len(bars)) if binance else None,  # type: ignore[attr-defined]
        taker_buy_base=floats(b.taker_buy_base_volume for b in bars) if binance else None,  # type: ignore[attr-defined]
        taker_buy_quote=floats(b.taker_buy_quote_volume for b in bars) if binance else None,  # type: ignore[attr-defined]
        replay_from=replay_from,
    )


def bar_ticks(klines: Sequence[Kline]) -> list[list[Step]]:
    """The four ticks of klines that open at the same moment: each kline's path walked in lock step."""
    paths = [(k, k.path()) for k in klines]
    ticks = []
    for i in range(4):
        tick = []
        for k, path in paths:
            start = path[i - 1] if i > 0 else path[0]
            ts = k.close_time if i == 3 else k.open_time + (k.interval_ms * i) // 3
            tick.append(Step(k.symbol, k, i, start, path[i], ts))
        ticks.append(tick)
    return ticks


class ReplaySchedule:
    """All symbols' replayed rows in lock step by open time, generated as the replay goes (nothing built ahead)."""

    def __init__(self, series: Mapping[str, KlineSeries]) -> None:
        self._series = [series[s] for s in sorted(series)]
        # Series replayed under several names share one array: take each distinct one once.
        distinct: dict[tuple[int, int], np.ndarray] = {}
        for s in self._series:
            times = s.open_time[s.replay_from :]
            distinct[(times.__array_interface__["data"][0], len(times))] = times
        arrays = list(distinct.values())
        self.open_times: np.ndarray = np.unique(np.concatenate(arrays)) if arrays else np.empty(0, np.int64)

    @property
    def total_ticks(self) -> int:
        return 4 * len(self.open_times)

    def ticks(self) -> Iterator[list[Step]]:
        cursors = [s.replay_from for s in self._series]
        for open_time in self.open_times.tolist():
            group = []
            for n, series in enumerate(self._series):
                i = cursors[n]
                if i < len(series) and series.open_time[i] == open_time:
                    group.append(series.kline(i))
                    cursors[n] = i + 1
            yield from bar_ticks(group)
