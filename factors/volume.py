"""V volume: how unusual this bar's volume is, and whether it is a trigger candle, signed by the candle."""

from collections import deque
from math import sqrt, tanh
from operator import mul

from factors.base import BarFactor


class VolumeFactor(BarFactor):
    """V = dir x (w_z tanh(max(z, 0) / z_scale) + w_trigger x trigger).

    z = (volume - mean) / std over the ``window`` bars BEFORE this one (population std; 0 when std is 0).
    trigger = 1 when the body |c - o| >= body x (h - l) with h > l, and volume >= mult x mean with volume > 0.
    dir = +1 for a green candle, -1 for a red one, 0 for a doji: heavy volume on a falling candle is
    bearish (the original scored all volume as bullish).
    """

    key = "V"
    __slots__ = (
        "_bar",
        "_body",
        "_count",
        "_mult",
        "_n",
        "_vols",
        "_w_trig",
        "_w_z",
        "_z_scale",
    )

    def __init__(
        self,
        window: int = 20,
        z_scale: float = 2.0,
        trigger_body: float = 0.6,
        trigger_mult: float = 1.5,
        w_z: float = 60.0,
        w_trigger: float = 40.0,
    ) -> None:
        super().__init__([window])
        self._n = window
        self._z_scale = z_scale
        self._body = trigger_body
        self._mult = trigger_mult
        self._w_z = w_z
        self._w_trig = w_trigger
        self._vols: deque[float] = deque(maxlen=window + 1)  # the window before the last bar, and its volume
        self.warmup = window + 1
        self._reset()

    def _reset(self) -> None:
        self._reset_value()
        self._vols.clear()
        self._count = 0

    def update_bar(self, o, h, l, c, v, tb, ts) -> None:  # noqa: E741
        self._count += 1
        self._vols.append(v)
        if self._count == 1:
            self._set_has_inputs(True)
        if self._warm_at(self._count):
            self._bar = (o, h, l, c)

    def update_bars(self, bars: list) -> None:
        """``update_bar`` over the bars: V keeps the volumes of its window and the last bar."""
        if not bars:
            return
        if self._count == 0:
            self._set_has_inputs(True)
        self._count += len(bars)
        self._vols.extend([b[4] for b in bars[-self._vols.maxlen :]])  # type: ignore[operator]
        if self._warm_at(self._count):
            o, h, l, c = bars[-1][:4]  # noqa: E741
            self._bar = (o, h, l, c)

    def _compute_value(self) -> None:
        o, h, l, c = self._bar  # noqa: E741
        vols = self._vols
        v = vols.pop()  # the window is the bars before this one: the same floats summed in the same order
        try:
            n = self._n
            mean = sum(vols) / n
            var = sum(map(mul, vols, vols)) / n - mean * mean
        finally:
            vols.append(v)
        std = sqrt(var) if var > 0.0 else 0.0
        z = (v - mean) / std if std > 0.0 else 0.0
        d = 1.0 if c > o else (-1.0 if c < o else 0.0)
        if d == 0.0:
            self._value = 0.0
        else:
            s = self._w_z * tanh(z / self._z_scale) if z > 0.0 else 0.0
            rng = h - l
            if rng > 0.0 and v > 0.0 and abs(c - o) >= self._body * rng and v >= self._mult * mean:
                s += self._w_trig
            self._value = d * s
