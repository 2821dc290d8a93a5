"""O open interest: the 12-hour price / OI quadrant, damped when OI is extreme against its 7-day mean."""

from math import tanh

from factors.base import FactorIndicator
from factors.timed import AsOf, WindowMean

NO_OI = "no open-interest data (no OI feed or file for this symbol)"


def oi_quadrant(
    price_now: float,
    price_then: float,
    oi_now: float,
    oi_then: float,
    oi_mean: float,
    scale_pct: float,
    weak: float,
    extreme_ratio: float,
) -> float:
    """O from the 12h changes.

    mag = 100 tanh(|dOI%| / scale_pct); price up & OI up -> +mag (new longs), price down & OI up -> -mag (new
    shorts); OI flat or falling -> sign(dPrice) x weak x mag (covering / liquidation: weak). Then x damp,
    damp = 1 / (1 + max(0, OI/mean - r) / (r - 1)): crowded OI (far above its 7-day mean) counts less.
    """
    dp = price_now - price_then
    doi_pct = (oi_now / oi_then - 1.0) * 100.0
    sign = 1.0 if dp > 0.0 else (-1.0 if dp < 0.0 else 0.0)
    mag = 100.0 * tanh(abs(doi_pct) / scale_pct)
    o = sign * mag if doi_pct > 0.0 else sign * weak * mag
    excess = oi_now / oi_mean - extreme_ratio
    if excess > 0.0:
        o /= 1.0 + excess / (extreme_ratio - 1.0)
    return o


class OpenInterestFactor(FactorIndicator):
    """Fed with ``update_price(ts, close)`` on every bar and ``update_oi(ts, oi)`` on every OI poll.

    Available when an OI observation at least ``lookback`` old exists and the latest one is at most
    ``stale_ns`` old; the value is recomputed on each price and each OI update.
    """

    key = "O"
    __slots__ = (
        "_extreme",
        "_lookback",
        "_mean",
        "_oi",
        "_oi_ts",
        "_ois",
        "_price",
        "_price_ts",
        "_prices",
        "_scale",
        "_stale",
        "_weak",
    )

    def __init__(
        self,
        lookback_ns: int,
        mean_ns: int,
        scale_pct: float = 5.0,
        weak: float = 0.3,
        extreme_ratio: float = 1.5,
        stale_ns: int = 30 * 60 * 1_000_000_000,
    ) -> None:
        super().__init__([lookback_ns, mean_ns])
        self._lookback = lookback_ns
        self._scale = scale_pct
        self._weak = weak
        self._extreme = extreme_ratio
        self._stale = stale_ns
        self._prices = AsOf()
        self._ois = AsOf()
        self._mean = WindowMean(mean_ns)
        self._reset()

    def _reset(self) -> None:
        self._value = None
        self._reason = NO_OI
        self._prices.clear()
        self._ois.clear()
        self._mean.clear()
        self._price = 0.0
        self._price_ts = 0
        self._oi = 0.0
        self._oi_ts = -1

    def handle_bar(self, bar) -> None:  # noqa: ANN001
        self.update_price(bar.ts_event, bar.close.as_double())

    def update_price(self, ts: int, close: float) -> None:
        self._price = close
        self._price_ts = ts
        if self._oi_ts >= 0:
            self._prices.add(ts, close)
            self._compute(ts)

    def update_prices(self, bars: list) -> None:
        """``update_price`` for each (o, h, l, c, v, tb, ts) bar in order. Before any OI only the last price is
        kept, so one step stands for all of them."""
        if self._oi_ts < 0:
            last = bars[-1]
            self.update_price(last[6], last[3])
        else:
            for _o, _h, _l, c, _v, _tb, ts in bars:
                self.update_price(ts, c)

    def update_oi(self, ts: int, oi: float) -> None:
        if not oi > 0.0:
            raise ValueError(f"open interest must be > 0, got {oi} at ts={ts}")
        if self._oi_ts < 0 and self._price > 0.0:
            # Prices are kept only once OI flows (a bars-only run pays nothing); the last one before is the
            # price "as of" any later look-back cut that OI history can answer too.
            self._prices.add(self._price_ts, self._price)
        self._oi = oi
        self._oi_ts = ts
        self._ois.add(ts, oi)
        self._mean.add(ts, oi)
        self._set_has_inputs(True)
        if self._price > 0.0:
            self._compute(ts)

    def _compute(self, now: int) -> None:
        cutoff = now - self._lookback
        # look up (and so prune) first: a stale spell must not let the price history grow
        oi_then = self._ois.at(cutoff)
        price_then = self._prices.at(cutoff)
        if now - self._oi_ts > self._stale:
            self._value = None
            self._reason = f"open interest stale: last update {(now - self._oi_ts) / 6e10:.0f} min ago"
            return
        if oi_then is None or price_then is None:
            self._value = None
            self._reason = "warming up: less open-interest / price history than the look-back"
            return
        mean = self._mean.mean(now)
        self._value = oi_quadrant(
            self._price, price_then, self._oi, oi_then, mean or self._oi, self._scale, self._weak, self._extreme
        )
        self._reason = None
        self._set_initialized(True)
