"""C cumulative volume delta: the trend of net taker buying, from BinanceBar taker-buy volume."""

from collections import deque
from itertools import accumulate
from math import tanh
from operator import mul

from factors.base import BarFactor

NO_TAKER = "bars carry no taker-buy volume (plain Bar, not BinanceBar): CVD not available"


class CvdFactor(BarFactor):
    """C = 100 tanh(slope / mean_volume / scale) x min(1, R^2 / r2_full).

    delta = 2 taker_buy - volume per bar; CVD = its running sum. slope and R^2 come from the
    least-squares line
    through the last ``window`` CVD values against the bar index; mean_volume is the mean volume of the same
    bars, so slope / mean_volume is the net taker share per bar. Poor fits (R^2 < r2_full) are damped.
    A window with constant CVD or no volume gives 0. Not available on bars without taker-buy volume.
    """

    key = "C"

    def __init__(self, window: int = 20, scale: float = 0.2, r2_full: float = 0.5) -> None:
        super().__init__([window])
        self._n = window
        self._scale = scale
        self._r2_full = r2_full
        self._xs = [float(i) for i in range(window)]
        self._xbar = (window - 1) / 2.0
        self._sxx = window * (window * window - 1) / 12.0
        self._deltas: deque[float] = deque(maxlen=window - 1)
        self._vols: deque[float] = deque(maxlen=window)
        self.warmup = window
        self._reset()

    def _reset(self) -> None:
        self._reset_value()
        self._deltas.clear()
        self._vols.clear()
        self._count = 0

    def update_bar(self, o, h, l, c, v, tb, ts) -> None:  # noqa: E741
        if tb is None:
            if self._count:
                self._reset()
            self._value = None
            self._reason = NO_TAKER
            self._set_initialized(False)
            return
        if self._count:
            self._deltas.append(2.0 * tb - v)
        else:
            self._set_has_inputs(True)
        self._vols.append(v)
        self._count += 1
        if self._count < self._n:
            self._reason = f"warming up: {self._count}/{self._n} bars"
            return
        # CVD relative to the window's first bar: slope and R^2 do not depend on the level, and small numbers
        # keep the one-pass sums exact enough.
        ys = [0.0, *accumulate(self._deltas)]
        n = self._n
        sy = sum(ys)
        sxy = sum(map(mul, self._xs, ys)) - self._xbar * sy
        syy = sum(map(mul, ys, ys)) - sy * sy / n
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
        if self._reason is not None:
            self._reason = None
            self._set_initialized(True)
