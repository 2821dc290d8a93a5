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
    __slots__ = (
        "_atr",
        "_bar_atr",
        "_cap",
        "_close",
        "_count",
        "_highs",
        "_hmax",
        "_lmin",
        "_lows",
        "_n",
        "_own_atr",
        "_wall_down",
        "_wall_up",
    )

    def __init__(
        self,
        window: int = 50,
        atr_period: int = 14,
        cap_atr: float = 3.0,
        shared_atr: WilderAtr | None = None,
    ) -> None:
        """``shared_atr``: an ATR another factor of the same bars updates first (the FactorBook shares
        T's)."""
        super().__init__([window, atr_period, cap_atr])
        self._n = window
        self._cap = cap_atr
        self._own_atr = shared_atr is None
        self._atr = WilderAtr(atr_period) if shared_atr is None else shared_atr
        self._highs: deque[float] = deque(maxlen=window)
        self._lows: deque[float] = deque(maxlen=window)
        self.warmup = max(window, atr_period) + 1
        self._reset()

    def _reset(self) -> None:
        self._reset_value()
        if self._own_atr:
            self._atr.reset()
        self._highs.clear()
        self._lows.clear()
        self._count = 0
        # running extremes of the window; rescanned only when the extreme itself leaves it
        self._hmax = float("-inf")
        self._lmin = float("inf")
        self._close = self._wall_up = self._wall_down = self._bar_atr = 0.0

    def update_bar(self, o, h, l, c, v, tb, ts) -> None:  # noqa: E741
        atr = self._atr.update(h, l, c) if self._own_atr else self._atr.value
        self._count += 1
        if self._count == 1:
            self._set_has_inputs(True)
        if self._warm_at(self._count):
            # the walls of the window before this bar, as they are before this bar joins it
            self._close, self._wall_up, self._wall_down, self._bar_atr = c, self._hmax, self._lmin, atr
        highs, lows = self._highs, self._lows
        full = len(highs) == self._n
        h_out = highs[0] if full else h
        l_out = lows[0] if full else l
        highs.append(h)
        lows.append(l)
        if h >= self._hmax:
            self._hmax = h
        elif h_out == self._hmax:
            self._hmax = max(highs)
        if l <= self._lmin:
            self._lmin = l
        elif l_out == self._lmin:
            self._lmin = min(lows)

    def update_bars(self, bars: list) -> None:
        """``update_bar`` over the bars. The running extremes always equal the max / min of the window (they are
        exact), so the walls before the last bar are the extremes of the window the earlier bars leave."""
        if not bars:
            return
        if self._own_atr:
            update_atr = self._atr.update
            for _o, h, l, c, _v, _tb, _ts in bars:  # noqa: E741
                atr = update_atr(h, l, c)
        else:
            atr = self._atr.value  # the sharer went through the same bars first
        if self._count == 0:
            self._set_has_inputs(True)
        self._count += len(bars)
        highs, lows = self._highs, self._lows
        window = self._n
        earlier = bars[-window - 1 : -1]
        if earlier:
            highs.extend([b[1] for b in earlier])
            lows.extend([b[2] for b in earlier])
            self._hmax, self._lmin = max(highs), min(lows)
        _o, h, l, c = bars[-1][:4]  # noqa: E741
        if self._warm_at(self._count):
            self._close, self._wall_up, self._wall_down, self._bar_atr = c, self._hmax, self._lmin, atr
        highs.append(h)
        lows.append(l)
        self._hmax, self._lmin = max(highs), min(lows)

    def _compute_value(self) -> None:
        atr = self._bar_atr
        if atr > 0.0:
            cap, c, r, p = self._cap, self._close, self._wall_up, self._wall_down
            up = (r - c) / atr if c <= r else cap
            dn = (c - p) / atr if c >= p else cap
            up = 0.0 if up < 0.0 else (cap if up > cap else up)
            dn = 0.0 if dn < 0.0 else (cap if dn > cap else dn)
            self._value = 100.0 * (up - dn) / cap
        else:
            self._value = 0.0
