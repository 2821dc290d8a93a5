"""Time-indexed lookups for event data (OI, prices): "the latest value at or before time t" as t advances."""

from collections import deque


class AsOf:
    """Keeps (ts, value) observations so that ``at(cutoff)`` returns the latest value with ts <= cutoff.

    Cutoffs must not go backwards (they follow the clock); each observation is dropped once a newer one is
    also at or before the cutoff, so memory stays at the look-back span.
    """

    __slots__ = ("_obs",)

    def __init__(self) -> None:
        self._obs: deque[tuple[int, float]] = deque()

    def add(self, ts: int, value: float) -> None:
        self._obs.append((ts, value))

    def at(self, cutoff: int) -> float | None:
        obs = self._obs
        while len(obs) > 1 and obs[1][0] <= cutoff:
            obs.popleft()
        if obs and obs[0][0] <= cutoff:
            return obs[0][1]
        return None

    def clear(self) -> None:
        self._obs.clear()


class WindowMean:
    """Mean of the observations with ts in (now - span, now]; exact sums recomputed when the window
    empties."""

    __slots__ = ("_span", "_obs", "_sum")

    def __init__(self, span_ns: int) -> None:
        self._span = span_ns
        self._obs: deque[tuple[int, float]] = deque()
        self._sum = 0.0

    def add(self, ts: int, value: float) -> None:
        self._obs.append((ts, value))
        self._sum += value

    def mean(self, now: int) -> float | None:
        obs = self._obs
        cutoff = now - self._span
        dropped = False
        while obs and obs[0][0] <= cutoff:
            self._sum -= obs.popleft()[1]
            dropped = True
        if not obs:
            self._sum = 0.0
            return None
        if dropped:
            # Re-summing after a drop keeps the running sum free of cancellation drift; drops are rare
            # (one per OI poll), so this stays cheap.
            self._sum = sum(v for _, v in obs)
        return self._sum / len(obs)

    def clear(self) -> None:
        self._obs.clear()
        self._sum = 0.0
