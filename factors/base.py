"""What every factor indicator shares: a Nautilus ``Indicator`` with a value that can be "not available".

A factor reports ``value`` (float) only when it is warm AND its data source exists; otherwise ``value`` is
None and ``reason`` says why ("warming up: 12/50 bars", "bars carry no taker-buy volume", ...). The score
never mistakes a missing factor for a neutral 0.

Bar factors keep their state (EMAs, windows, running sums) current on every bar but compute the value itself
only when it is read (``_outdated``): a backtest that scans once an hour on 1m bars reads one value in sixty. The
value computed late is the one computed at the bar, bit for bit: it is the same arithmetic on the same state,
and anything an event could change between the bar and the read (F's open interest) is taken at the bar. The
same for the event factors fed several times between two scans: L keeps the last quote, B the last rates.
"""

from nautilus_trader.indicators.base import Indicator
from nautilus_trader.model.data import Bar


def bar_floats(bar: Bar) -> tuple[float, float, float, float, float, float | None]:
    """(open, high, low, close, volume, taker_buy_volume or None) of a Bar or BinanceBar."""
    taker = getattr(bar, "taker_buy_base_volume", None)
    return (
        bar.open.as_double(),
        bar.high.as_double(),
        bar.low.as_double(),
        bar.close.as_double(),
        bar.volume.as_double(),
        None if taker is None else float(taker),
    )


class FactorIndicator(Indicator):
    """Base of the factor indicators. Subclasses set ``key`` and keep ``_value`` / ``_reason`` current."""

    # Slots, not a __dict__: on a subclass of Nautilus's Cython Indicator an attribute in the instance __dict__
    # reads about three times slower than a slot, and the factors' updates and values are mostly attribute reads.
    __slots__ = ("_value", "_reason", "_outdated", "warmup")

    key: str = ""
    warmup: int  # bars before the value is live (set by the bar factors; see ``_warm_at``)

    def __init__(self, params: list) -> None:
        super().__init__(params)
        self._value: float | None = None
        self._reason: str | None = "no data yet"
        self._outdated = False  # the state moved on since ``_value`` was computed: ``_compute_value`` when read

    @property
    def value(self) -> float | None:
        """The factor value, or None when it is not available (see ``reason``)."""
        if self._outdated:
            self._outdated = False
            self._compute_value()
        return self._value

    @property
    def reason(self) -> str | None:
        """Why ``value`` is None; None when the value is live."""
        if self._outdated:
            self._outdated = False
            self._compute_value()
        return self._reason

    def _compute_value(self) -> None:
        """Set ``_value`` from the state of the last update (factors that defer it set ``_outdated``)."""
        raise NotImplementedError

    def _warm_at(self, count: int) -> bool:
        """After a bar has moved the state on, with ``count`` bars seen: whether the factor is warm. Warm: the value
        is due again (computed when read) and the first warm bar marks the indicator initialized; not yet:
        ``reason`` says how far the warm-up has come."""
        if count < self.warmup:
            self._reason = f"warming up: {count}/{self.warmup} bars"
            return False
        self._outdated = True
        if self._reason is not None:
            self._reason = None
            self._set_initialized(True)
        return True

    def _reset_value(self) -> None:
        self._value = None
        self._reason = "no data yet"
        self._outdated = False


class BarFactor(FactorIndicator):
    """A factor fed by bars. ``update_bar`` takes plain floats so a book can unpack a bar once for all
    factors."""

    __slots__ = ()

    def handle_bar(self, bar: Bar) -> None:
        o, h, l, c, v, tb = bar_floats(bar)  # noqa: E741
        self.update_bar(o, h, l, c, v, tb, bar.ts_event)

    def update_bar(
        self,
        o: float,
        h: float,
        l: float,  # noqa: E741
        c: float,
        v: float,
        tb: float | None,
        ts: int,  # noqa: E741
    ) -> None:
        raise NotImplementedError

    def update_bars(self, bars: list[tuple[float, float, float, float, float, float | None, int]]) -> None:
        """``update_bar`` for each (o, h, l, c, v, tb, ts) in order: the state ends the same, bit for bit. Factors
        override it with one loop over the bars that keeps the running state in locals (``FactorBook`` hands
        them the bars that came since it was last read)."""
        update = self.update_bar
        for o, h, l, c, v, tb, ts in bars:  # noqa: E741
            update(o, h, l, c, v, tb, ts)
