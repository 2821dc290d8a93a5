"""M momentum: RSI centred at 50, and the rate of change scaled by the typical close-to-close move."""

from collections import deque
from math import sqrt, tanh

from factors.base import BarFactor


class MomentumFactor(BarFactor):
    """M = 0.5 rsi_part + 0.5 roc_part.

    ag, al = Wilder averages (alpha 1/rsi_period) of the up / down close changes, seeded with the first
    change.
    rsi_part = 2 (RSI - 50) = 100 (ag - al) / (ag + al).
    roc_part = 100 tanh((c_t - c_{t-n}) / ((ag + al) sqrt(n)) / roc_scale): the n-bar move in units of the
    typical one-bar move (ag + al is the mean |change|), so the same scale fits 1m and 1h bars.
    Both parts are 0 when the closes have not moved (ag + al = 0).
    """

    key = "M"
    __slots__ = (
        "_ag",
        "_al",
        "_closes",
        "_count",
        "_n",
        "_prev",
        "_roc_den",
        "_roc_n",
    )

    def __init__(self, rsi_period: int = 14, roc_period: int = 14, roc_scale: float = 2.0) -> None:
        super().__init__([rsi_period, roc_period])
        self._n = rsi_period
        self._roc_n = roc_period
        self._roc_den = sqrt(roc_period) * roc_scale
        self._closes: deque[float] = deque(maxlen=roc_period + 1)
        self.warmup = max(rsi_period, roc_period) + 1
        self._reset()

    def _reset(self) -> None:
        self._reset_value()
        self._closes.clear()
        self._count = 0
        self._ag = self._al = 0.0
        self._prev = 0.0

    def update_bar(self, o, h, l, c, v, tb, ts) -> None:  # noqa: E741
        if self._count == 0:
            self._set_has_inputs(True)
        else:
            d = c - self._prev
            g = d if d > 0.0 else 0.0
            lo = -d if d < 0.0 else 0.0
            if self._count == 1:
                self._ag, self._al = g, lo
            else:
                self._ag += (g - self._ag) / self._n
                self._al += (lo - self._al) / self._n
        self._prev = c
        self._closes.append(c)
        self._count += 1
        self._warm_at(self._count)

    def update_bars(self, bars: list) -> None:
        """``update_bar`` over the bars in one loop: the same arithmetic in the same order on locals."""
        if not bars:
            return
        n, count, ag, al, prev = self._n, self._count, self._ag, self._al, self._prev
        if count == 0:
            self._set_has_inputs(True)
        for _o, _h, _l, c, _v, _tb, _ts in bars:
            if count:
                d = c - prev
                g = d if d > 0.0 else 0.0
                lo = -d if d < 0.0 else 0.0
                if count == 1:
                    ag, al = g, lo
                else:
                    ag += (g - ag) / n
                    al += (lo - al) / n
            prev = c
            count += 1
        self._closes.extend([b[3] for b in bars[-self._closes.maxlen :]])  # type: ignore[operator]
        self._ag, self._al, self._prev, self._count = ag, al, prev, count
        self._warm_at(count)

    def _compute_value(self) -> None:
        s = self._ag + self._al
        if s > 0.0:
            self._value = 50.0 * (self._ag - self._al) / s + 50.0 * tanh(
                (self._prev - self._closes[0]) / s / self._roc_den
            )
        else:
            self._value = 0.0
