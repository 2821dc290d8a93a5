"""S structure: room to run before the nearest swing wall, measured in ATRs."""

from collections import deque

from factors.atr import WilderAtr
from factors.base import BarFactor


class StructureFactor(BarFactor):
    """S = 100 (room_up - room_down) / cap.

    Resistance R = highest high and support P = lowest low of the ``window`` bars BEFORE this one.
    room_up = (R - c) / ATR clipped to [0, cap] (cap when c > R: a breakout has no wall above);
    room_down = (c - P) / ATR clipped to [0, cap] (cap when c < P). Near resistance with support far below is
    bearish (no room up), the mirror bullish; far from both walls (>= cap ATRs) is neutral. ATR 0 gives 0.
    """

    key = "S"

    def __init__(self, window: int = 50, atr_period: int = 14, cap_atr: float = 3.0) -> None:
        super().__init__([window, atr_period, cap_atr])
        self._n = window
        self._cap = cap_atr
        self._atr = WilderAtr(atr_period)
        self._highs: deque[float] = deque(maxlen=window)
        self._lows: deque[float] = deque(maxlen=window)
        self.warmup = max(window, atr_period) + 1
        self._reset()

    def _reset(self) -> None:
        self._reset_value()
        self._atr.reset()
        self._highs.clear()
        self._lows.clear()
        self._count = 0

    def update_bar(self, o, h, l, c, v, tb, ts) -> None:  # noqa: E741
        atr = self._atr.update(h, l, c)
        self._count += 1
        if self._count == 1:
            self._set_has_inputs(True)
        if self._count >= self.warmup:
            cap = self._cap
            if atr > 0.0:
                r = max(self._highs)
                p = min(self._lows)
                up = (r - c) / atr if c <= r else cap
                dn = (c - p) / atr if c >= p else cap
                up = 0.0 if up < 0.0 else (cap if up > cap else up)
                dn = 0.0 if dn < 0.0 else (cap if dn > cap else dn)
                self._value = 100.0 * (up - dn) / cap
            else:
                self._value = 0.0
            if self._reason is not None:
                self._reason = None
                self._set_initialized(True)
        else:
            self._reason = f"warming up: {self._count}/{self.warmup} bars"
        self._highs.append(h)
        self._lows.append(l)
