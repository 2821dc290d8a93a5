"""The market inputs of the factors, as Nautilus data: what the catalog stores and the live node streams.

Bars are Nautilus's own (``BinanceBar`` with taker-buy volume, or ``Bar``), named by ``bar_type_for``. The rest
has no Nautilus class: open interest (catalogued from Binance Vision metrics, polled over REST live) and the
liquidation stream (live only). The strategy and ``ats scan`` hand them to the ``FactorBook``.
"""

from nautilus_trader.core.data import Data
from nautilus_trader.model.custom import customdataclass
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId


def bar_type_for(instrument_id: InstrumentId, bar_spec: str = "1-MINUTE", price: str = "LAST") -> BarType:
    """The bar type of Binance klines: ``BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL`` for "1-MINUTE"."""
    return BarType.from_str(f"{instrument_id}-{bar_spec}-{price}-EXTERNAL")


@customdataclass
class OpenInterest(Data):
    """Binance open interest of one perpetual (base asset): catalogued every 5 minutes from the Vision metrics
    files (``sum_open_interest``), polled over REST (``/fapi/v1/openInterest``) by the live node."""

    instrument_id: InstrumentId = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
    open_interest: float = 0.0  # base asset
    open_interest_value: float = 0.0  # USDT; 0 when the source does not give it


@customdataclass
class LiquidationUpdate(Data):
    """One forced order from Binance's ``<symbol>@forceOrder`` stream, read by the live node."""

    instrument_id: InstrumentId = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
    side: str = ""  # the forced order's side: "SELL" = a long was liquidated, "BUY" = a short was
    quantity: float = 0.0  # base asset
    price: float = 0.0  # average fill price


@customdataclass
class LiquidationFeedStatus(Data):
    """The liquidation stream connected (``connected=True``) or was lost: a quiet live feed makes Q a real 0,
    a lost one makes it "not available" until the stream is back."""

    connected: bool = False
    message: str = ""
