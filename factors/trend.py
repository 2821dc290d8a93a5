"""T trend: where the close sits against EMA50, how EMA12/26/50 are stacked, and the MACD histogram."""

from math import tanh

from factors.atr import WilderAtr
from factors.base import BarFactor


class TrendFactor(BarFactor):
    """T = w_dist 100 tanh((c - EMA50)/ATR / dist_scale) + w_stack stack + w_macd 100 tanh(hist/ATR /
    hist_scale).

    stack = +100 when EMA12 > EMA26 > EMA50, -100 when EMA12 < EMA26 < EMA50, else 0; hist = MACD(12, 26)
    minus its EMA9. EMAs start at the first close (pandas ewm(span=n, adjust=False)). With ATR 0 (flat
    market) the ATR-scaled parts are 0.
    """

    key = "T"
    __slots__ = (
        "_a_fast",
        "_a_mid",
        "_a_sig",
        "_a_slow",
        "_atr",
        "_close",
        "_count",
        "_dist_scale",
        "_fast",
        "_hist_scale",
        "_mid",
        "_sig",
        "_slow",
        "_w_dist",
        "_w_macd",
        "_w_stack",
    )

    def __init__(
        self,
        ema_fast: int = 12,
        ema_mid: int = 26,
        ema_slow: int = 50,
        macd_signal: int = 9,
        atr_period: int = 14,
        dist_scale_atr: float = 2.0,
        hist_scale_atr: float = 0.1,
        w_dist: float = 0.4,
        w_stack: float = 0.35,
        w_macd: float = 0.25,
    ) -> None:
        super().__init__([ema_fast, ema_mid, ema_slow, macd_signal, atr_period])
        self._a_fast = 2.0 / (ema_fast + 1)
        self._a_mid = 2.0 / (ema_mid + 1)
        self._a_slow = 2.0 / (ema_slow + 1)
        self._a_sig = 2.0 / (macd_signal + 1)
        self._atr = WilderAtr(atr_period)
        self._dist_scale = dist_scale_atr
        self._hist_scale = hist_scale_atr
        self._w_dist = w_dist
        self._w_stack = w_stack
        self._w_macd = w_macd
        self.warmup = max(ema_slow, ema_mid + macd_signal, atr_period)
        self._reset()

    def _reset(self) -> None:
        self._reset_value()
        self._atr.reset()
        self._count = 0
        self._fast = self._mid = self._slow = self._sig = 0.0
        self._close = 0.0

    def update_bar(self, o, h, l, c, v, tb, ts) -> None:  # noqa: E741
        self._atr.update(h, l, c)
        if self._count == 0:
            self._fast = self._mid = self._slow = c
            self._sig = 0.0
            self._set_has_inputs(True)
        else:
            self._fast = fast = self._fast + self._a_fast * (c - self._fast)
            self._mid = mid = self._mid + self._a_mid * (c - self._mid)
            self._slow = self._slow + self._a_slow * (c - self._slow)
            self._sig += self._a_sig * ((fast - mid) - self._sig)
        self._count += 1
        if self._warm_at(self._count):
            self._close = c

    def update_bars(self, bars: list) -> None:
        """``update_bar`` over the bars in one loop: the same arithmetic in the same order on locals."""
        if not bars:
            return
        atr = self._atr
        period, value, atr_count, pc = atr.period, atr.value, atr.count, atr._prev_close
        a_fast, a_mid, a_slow, a_sig = self._a_fast, self._a_mid, self._a_slow, self._a_sig
        fast, mid, slow, sig = self._fast, self._mid, self._slow, self._sig
        count = self._count
        if count == 0:
            self._set_has_inputs(True)
        c = 0.0
        for _o, h, l, c, _v, _tb, _ts in bars:  # noqa: E741
            if atr_count == 0:
                value = h - l
            else:
                tr = max(h - l, abs(h - pc), abs(l - pc))
                value += (tr - value) / period
            pc = c
            atr_count += 1
            if count == 0:
                fast = mid = slow = c
                sig = 0.0
            else:
                fast = fast + a_fast * (c - fast)
                mid = mid + a_mid * (c - mid)
                slow = slow + a_slow * (c - slow)
                sig += a_sig * ((fast - mid) - sig)
            count += 1
        atr.value, atr.count, atr._prev_close = value, atr_count, pc
        self._fast, self._mid, self._slow, self._sig = fast, mid, slow, sig
        self._count = count
        if self._warm_at(count):
            self._close = c

    def _compute_value(self) -> None:
        fast, mid, slow, c = self._fast, self._mid, self._slow, self._close
        atr = self._atr.value  # updated by this factor only: still the value of the last bar
        if fast > mid > slow:
            stack = 100.0
        elif fast < mid < slow:
            stack = -100.0
        else:
            stack = 0.0
        if atr > 0.0:
            dist = tanh((c - slow) / atr / self._dist_scale)
            macd = tanh(((fast - mid) - self._sig) / atr / self._hist_scale)
        else:
            dist = macd = 0.0
        self._value = 100.0 * (self._w_dist * dist + self._w_macd * macd) + self._w_stack * stack

    @property
    def atr(self) -> float:
        return self._atr.value

    @property
    def atr_state(self) -> WilderAtr:
        """The ATR this factor updates on every bar; S and F can share it instead of computing their own."""
        return self._atr
