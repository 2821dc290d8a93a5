"""Risk limits as plain data and functions: what may open, and the daily loss limit across UTC days."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

NANOS_PER_DAY = 86_400 * 1_000_000_000


@dataclass(frozen=True)
class RiskLimits:
    max_positions: int = 5
    max_position_notional: float = 10_000.0
    max_leverage: int = 10
    daily_loss_limit: float = 2_000.0
    correlation_bound: float = 0.8


@dataclass(frozen=True)
class OpenExposure:
    instrument: str
    direction: str  # "LONG" | "SHORT"


def utc_day(ts_ns: int) -> int:
    return ts_ns // NANOS_PER_DAY


def check_entry(
    instrument: str,
    direction: str,
    open_exposures: Iterable[OpenExposure],
    pending: int,
    limits: RiskLimits,
    paused: bool,
    daily_limit_hit: bool,
    correlation: Callable[[str, str], float | None],
) -> str:
    """Why a new entry may not be sent; empty string when it may.

    ``pending`` counts entries sent but not filled yet, so a scan cannot overshoot the position limit.
    Correlation is only checked against open positions in the same direction: opposite positions hedge.
    """
    exposures = list(open_exposures)
    if paused:
        return "trading is paused"
    if daily_limit_hit:
        return "daily loss limit hit: no new entries until 00:00 UTC"
    if any(e.instrument == instrument for e in exposures):
        return "a position in this symbol is already open"
    if len(exposures) + pending >= limits.max_positions:
        return f"max concurrent positions ({limits.max_positions}) reached"
    for e in exposures:
        if e.direction != direction:
            continue
        rho = correlation(instrument, e.instrument)
        if rho is not None and rho > limits.correlation_bound:
            bound = limits.correlation_bound
            return f"returns correlate {rho:.2f} > {bound} with open {e.direction} {e.instrument}"
    return ""


@dataclass
class DailyLossGuard:
    """Daily PnL = equity now - equity at the first observation of the UTC day (realised + unrealised).

    ``observe`` returns what changed so the caller can publish it: "RESET" on a new day that lifts a hit
    limit, "HIT" the first time the loss reaches the limit that day, else "".
    """

    limit: float
    day: int = -1
    start_equity: float = 0.0
    last_pnl: float = 0.0
    hit: bool = False

    def observe(self, ts_ns: int, equity: float) -> str:
        event = ""
        day = utc_day(ts_ns)
        if day != self.day:
            event = "RESET" if self.hit else ""
            self.day = day
            self.start_equity = equity
            self.hit = False
        self.last_pnl = equity - self.start_equity
        if not self.hit and self.limit > 0 and self.last_pnl <= -self.limit:
            self.hit = True
            event = "HIT"
        return event

    def new_day(self, ts_ns: int) -> bool:
        return utc_day(ts_ns) != self.day
