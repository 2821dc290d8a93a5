"""Data types the catalog stores that Nautilus has no class for."""

from nautilus_trader.core.data import Data
from nautilus_trader.model.custom import customdataclass
from nautilus_trader.model.identifiers import InstrumentId


@customdataclass
class OpenInterest(Data):
    """Binance open interest of one perpetual: ``sum_open_interest`` of the Vision metrics files (base asset),
    every 5 minutes; live it comes from polling /fapi/v1/openInterest."""

    instrument_id: InstrumentId = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
    open_interest: float = 0.0  # base asset
    open_interest_value: float = 0.0  # USDT; 0 when the source does not give it
