"""Position size and leverage: risk a share of equity over the stop distance, within the instrument filters.

Decimal arithmetic, so step-size rounding is exact (the original rounded every symbol to 3 decimals).
"""

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from nautilus_trader.common.config import NautilusConfig, NonNegativeFloat, PositiveFloat, PositiveInt
from nautilus_trader.model.instruments import Instrument


class SizingConfig(NautilusConfig, frozen=True):
    """How much each trade risks and the caps on its size."""

    risk_fraction: PositiveFloat = 0.01  # share of equity lost when the stop fills
    max_position_size_usdt: PositiveFloat = 10_000.0
    max_leverage: PositiveInt = 10
    fee_rate: NonNegativeFloat = 0.0005  # taker fee reserved on top of the margin in the balance check
    slippage: NonNegativeFloat = 0.005  # room left under the caps: a market entry fills near its reference

    def __post_init__(self) -> None:
        if self.risk_fraction > 0.2:
            raise ValueError(f"risk_fraction: {self.risk_fraction} is a share of equity (0.01 = 1 %), at most 0.2")
        if self.max_leverage > 125:
            raise ValueError(f"max_leverage: {self.max_leverage} is above Binance's 125x")


def to_decimal(value: float) -> Decimal:
    """The decimal a float prints as (0.1 -> 0.1, not the binary 0.1000000000000000055...)."""
    return Decimal(str(value))


def leverage_for_strength(strength: float, max_leverage: int) -> int:
    """> 80 -> 5x, > 60 -> 3x, else 2x; never above ``max_leverage``."""
    if strength > 80:
        lev = 5
    elif strength > 60:
        lev = 3
    else:
        lev = 2
    return max(1, min(lev, max_leverage))


def round_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Round down to a multiple of ``step``: rounding up could exceed the risk or the cap."""
    if step <= 0:
        raise ValueError("step must be positive")
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


@dataclass(frozen=True)
class InstrumentFilters:
    step: Decimal
    min_qty: Decimal
    min_notional: Decimal
    max_qty: Decimal | None = None

    @classmethod
    def of(cls, instrument: Instrument) -> "InstrumentFilters":
        """The instrument's own filters; a missing minimum quantity is one step, a missing notional none."""
        step = instrument.size_increment.as_decimal()
        return cls(
            step=step,
            min_qty=instrument.min_quantity.as_decimal() if instrument.min_quantity is not None else step,
            min_notional=instrument.min_notional.as_decimal() if instrument.min_notional is not None else Decimal(0),
            max_qty=instrument.max_quantity.as_decimal() if instrument.max_quantity is not None else None,
        )


@dataclass(frozen=True)
class SizeDecision:
    quantity: Decimal
    notional: Decimal
    margin: Decimal
    leverage: int
    reason: str = ""  # empty when accepted

    @property
    def accepted(self) -> bool:
        return not self.reason and self.quantity > 0


def position_size(
    equity: Decimal,
    free_balance: Decimal,
    entry: Decimal,
    stop: Decimal,
    leverage: int,
    filters: InstrumentFilters,
    config: SizingConfig = SizingConfig(),
) -> SizeDecision:
    """Quantity that loses ``risk_fraction`` of equity at the stop, capped and checked against the balance.

    Caps, in order: the per-position notional cap; equity x leverage (the position's leverage against the
    whole account never exceeds the trade's leverage, itself <= ``max_leverage``); the instrument's max
    quantity. Refused when below the minimum quantity / notional, or when the isolated margin plus the entry
    fee does not fit in the free balance. The caps leave ``slippage`` of room: the market entry fills near,
    not at, the reference price, and the filled position must still be within them.
    """
    risk_fraction, max_notional = to_decimal(config.risk_fraction), to_decimal(config.max_position_size_usdt)
    fee_rate, slippage = to_decimal(config.fee_rate), to_decimal(config.slippage)
    leverage = min(leverage, config.max_leverage)

    def refuse(reason: str, qty: Decimal = Decimal(0)) -> SizeDecision:
        margin = qty * entry / leverage if leverage else Decimal(0)
        return SizeDecision(qty, qty * entry, margin, leverage, reason)

    if equity <= 0:
        return refuse("no equity")
    if entry <= 0 or leverage < 1:
        return refuse("invalid entry price or leverage")
    distance = abs(entry - stop)
    if distance <= 0:
        return refuse("stop distance is zero")
    qty = equity * risk_fraction / distance
    worst = entry * (1 + slippage)
    qty = min(qty, max_notional / worst, equity * leverage / worst)
    if filters.max_qty is not None:
        qty = min(qty, filters.max_qty)
    qty = round_to_step(qty, filters.step)
    notional = qty * entry
    if qty < filters.min_qty or qty <= 0:
        return refuse(f"quantity {qty} below the minimum {filters.min_qty}", qty)
    if notional < filters.min_notional:
        return refuse(f"notional {notional:.2f} USDT below the instrument minimum {filters.min_notional} USDT", qty)
    margin = notional / leverage
    if margin + notional * fee_rate > free_balance:
        return refuse(f"margin {margin:.2f} USDT exceeds free balance {free_balance:.2f} USDT", qty)
    return SizeDecision(qty, notional, margin, leverage)


def split_quantity(quantity: Decimal, step: Decimal, min_qty: Decimal) -> tuple[Decimal, Decimal]:
    """TP1 and TP2 quantities, half each on the step grid; TP1 takes all when a half is below min qty."""
    first = round_to_step(quantity / 2, step)
    second = quantity - first
    if first < min_qty or second < min_qty or first <= 0:
        return quantity, Decimal(0)
    return first, second
