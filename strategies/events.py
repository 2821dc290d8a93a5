"""Trade events the strategy publishes on the message bus, for the Telegram notifier and the reports.

They are Nautilus custom data (``publish_data(DataType(T), event)``), so an actor subscribes to them the same
way in a backtest and live: ``self.subscribe_data(DataType(SignalEvent))``. Fields are plain str/int/float so
they serialise without help; prices carry the instrument's precision so messages can print them exactly.
"""

from nautilus_trader.core.data import Data
from nautilus_trader.model.custom import customdataclass


@customdataclass
class SignalEvent(Data):
    """A signal the strategy acts on: direction, strength, leverage, planned exits and why it fired."""

    instrument: str = ""  # InstrumentId value, e.g. "BTCUSDT-PERP.BINANCE"
    direction: str = ""  # "LONG" or "SHORT"
    strength: float = 0.0  # 0..100
    score: float = 0.0  # signed combined score, -100..+100
    leverage: int = 1
    entry: float = 0.0  # reference entry price (last close)
    stop: float = 0.0
    tp1: float = 0.0
    tp2: float = 0.0
    price_precision: int = 2
    factors_json: str = "{}"  # {"T": {"value": .., "contribution": ..}, ...} only live factors
    manual: bool = False  # True when it came from a manual /signal command


@customdataclass
class EntryFilledEvent(Data):
    """The entry order filled: the position is open and its exits are being placed."""

    instrument: str = ""  # InstrumentId value, e.g. "BTCUSDT-PERP.BINANCE"
    direction: str = ""
    price: float = 0.0
    quantity: float = 0.0
    price_precision: int = 2
    size_precision: int = 3


@customdataclass
class ExitEvent(Data):
    """An exit step of an open trade.

    kind: "TP1" (half closed; the stop follows to break-even), "TP2", "STOP", "BREAKEVEN" (stop moved to entry),
    "DYNAMIC_TIGHTEN", "DYNAMIC_TRAIL", "DYNAMIC_EXIT", "FLATTEN", "STOP_REARMED".
    pnl_pct is the trade's total result so far, in percent of entry notional (signed).
    """

    instrument: str = ""  # InstrumentId value, e.g. "BTCUSDT-PERP.BINANCE"
    kind: str = ""
    direction: str = ""
    price: float = 0.0
    quantity: float = 0.0
    new_stop: float = 0.0
    pnl_pct: float = 0.0
    price_precision: int = 2
    size_precision: int = 3


@customdataclass
class PositionClosedEvent(Data):
    """A trade has ended. exit_reason: "TP1+TP2", "TP1+BREAKEVEN", "STOP", "DYNAMIC", "FLATTEN", "END_OF_DATA"."""

    instrument: str = ""  # InstrumentId value, e.g. "BTCUSDT-PERP.BINANCE"
    direction: str = ""
    entry_price: float = 0.0
    exit_price: float = 0.0
    quantity: float = 0.0
    realized_pnl: float = 0.0  # USDT, after fees and funding
    pnl_pct: float = 0.0
    duration_s: float = 0.0
    exit_reason: str = ""
    price_precision: int = 2


@customdataclass
class RiskEvent(Data):
    """A risk limit acted. kind: "DAILY_LOSS_LIMIT", "DAILY_LIMIT_RESET", "PAUSED", "RESUMED", "SIGNAL_REFUSED"."""

    kind: str = ""
    instrument: str = ""  # InstrumentId value, e.g. "BTCUSDT-PERP.BINANCE"
    message: str = ""
    value: float = 0.0
    limit: float = 0.0


@customdataclass
class NodeEvent(Data):
    """The node's life. kind: "STARTED", "STOPPED", "RECONNECTED", "RECONCILED" (what was repaired to match the
    exchange: lost fills applied, ghosts dropped, stops re-armed, orphans cancelled), "ERROR", "UNPROTECTED" (a
    position has no stop on the exchange and the quick tries to place one or to close it are spent: the message
    says what to do by hand)."""

    kind: str = ""
    mode: str = ""  # "backtest", "live", "testnet", "paper"
    message: str = ""


ALL_EVENT_TYPES = (SignalEvent, EntryFilledEvent, ExitEvent, PositionClosedEvent, RiskEvent, NodeEvent)
