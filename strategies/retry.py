"""How often to try again after the exchange refused something that must not stay undone.

A position without its stop, a close at market the exchange refused, an old stop that would not go, a user data
stream that would not come back: each is tried again, first quickly (a refusal is often passing: a busy
matching engine, a 429, a short ban window), then, once the quick tries are spent, at a slow steady pace for as
long as it takes. Giving up silently is never an option: when the quick tries are spent, and every so often
after, the trader is told (``alert_due``), with what to do by hand. A refusal that names its end (Binance's 418
"IP banned until <ms>", and the node's own weight budget refusing to send during the ban) is not tried again
before that end: every try would be refused, and tries during a ban make Binance ban longer (``wait_s``).
"""

import re
from dataclasses import dataclass

_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")
# After a ban's end: the exchange's clock and ours may differ by a little.
BAN_MARGIN_S = 0.25


def banned_until_ms(reason: str) -> int | None:
    """The end of the IP ban a refusal names (epoch ms), or None."""
    found = _BANNED_UNTIL.search(reason)
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class RetryPolicy:
    """``delays_s``: the waits before the quick tries, doubling (about 15 s in all, longer than a 429's
    Retry-After and most ban windows); ``slow_s``: the wait between the tries after them; ``alert_every``:
    slow tries between two alerts after the first (10 x 30 s: a reminder every five minutes)."""

    delays_s: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    slow_s: float = 30.0
    alert_every: int = 10

    def delay_s(self, failures: int) -> float:
        """The wait before the next try after ``failures`` (>= 1) failed ones in a row."""
        if failures < 1:
            return 0.0
        return self.delays_s[failures - 1] if failures <= len(self.delays_s) else self.slow_s

    def wait_s(self, failures: int, reason: str, now_ms: int) -> float:
        """The wait before the next try after ``failures`` refusals in a row, the last one for ``reason``: the
        policy's delay, or until the end of the ban the reason names, whichever is later."""
        delay = self.delay_s(failures)
        until = banned_until_ms(reason)
        if until is not None:
            delay = max(delay, (until - now_ms) / 1000 + BAN_MARGIN_S)
        return delay

    def alert_due(self, failures: int) -> bool:
        """Tell the trader now: the quick tries are spent (``failures`` = their number), and every
        ``alert_every`` failures after that."""
        bound = len(self.delays_s)
        return failures >= bound and (failures - bound) % self.alert_every == 0

    def exhausted(self, failures: int) -> bool:
        """The quick tries are spent: from now on the slow pace."""
        return failures >= len(self.delays_s)


DEFAULT_RETRY = RetryPolicy()
