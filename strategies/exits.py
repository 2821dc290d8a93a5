"""Exit levels of a trade: stop, TP1, TP2 at entry, and their adjustment while the trade is open.

Plain functions on floats, no engine: the strategy rounds the prices to the instrument's tick afterwards.
Factor inputs follow the factor contract: trend is signed (-100..100) and is read in the trade's direction,
liquidity is 0..100, volatility is ATR in percent of price; ``None`` means "not available" and applies no
adjustment (the original design silently scored missing data as 0, which we do not repeat).
"""

from dataclasses import dataclass
from enum import StrEnum

from nautilus_trader.common.config import NautilusConfig, NonNegativeFloat, NonNegativeInt, PositiveFloat


class ExitMode(StrEnum):
    PERCENT = "PERCENT"  # distances in percent of the entry price
    ATR = "ATR"  # distances in ATRs (percent when the ATR is not known yet)


class TargetOrder(StrEnum):
    """The order type that takes profit: a resting limit (maker) or a market order once touched (taker)."""

    LIMIT = "LIMIT"
    MARKET_IF_TOUCHED = "MARKET_IF_TOUCHED"


class ExitConfig(NautilusConfig, frozen=True):
    """Where the stop, TP1 and TP2 sit at entry; TP1 closes half the position, TP2 the rest."""

    mode: ExitMode = ExitMode.PERCENT
    stop_pct: PositiveFloat = 0.02
    tp1_pct: PositiveFloat = 0.04
    tp2_pct: PositiveFloat = 0.08
    atr_stop_mult: PositiveFloat = 1.8
    atr_target_mult: PositiveFloat = 2.5
    atr_stop_min: PositiveFloat = 1.2  # the factor-adjusted stop stays within [min, max] ATRs
    atr_stop_max: PositiveFloat = 3.0
    atr_target_min: PositiveFloat = 1.5  # the factor-adjusted TP1 stays within [min, max] ATRs
    atr_target_max: PositiveFloat = 4.5
    tp2_over_tp1: PositiveFloat = 1.5  # ATR mode: TP2 distance = this x TP1 distance
    tp_order: TargetOrder = TargetOrder.LIMIT

    def __post_init__(self) -> None:
        if self.tp1_pct >= self.tp2_pct:
            raise ValueError(f"tp1_pct: {self.tp1_pct} must be below tp2_pct {self.tp2_pct} (TP1 fills first)")
        if self.stop_pct >= self.tp2_pct:
            raise ValueError(
                f"stop_pct: {self.stop_pct} must be below tp2_pct {self.tp2_pct}: a stop as far as the last "
                "target risks more than the whole trade can win"
            )
        if self.stop_pct >= 0.5:
            raise ValueError(f"stop_pct: {self.stop_pct} is a fraction of the price (0.02 = 2 %), below 0.5")
        if self.atr_stop_min > self.atr_stop_max:
            raise ValueError(f"atr_stop_min: {self.atr_stop_min} is above atr_stop_max {self.atr_stop_max}")
        if self.atr_target_min > self.atr_target_max:
            raise ValueError(f"atr_target_min: {self.atr_target_min} is above atr_target_max {self.atr_target_max}")
        if self.tp2_over_tp1 <= 1:
            raise ValueError(f"tp2_over_tp1: {self.tp2_over_tp1} must be above 1 (TP2 beyond TP1)")


@dataclass(frozen=True)
class FactorInputs:
    """What the exit rules read from the score at entry. Trend is signed; the rules use it along the trade."""

    strength: float
    trend: float | None = None
    liquidity: float | None = None
    atr_pct: float | None = None  # ATR as percent of price, e.g. 3.5 means 3.5 %


@dataclass(frozen=True)
class ExitLevels:
    entry: float
    direction: str  # "LONG" | "SHORT"
    stop: float
    tp1: float
    tp2: float
    stop_mult: float
    target_mult: float
    reasons: tuple[str, ...]


def side_sign(direction: str) -> int:
    """+1 for a long, -1 for a short: every price move along a trade is ``(price - entry) * side_sign``."""
    if direction == "LONG":
        return 1
    if direction == "SHORT":
        return -1
    raise ValueError(f"direction must be LONG or SHORT, not {direction!r}")


def factor_multipliers(direction: str, factors: FactorInputs) -> tuple[float, float, tuple[str, ...]]:
    """(stop multiplier, target multiplier, reasons) from the original design's four rules."""
    stop_mult = 1.0
    target_mult = 1.0
    reasons: list[str] = []
    if factors.strength > 70:
        stop_mult *= 0.8
        target_mult *= 1.3
        reasons.append("strength>70: stop x0.8, targets x1.3")
    if factors.trend is not None and factors.trend * side_sign(direction) > 60:
        target_mult *= 1.2
        reasons.append("trend>60: targets x1.2")
    if factors.liquidity is not None and factors.liquidity > 60:
        stop_mult *= 0.9
        reasons.append("liquidity>60: stop x0.9")
    if factors.atr_pct is not None and factors.atr_pct > 3:
        stop_mult *= 1.5
        reasons.append("volatility>3%: stop x1.5")
    return stop_mult, target_mult, tuple(reasons)


