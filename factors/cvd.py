"""C cumulative volume delta: the trend of net taker buying, from BinanceBar taker-buy volume."""

from collections import deque
from math import tanh
from operator import mul

from factors.base import BarFactor

NO_TAKER = "bars carry no taker-buy volume (plain Bar, not BinanceBar): CVD not available"


class CvdFactor(BarFactor):
    """C = 100 tanh(slope / mean_volume / scale) x min(1, R^2 / r2_full).

    delta = 2 taker_buy - volume per bar; CVD = its running sum. slope and R^2 come from the least-squares
    line through the last ``window`` CVD values against the bar index; mean_volume is the mean volume of the
    same bars, so slope / mean_volume is the net taker share per bar. Poor fits (R^2 < r2_full) are damped.
    A window with constant CVD or no volume gives 0. Not available on bars without taker-buy volume.
    """

    key = "C"
    __slots__ = (
        "_count",
        "_n",
        "_r2_full",
        "_scale",
        "_sky",
        "_slides",
        "_sxx",
        "_sy",
        "_syy",
        "_vols",
        "_xbar",
        "_xs",
        "_y",
        "_ys",
    )

    def __init__(self, window: int = 20, scale: float = 0.2, r2_full: float = 0.5) -> None:
        super().__init__([window])
        self._n = window
        self._scale = scale
        self._r2_full = r2_full
        self._xs = [float(i) for i in range(window)]
        self._xbar = (window - 1) / 2.0
        self._sxx = window * (window * window - 1) / 12.0
        self._ys: deque[float] = deque()  # the window's CVD values, relative to an anchor
        self._vols: deque[float] = deque(maxlen=window)
        self.warmup = window
        self._reset()

    def _reset(self) -> None:
        self._reset_value()
        self._ys.clear()
        self._vols.clear()
        self._count = 0
        self._y = 0.0
        self._sy = self._syy = self._sky = 0.0  # sums of y, y^2 and k*y (k = position in the window)
        self._slides = 0

    def _reanchor(self) -> None:
        # CVD drifts without bound; measuring it from the window's first value and re-summing once per window
        # length keeps the O(1) running sums free of cancellation and drift (amortised O(1)).
        base = self._ys[0]
        ys = [y - base for y in self._ys]
        self._ys = deque(ys)
        self._y -= base
        self._sy = sum(ys)
        self._syy = sum(map(mul, ys, ys))
        self._sky = sum(map(mul, self._xs, ys))
        self._slides = 0

    def update_bar(self, o, h, l, c, v, tb, ts) -> None:  # noqa: E741
        if tb is None:
            if self._count:
                self._reset()
            self._value = None
            self._reason = NO_TAKER
            self._set_initialized(False)
            return
        ys = self._ys
        n = self._n
        if self._count:
            y = self._y + (2.0 * tb - v)
            self._y = y
        else:
            y = self._y = 0.0
            self._set_has_inputs(True)
        if len(ys) == n:
            y_out = ys.popleft()
            self._sy -= y_out
            self._syy -= y_out * y_out
            self._sky -= self._sy  # every remaining value moves one position down
            ys.append(y)
            self._sy += y
            self._syy += y * y
            self._sky += (n - 1) * y
            self._slides += 1
            if self._slides >= n:
                self._reanchor()
        else:
            self._sky += len(ys) * y
            ys.append(y)
            self._sy += y
            self._syy += y * y
        self._vols.append(v)
        self._count += 1
        self._warm_at(self._count)

    def update_bars(self, bars: list) -> None:
        """Bars without taker-buy volume leave C unavailable whatever came before: one such update stands for
        all of them. With taker-buy volume, bar by bar."""
        if bars and all(b[5] is None for b in bars):
            self.update_bar(*bars[-1])
        else:
            super().update_bars(bars)

    def _compute_value(self) -> None:
        n = self._n
        sy = self._sy
        sxy = self._sky - self._xbar * sy
        syy = self._syy - sy * sy / n
        sv = sum(self._vols)
        if syy > 0.0 and sv > 0.0:
            slope = sxy / self._sxx
            r2 = sxy * sxy / (self._sxx * syy)
            damp = r2 / self._r2_full
            if damp > 1.0:
                damp = 1.0
            self._value = 100.0 * tanh(slope * n / sv / self._scale) * damp
        else:
            self._value = 0.0
