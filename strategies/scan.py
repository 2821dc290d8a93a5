"""When the strategy scans: once per scan time, when every symbol's bar for it is in or a grace period later.

``ScanClock`` is plain state with no engine: the strategy tells it each bar and asks whether a scan is due; the
time alert that ends the grace period is the strategy's (a Nautilus clock alert).
"""

from enum import StrEnum
from typing import NamedTuple

from nautilus_trader.common.config import NautilusConfig, NonNegativeInt, PositiveInt
from nautilus_trader.model.identifiers import InstrumentId

NANOS_PER_MINUTE = 60_000_000_000
NANOS_PER_SECOND = 1_000_000_000


class ScanEntries(StrEnum):
    """Which scans may open trades. Every scan manages the open trades; manual signals are always heard."""

    EVERY_SCAN = "EVERY_SCAN"
    FIRST_SCAN = "FIRST_SCAN"  # one scan with entries at the first bars after start (live ``--scan-once``)
    NONE = "NONE"  # scans only manage open trades: entries come from manual signals


class ScanConfig(NautilusConfig, frozen=True):
    interval_minutes: PositiveInt = 60  # scan when a bar closes on this boundary
    # When some symbols' bars for a scan time have not arrived this long after it, scan without them (live).
    grace_ms: NonNegativeInt = 3_000
    entries: ScanEntries = ScanEntries.EVERY_SCAN


def scan_time(ts_event: int) -> int:
    """The scan time a bar names: its close time rounded to the second.

    Live Binance klines are stamped at close_time = open + interval - 1 ms, catalogued ones at the round close:
    both name the same scan time once rounded.
    """
    return (ts_event + NANOS_PER_SECOND // 2) // NANOS_PER_SECOND * NANOS_PER_SECOND


class ScanStep(NamedTuple):
    """What a bar means for the scan: a new scan time began (set its grace alert), and whether to scan now.

    A tuple: with a scan every minute there is one per bar, and a frozen dataclass costs several times more
    to build."""

    ts: int
    new_scan_time: bool
    scan_now: bool


class ScanClock:
    def __init__(self, config: ScanConfig, symbols: int) -> None:
        self.config = config
        self.symbols = symbols
        self.scans = 0
        self.last_scan_ts = -1
        self.pending_ts = -1
        self._seen: set[InstrumentId] = set()
        self._interval_ns = config.interval_minutes * NANOS_PER_MINUTE
        self._first_scan_only = config.entries == ScanEntries.FIRST_SCAN

    def on_bar(self, instrument_id: InstrumentId, ts_event: int) -> ScanStep | None:
        """None when the bar is not a scan bar; else whether it opens a scan time and completes it."""
        ts = scan_time(ts_event)
        if ts <= self.last_scan_ts or not (ts % self._interval_ns == 0 or (self._first_scan_only and not self.scans)):
            return None
        new = ts != self.pending_ts
        if new:
            self.pending_ts = ts
            self._seen = set()
        self._seen.add(instrument_id)
        return ScanStep(ts, new and self.symbols > 1, len(self._seen) >= self.symbols)

    def quiet_stamps(self, ts: int) -> tuple[int, int]:
        """After ``on_bar`` for a bar of scan time ``ts``: the bar stamps (``ts_event``) from, until (exclusive)
        whose bars ``on_bar`` returns None for, now and later (scans only move on), so a caller may skip it for
        them. Empty while ``ts`` itself waits for its scan, and before the one scan of ``FIRST_SCAN``."""
        if (self._first_scan_only and not self.scans) or (ts % self._interval_ns == 0 and ts > self.last_scan_ts):
            return 0, 0
        # every scan time from ts to the next boundary; scan_time rounds a stamp half a second up
        return ts - NANOS_PER_SECOND // 2, (ts // self._interval_ns + 1) * self._interval_ns - NANOS_PER_SECOND // 2

    def grace_deadline(self, ts: int) -> int:
        return ts + self.config.grace_ms * 1_000_000

    def overdue(self) -> int | None:
        """At the grace alert: the scan time still waiting for its scan, if any."""
        return self.pending_ts if self.pending_ts > self.last_scan_ts else None

    def scanned(self, ts: int) -> None:
        self.last_scan_ts = ts
        self.scans += 1

    def entries_allowed(self) -> bool:
        """After ``scanned``: whether this scan may open trades."""
        if self.config.entries == ScanEntries.FIRST_SCAN:
            return self.scans == 1
        return self.config.entries == ScanEntries.EVERY_SCAN
