"""F fund-leading (modulator): whether money flow leads price."""

from collections import deque
from math import sqrt, tanh

from factors.atr import WilderAtr
from factors.base import BarFactor
from factors.timed import AsOf


class FundLeadingFactor(BarFactor):
    """F = 100 tanh((flow - price_mom) / flow_scale), over the last ``window`` bars.

    price_mom = 100 tanh((c_t - c_{t-n}) / (ATR sqrt(n)) / price_scale).
    flow = mean of the flow components available:
      volume flow = 100 tanh(sum(sign(c - o) v) / sum(v) / frac_scale)  (always: signed volume)
      CVD flow    = 100 tanh(sum(2 taker_buy - v) / sum(v) / frac_scale) (bars with taker-buy volume)
      OI flow     = sign(c_t - c_{t-n}) 100 tanh(dOI% / oi_scale_pct), OI now vs OI at the bar t-n (OI feed)
    Positive F: flow is more bullish than price has moved yet (flow leads up); negative: price ran ahead of
    flow, or flow leads down. ``components`` tells which flows were live.
    """

    key = "F"
    __slots__ = (
        "_atr",
        "_bar_atr",
        "_closes",
        "_components",
        "_count",
        "_deltas",
        "_flow_scale",
        "_frac",
        "_n",
        "_oi",
        "_oi_flow",
        "_oi_scale",
        "_ois",
        "_own_atr",
        "_price_den",
        "_signed",
        "_ts",
        "_vols",
    )

    def __init__(
        self,
        window: int = 12,
        atr_period: int = 14,
        flow_scale: float = 20.0,
        price_scale: float = 3.0,
        frac_scale: float = 1.0,
        oi_scale_pct: float = 2.0,
        shared_atr: WilderAtr | None = None,
    ) -> None:
        """``shared_atr``: an ATR another factor of the same bars updates first (the FactorBook shares
        T's)."""
        super().__init__([window, flow_scale])
        self._n = window
        self._own_atr = shared_atr is None
        self._atr = WilderAtr(atr_period) if shared_atr is None else shared_atr
        self._flow_scale = flow_scale
        self._price_den = sqrt(window) * price_scale
        self._frac = frac_scale
        self._oi_scale = oi_scale_pct
        self._closes: deque[float] = deque(maxlen=window + 1)
        self._ts: deque[int] = deque(maxlen=window + 1)
        self._vols: deque[float] = deque(maxlen=window)
        self._signed: deque[float] = deque(maxlen=window)
        self._deltas: deque[float] = deque(maxlen=window)
        self._ois = AsOf()
        self.warmup = max(window, atr_period) + 1
        self._reset()

    def _reset(self) -> None:
        self._reset_value()
        if self._own_atr:
            self._atr.reset()
        for d in (self._closes, self._ts, self._vols, self._signed, self._deltas):
            d.clear()
        self._ois.clear()
        self._oi: float | None = None
        self._count = 0
        self._components: tuple[str, ...] = ()
        self._bar_atr = 0.0
        self._oi_flow: float | None = None

    def update_oi(self, ts: int, oi: float) -> None:
        self._oi = oi
        self._ois.add(ts, oi)

    def update_bar(self, o, h, l, c, v, tb, ts) -> None:  # noqa: E741
        atr = self._atr.update(h, l, c) if self._own_atr else self._atr.value
        self._closes.append(c)
        self._ts.append(ts)
        self._vols.append(v)
        self._signed.append(v if c > o else (-v if c < o else 0.0))
        if tb is None:
            self._deltas.clear()
        else:
            self._deltas.append(2.0 * tb - v)
        self._count += 1
        if self._count == 1:
            self._set_has_inputs(True)
        if self._warm_at(self._count):
            self._bar_atr = atr
            # the OI flow is taken now: an OI update before the value is read must not change this bar's F
            self._oi_flow = None if self._oi is None else self._oi_flow_now(c - self._closes[0])

    def update_bars(self, bars: list) -> None:
        """``update_bar`` over the bars: F keeps its windows and, at the last bar, the ATR and the OI flow (the
        open interest cannot change between these bars: the book brings F up to date before it takes OI)."""
        if not bars:
            return
        if self._own_atr:
            update_atr = self._atr.update
            for _o, h, l, c, _v, _tb, _ts in bars:  # noqa: E741
                atr = update_atr(h, l, c)
        else:
            atr = self._atr.value  # the sharer went through the same bars first
        recent = bars[-self._closes.maxlen :]  # type: ignore[operator]
        self._closes.extend([b[3] for b in recent])
        self._ts.extend([b[6] for b in recent])
        self._vols.extend([b[4] for b in recent])
        self._signed.extend([v if c > o else (-v if c < o else 0.0) for o, _h, _l, c, v, _tb, _ts in recent])
        deltas = self._deltas
        for _o, _h, _l, _c, v, tb, _ts in bars:
            if tb is None:
                deltas.clear()
            else:
                deltas.append(2.0 * tb - v)
        if self._count == 0:
            self._set_has_inputs(True)
        self._count += len(bars)
        if self._warm_at(self._count):
            self._bar_atr = atr
            self._oi_flow = None if self._oi is None else self._oi_flow_now(self._closes[-1] - self._closes[0])

    def _oi_flow_now(self, move: float) -> float | None:
        oi_then = self._ois.at(self._ts[0])
        if oi_then is None or not oi_then > 0.0:
            return None
        sign = 1.0 if move > 0.0 else (-1.0 if move < 0.0 else 0.0)
        return sign * 100.0 * tanh((self._oi / oi_then - 1.0) * 100.0 / self._oi_scale)

    @property
    def components(self) -> tuple[str, ...]:
        """The flows in the last value: "volume", "cvd", "oi"."""
        if self._outdated:
            self._outdated = False
            self._compute_value()
        return self._components

    def _compute_value(self) -> None:
        atr = self._bar_atr
        move = self._closes[-1] - self._closes[0]
        price_mom = 100.0 * tanh(move / atr / self._price_den) if atr > 0.0 else 0.0
        sv = sum(self._vols)
        total = 0.0
        k = 0
        comps = []
        if sv > 0.0:
            total += 100.0 * tanh(sum(self._signed) / sv / self._frac)
            k += 1
            comps.append("volume")
            if len(self._deltas) == self._n:
                total += 100.0 * tanh(sum(self._deltas) / sv / self._frac)
                k += 1
                comps.append("cvd")
        if self._oi_flow is not None:
            total += self._oi_flow
            k += 1
            comps.append("oi")
        flow = total / k if k else 0.0
        self._components = tuple(comps)
        self._value = 100.0 * tanh((flow - price_mom) / self._flow_scale)
