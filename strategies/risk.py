"""Risk limits as plain data and functions: what may open, and the daily loss limit across UTC days."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from nautilus_trader.common.config import NautilusConfig, NonNegativeFloat, PositiveInt

NANOS_PER_DAY = 86_400 * 1_000_000_000


class RiskConfig(NautilusConfig, frozen=True):
    """Limits across trades: how many at once, the daily loss, how alike two same-direction trades may be."""

    max_positions: PositiveInt = 5  # entries sent and not filled yet count too
    daily_loss_limit_usdt: NonNegativeFloat = 2_000.0  # 0 switches the daily limit off
    correlation_bound: float = 0.8  # above 1 switches the correlation check off

    def __post_init__(self) -> None:
        if self.correlation_bound <= -1:
            raise ValueError(f"correlation_bound: {self.correlation_bound} would refuse every entry (> -1)")


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
    limits: RiskConfig,
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
    """The UTC day's account: daily PnL = equity now - equity at the first observation of the day (realised +
    unrealised), and the trades opened that day. The one place where the day rolls over.

    ``observe`` returns what changed so the caller can publish it: "RESET" on a new day that lifts a hit
    limit, "HIT" the first time the loss reaches the limit that day, else "".
    """

    limit: float
    day: int = -1
    start_equity: float = 0.0
    last_pnl: float = 0.0
    hit: bool = False
    trades: int = 0

    def observe(self, ts_ns: int, equity: float) -> str:
        event = ""
        day = utc_day(ts_ns)
        if day != self.day:
            event = "RESET" if self.hit else ""
            self.day = day
            self.start_equity = equity
            self.hit = False
            self.trades = 0
        self.last_pnl = equity - self.start_equity
        if not self.hit and self.limit > 0 and self.last_pnl <= -self.limit:
            self.hit = True
            event = "HIT"
        return event

    def restore(self, day: int, start_equity: float) -> None:
        """Go on counting a day that began before this process (a restart): its equity at 00:00 UTC."""
        self.day, self.start_equity = day, start_equity

    def new_day(self, ts_ns: int) -> bool:
        return utc_day(ts_ns) != self.day

    def day_end(self) -> int:
        """When the day observed last ends (ns): ``new_day`` is False for every time of it."""
        return (self.day + 1) * NANOS_PER_DAY

    def hit_message(self) -> str:
        return f"daily loss {self.last_pnl:.2f} USDT reached the limit {self.limit:.0f}: no new entries until 00:00 UTC"

    def pnl(self, equity: float) -> float:
        """The day's PnL at ``equity``; 0 before the first observation."""
        return equity - self.start_equity if self.day >= 0 else 0.0
