"""Q liquidations: which side has been liquidated in the recent window."""

from collections import deque

from factors.base import FactorIndicator

NO_STREAM = (
    "no liquidation stream connected (backtest data has none; live: nodes/live/liquidations.py, docs/factors.md)"
)


def liquidation_side(side: object) -> int:
    """+1 when a LONG was liquidated (the forced order SELLs), -1 when a short was (it BUYs).

    Accepts a Nautilus ``OrderSide`` or the strings "SELL"/"BUY" of Binance's forceOrder ``S`` field.
    """
    name = getattr(side, "name", side)
    if name == "SELL":
        return 1
    if name == "BUY":
        return -1
    raise ValueError(f"liquidation side must be OrderSide.BUY/SELL or 'BUY'/'SELL' (forced order side), got {side!r}")


class LiquidationFactor(FactorIndicator):
    """Q = 100 (long_liq - short_liq) / (long_liq + short_liq), notional (qty x price) over ``window_ns``.

    Available once the feed is declared live (``set_feed_live``) or a liquidation arrived; a live feed with no
    liquidation in the window gives 0 (a real reading, not a missing one).
    """

    key = "Q"
    __slots__ = (
        "_events",
        "_long",
        "_short",
        "_window",
        "live",
    )

    def __init__(self, window_ns: int) -> None:
        super().__init__([window_ns])
        self._window = window_ns
        self._events: deque[tuple[int, float, float]] = deque()
        self._reset()

    def _reset(self) -> None:
        self._value = None
        self._reason = NO_STREAM
        self._events.clear()
        self._long = 0.0
        self._short = 0.0
        self.live = False

    def set_feed_live(self, live: bool = True) -> None:
        self.live = live
        if not live:
            self._value = None
            self._reason = NO_STREAM

    def update_liquidation(self, ts: int, side: object, qty: float, price: float) -> None:
        s = liquidation_side(side)
        notional = qty * price
        if not notional >= 0.0:
            raise ValueError(f"liquidation qty x price must be >= 0, got {qty} x {price}")
        long_n = notional if s > 0 else 0.0
        short_n = notional if s < 0 else 0.0
        self._events.append((ts, long_n, short_n))
        self._long += long_n
        self._short += short_n
        self.live = True
        self._set_has_inputs(True)
        self.advance(ts)

    def advance(self, now: int) -> None:
        """Expire liquidations older than the window and recompute (call on every bar)."""
        if not self.live:
            return
        ev = self._events
        cutoff = now - self._window
        dropped = False
        while ev and ev[0][0] <= cutoff:
            _, ln, sn = ev.popleft()
            dropped = True
        if dropped:
            # exact re-sum: the window holds few events, and it keeps subtraction drift out of the ratio
            self._long = sum(e[1] for e in ev)
            self._short = sum(e[2] for e in ev)
        total = self._long + self._short
        self._value = 100.0 * (self._long - self._short) / total if total > 0.0 else 0.0
        self._reason = None
        self._set_initialized(True)
