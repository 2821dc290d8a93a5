"""What to do when a trade's stop is gone: place it again, or close the position at market.

A position must never stay without a stop. When the venue refuses the stop (rejected, or denied before it left),
the refusal may be passing (a rate limit, a busy matching engine, a lost request): the same stop is placed again,
at most ``STOP_RETRIES`` times in a row, at once. Two refusals wait instead, through ``guard_action`` after a
wait (``retry.RetryPolicy.wait_s``): one that names its end (a 418 ban: nothing can be sent before it, the stop is
placed again then, not counted as a try), and one met while a stop the new one replaces still works (a break-even
or dynamic move: the position stays protected by the old stop, over-sized or wider, so it is never closed for
it; the new stop is tried again until it is accepted). When the stop's trigger is already through the market (a
break-even stop after a fast reversal: Binance answers -2021 "would immediately trigger"), placing it again cannot
work, and the stop would have closed the position anyway: close it at market. A stop cancelled or expired by
someone else is not ours to fight over: the position is closed at market. Nothing is done while the strategy is
already closing the position itself.

When that is refused too (the close at market, or the cancel of a stop being replaced or of an exit left by a
closed trade), ``guard_action`` says what the symbol needs next, from what the node holds now; the strategy asks
it again after each wait of ``retry.RetryPolicy`` until the position is protected by its one stop and no other
exit rests beside it, or it is closed with no exit left behind.
"""

from dataclasses import dataclass
from enum import Enum

from strategies.exits import side_sign

# Two more tries cost two round trips (a fraction of a second live) and ride out a passing refusal; a refusal
# that survives them is not passing, and the position has been without a stop for too long already.
STOP_RETRIES = 2

# How a venue says the trigger is already through the market: Binance, and Nautilus's simulated exchange.
THROUGH_MARKET_MARKERS = ("-2021", "immediately trigger", "was in the market")


# How a venue says an order it was asked to cancel is no longer there (filled, expired or cancelled already):
# nothing to try again; the order's state is asked for, and the cache follows.
ORDER_GONE_MARKERS = ("-2011", "Unknown order")


def order_gone(reason: str) -> bool:
    """A refused cancel whose order the venue no longer holds."""
    return any(m in reason for m in ORDER_GONE_MARKERS)


class StopAction(Enum):
    NONE = "NONE"  # the strategy is closing the position itself
    RETRY = "RETRY"  # place the same stop again, now
    RETRY_LATER = "RETRY_LATER"  # place it again after a wait (a ban's end; the old stop still covers meanwhile)
    CLOSE = "CLOSE"  # close the position at market


def stop_through_market(direction: str, trigger: float, price: float | None) -> bool:
    """A stop at ``trigger`` would fire at once at ``price`` (a long's stop at or above it); False when the
    price is unknown."""
    return price is not None and (trigger - price) * side_sign(direction) >= 0


def after_stop_lost(
    why: str,
    direction: str,
    trigger: float,
    price: float | None,
    retries: int,
    closing: bool,
    covered: bool = False,
    banned: bool = False,
) -> StopAction:
    """The answer to a trade's working stop being gone.

    ``why`` is how it went: "rejected: <reason>", "denied: <reason>", "canceled" or "expired"; ``price`` the
    last known price; ``retries`` how many times in a row this stop was already placed again; ``closing``
    whether the strategy itself is closing the position at market (flatten, dynamic exit, an earlier close);
    ``covered`` whether a stop the refused one was to replace still works (the position keeps a stop);
    ``banned`` whether the refusal names a ban's end (``retry.banned_until_ms``).
    """
    if closing:
        return StopAction.NONE
    refused = why.startswith(("rejected", "denied"))
    through = stop_through_market(direction, trigger, price) or any(m in why for m in THROUGH_MARKET_MARKERS)
    if not refused or through:
        return StopAction.CLOSE
    if covered or banned:
        return StopAction.RETRY_LATER
    return StopAction.RETRY if retries < STOP_RETRIES else StopAction.CLOSE


class GuardAction(Enum):
    DONE = "DONE"  # closed with no exit left behind, or protected by its one working stop
    WAIT = "WAIT"  # an order of the symbol is on its way (sent, or being cancelled): look again later
    PLACE_STOP = "PLACE_STOP"  # no working stop: place the trade's stop again
    CLOSE = "CLOSE"  # close at market (the strategy wants out, or the stop would fire at once)
    CANCEL_STALE = "CANCEL_STALE"  # the stops the working one replaced, or exits of a closed trade, must go
    PLACE_TARGETS = "PLACE_TARGETS"  # a take-profit the exchange refused: place it again


@dataclass(frozen=True)
class GuardView:
    """A symbol's protection as the node holds it now (a flat symbol: ``position_open`` False)."""

    position_open: bool
    closing: bool  # the strategy wants the position closed at market (a refused stop, a dynamic exit, flatten)
    stop_working: bool  # the trade's current stop is accepted by the venue and not being cancelled
    in_flight: bool  # an order of the symbol was sent and not answered yet, or a cancel is pending
    stale: int  # reduce-only orders still working that no exit of the open trade needs (replaced stops, left-overs)
    stop_through_market: bool  # the current stop's trigger is already through the last price
    targets_missing: bool = False  # a take-profit of the trade was refused and is not working


def guard_action(view: GuardView) -> GuardAction:
    """What a symbol needs so that its position ends protected by exactly one stop, or closed, with no other
    reduce-only order resting beside it (one left over would close or flip the next position)."""
    if view.in_flight:
        return GuardAction.WAIT
    if not view.position_open:
        return GuardAction.CANCEL_STALE if view.stale else GuardAction.DONE
    if view.closing:
        return GuardAction.CLOSE
    if not view.stop_working:
        return GuardAction.CLOSE if view.stop_through_market else GuardAction.PLACE_STOP
    if view.stale:
        return GuardAction.CANCEL_STALE
    if view.targets_missing:
        return GuardAction.PLACE_TARGETS
    return GuardAction.DONE
