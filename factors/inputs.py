"""The market inputs of the factors, as Nautilus data: what the catalog stores and the live node streams.

Bars are Nautilus's own (``BinanceBar`` with taker-buy volume, or ``Bar``), named by ``bar_type_for``. The rest
has no Nautilus class: open interest (catalogued from Binance Vision metrics, polled over REST live) and the
liquidation stream (live only). The strategy and ``ats scan`` hand them to the ``FactorBook``.
"""

from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId


def bar_type_for(instrument_id: InstrumentId, bar_spec: str = "1-MINUTE", price: str = "LAST") -> BarType:
    """The bar type of Binance klines: ``BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL`` for "1-MINUTE"."""
    return BarType.from_str(f"{instrument_id}-{bar_spec}-{price}-EXTERNAL")