def exit_levels(
    entry: float,
    direction: str,
    factors: FactorInputs,
    params: ExitConfig = ExitConfig(),
    atr: float | None = None,
) -> ExitLevels:
    """Stop, TP1 and TP2 prices for an entry. ATR mode falls back to percent mode when the ATR is unknown."""
    if entry <= 0:
        raise ValueError("entry price must be positive")
    sign = side_sign(direction)
    stop_mult, target_mult, reasons = factor_multipliers(direction, factors)
    if params.mode == ExitMode.ATR and atr is not None and atr > 0:
        stop_atr = min(max(params.atr_stop_mult * stop_mult, params.atr_stop_min), params.atr_stop_max)
        tp1_atr = min(max(params.atr_target_mult * target_mult, params.atr_target_min), params.atr_target_max)
        stop_dist = stop_atr * atr
        tp1_dist = tp1_atr * atr
        tp2_dist = tp1_dist * params.tp2_over_tp1
        reasons = (*reasons, f"ATR mode: stop {stop_atr:.2f} ATR, TP1 {tp1_atr:.2f} ATR")
    else:
        stop_dist = entry * params.stop_pct * stop_mult
        tp1_dist = entry * params.tp1_pct * target_mult
        tp2_dist = entry * params.tp2_pct * target_mult
    # A stop at or beyond zero would never trigger for a long: keep it inside the price range.
    stop_dist = min(stop_dist, entry * 0.5)
    return ExitLevels(
        entry=entry,
        direction=direction,
        stop=entry - sign * stop_dist,
        tp1=entry + sign * tp1_dist,
        tp2=entry + sign * tp2_dist,
        stop_mult=stop_mult,
        target_mult=target_mult,
        reasons=reasons,
    )


def breakeven_stop(levels: ExitLevels) -> float:
    """After TP1 the stop protects the rest of the trade at the entry price."""
    return levels.entry


def rearm_stop(levels: ExitLevels, tp1_done: bool) -> float:
    """A stop found missing (after a restart): at break-even once TP1 is done, else the entry's base stop."""
    return breakeven_stop(levels) if tp1_done else levels.stop


def is_breakeven(stop: float, entry: float, tick: float) -> bool:
    """The exit state is read back from the exchange: a stop within half a tick of entry is at break-even."""
    return abs(stop - entry) <= tick / 2


# --- dynamic adjustment -------------------------------------------------------------------------------------


class DynamicKind(StrEnum):
    NONE = "NONE"
    TIGHTEN = "TIGHTEN"
    EXIT = "EXIT"
    TRAIL = "TRAIL"


class DynamicConfig(NautilusConfig, frozen=True):
    """Thresholds on the score read along the trade (score x side: +100 fully for it, -100 fully against)."""

    enabled: bool = True
    tighten_below: float = -20.0
    exit_below: float = -60.0
    trail_above: float = 85.0
    tighten_fraction: PositiveFloat = 0.5  # move the stop this share of the way from where it is to the price
    trail_fraction: PositiveFloat = 0.25  # push TP2 out by this share of its distance from entry
    max_trails: NonNegativeInt = 2
    min_gap_pct: NonNegativeFloat = 0.002  # a tightened stop stays at least this far from the price

    def __post_init__(self) -> None:
        if self.tighten_fraction > 1:
            raise ValueError(f"tighten_fraction: {self.tighten_fraction} is a share of the way to the price, 0..1")


@dataclass(frozen=True)
class DynamicAction:
    kind: DynamicKind
    new_stop: float | None = None
    new_tp2: float | None = None
    reason: str = ""


def dynamic_adjustment(
    direction: str,
    entry: float,
    stop: float,
    tp2: float | None,
    price: float,
    score: float,
    trails_done: int,
    params: DynamicConfig = DynamicConfig(),
) -> DynamicAction:
    """What to do with an open trade when a new score arrives.

    Against the trade past ``exit_below`` -> exit at market; past ``tighten_below`` -> move the stop toward
    the price (never loosen it, never closer than ``min_gap_pct``); strongly for it past ``trail_above`` while
    in profit -> push TP2 further out, at most ``max_trails`` times.
    """
    sign = side_sign(direction)
    aligned = score * sign
    if aligned <= params.exit_below:
        return DynamicAction(DynamicKind.EXIT, reason=f"score {score:+.1f} against the trade")
    if aligned <= params.tighten_below:
        candidate = stop + (price - stop) * params.tighten_fraction
        limit = price * (1 - sign * params.min_gap_pct)
        candidate = min(candidate, limit) if sign > 0 else max(candidate, limit)
        if (candidate - stop) * sign > 0:
            return DynamicAction(DynamicKind.TIGHTEN, new_stop=candidate, reason=f"score {score:+.1f} turned against")
        return DynamicAction(DynamicKind.NONE)
    if (
        aligned >= params.trail_above
        and tp2 is not None
        and trails_done < params.max_trails
        and (price - entry) * sign > 0
    ):
        new_tp2 = tp2 + (tp2 - entry) * params.trail_fraction
        return DynamicAction(DynamicKind.TRAIL, new_tp2=new_tp2, reason=f"score {score:+.1f} strengthened")
    return DynamicAction(DynamicKind.NONE)
