"""Funding paid or received by a position: the payment at one funding time, and (live) when a funding time
has passed according to Binance's mark-price stream."""

from collections.abc import Hashable


def funding_payment(signed_qty: float, mark: float, rate: float) -> float:
    """What the holder pays (positive) or receives (negative) at one funding time."""
    return signed_qty * mark * rate


class FundingClock:
    """Live: tells when a funding time has passed, from Binance's mark-price stream.

    Each update carries the current rate and the next funding time; when the next funding time moves forward,
    the funding of the time just passed was settled at the last rate seen before it.
    """

    def __init__(self) -> None:
        self._next: dict[Hashable, int] = {}
        self._rate: dict[Hashable, float] = {}

    def update(self, instrument: Hashable, rate: float, next_funding_ns: int) -> float | None:
        """The rate just settled, or None when no funding time has passed since the last update. ``instrument``:
        any key of the instrument (the strategy passes its ``InstrumentId``, once per mark-price message)."""
        settled = None
        previous = self._next.get(instrument)
        if previous is not None and next_funding_ns > previous:
            settled = self._rate.get(instrument)
        self._next[instrument] = next_funding_ns
        self._rate[instrument] = rate
        return settled
