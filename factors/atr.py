"""Wilder's average true range, incrementally: the volatility unit several factors measure distances in."""


class WilderAtr:
    """ATR_0 = high - low of the first bar; then ATR += (TR - ATR) / period (pandas ewm(alpha=1/n,
    adjust=False))."""

    __slots__ = ("period", "value", "count", "_prev_close")

    def __init__(self, period: int) -> None:
        self.period = period
        self.value = 0.0
        self.count = 0
        self._prev_close = 0.0

    def update(self, h: float, l: float, c: float) -> float:  # noqa: E741
        if self.count == 0:
            self.value = h - l
        else:
            pc = self._prev_close
            tr = max(h - l, abs(h - pc), abs(l - pc))
            self.value += (tr - self.value) / self.period
        self._prev_close = c
        self.count += 1
        return self.value

    def reset(self) -> None:
        self.value = 0.0
        self.count = 0
        self._prev_close = 0.0
