"""One open trade's state, and how to read it back from the orders on the exchange after a restart."""

from dataclasses import dataclass, field
from decimal import Decimal

from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId, PositionId

from strategies.exits import ExitLevels, FactorInputs

# Tags on every order the strategy sends: they survive in the cache and on the venue (client order metadata),
# so a restarted node can tell the stop from the targets without any memory of its own.
TAG_ENTRY = "ATS:ENTRY"
TAG_SL = "ATS:SL"
TAG_TP1 = "ATS:TP1"
TAG_TP2 = "ATS:TP2"
TAG_EXIT = "ATS:EXIT"  # dynamic exit at market
TAG_FLATTEN = "ATS:FLATTEN"
ALL_TAGS = (TAG_ENTRY, TAG_SL, TAG_TP1, TAG_TP2, TAG_EXIT, TAG_FLATTEN)

STOP_INITIAL = "INITIAL"
STOP_BREAKEVEN = "BREAKEVEN"
STOP_DYNAMIC = "DYNAMIC"


def order_kind(tags: list[str] | None) -> str:
    """The ATS tag of an order, or "" for an order this strategy did not tag."""
    for tag in tags or ():
        if tag in ALL_TAGS:
            return tag
    return ""


@dataclass
class Trade:
    instrument_id: InstrumentId
    direction: str
    strength: float
    score: float
    leverage: int
    factors: FactorInputs
    atr: float | None
    planned: ExitLevels  # from the reference price at signal time; re-based on the fill price
    manual: bool = False
    entry_order_id: ClientOrderId | None = None
    position_id: PositionId | None = None
    entry: float = 0.0
    quantity: Decimal = Decimal(0)
    opened_ns: int = 0
    stop_price: float = 0.0
    tp1_price: float = 0.0
    tp2_price: float = 0.0
    stop_id: ClientOrderId | None = None
    tp1_id: ClientOrderId | None = None
    tp2_id: ClientOrderId | None = None
    stop_kind: str = STOP_INITIAL
    tp1_done: bool = False
    exit_intent: str = ""  # "DYNAMIC" or "FLATTEN" once the strategy itself closes at market
    trails: int = 0
    dynamic_adjustments: int = 0
    funding: float = 0.0  # received (+) / paid (-) while open
    replaced_stops: list[ClientOrderId] = field(default_factory=list)

    @property
    def sign(self) -> int:
        return 1 if self.direction == "LONG" else -1
