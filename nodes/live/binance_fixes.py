"""A fix to Nautilus 1.231's Binance futures execution client, applied per client instance (no global patch).

The bug (found on the simulator, ``tests/test_live_faults.py``): when the user stream reconnects (a dropped
connection, an expired listen key), the client reconciles with a mass status. It queries the trades of every
"active symbol", gathering the symbols from the cache as Nautilus symbols (``BTCUSDT-PERP``) and from Binance's
positions as raw symbols (``BTCUSDT``). Both name the same market, so its trades are fetched twice, each fill is
reported twice, and the partial-window fill adjustment invents a closing fill to make the doubled fills match
the position: the cache then believes the position closed, and the strategy cancels its stop and take-profits
while the position is still open on the exchange. At start-up the cache is empty, so only a reconnect shows it.

The fix: the cache's symbols are given in Binance's raw form, so the set holds each market once.
"""

import asyncio
import types
from typing import Any

from nautilus_trader.adapters.binance import BinanceLiveExecClientFactory
from nautilus_trader.adapters.binance.futures.execution import BinanceFuturesExecutionClient


def _raw_symbol(client: BinanceFuturesExecutionClient, instrument_id: Any) -> str:
    instrument = client._cache.instrument(instrument_id)
    if instrument is not None:
        return instrument.raw_symbol.value
    return instrument_id.symbol.value.removesuffix("-PERP")


def _cache_active_raw_symbols(self: BinanceFuturesExecutionClient) -> set[str]:
    symbols = {_raw_symbol(self, o.instrument_id) for o in self._cache.orders_open(venue=self.venue)}
    symbols |= {_raw_symbol(self, p.instrument_id) for p in self._cache.positions_open(venue=self.venue)}
    return symbols


class FixedBinanceLiveExecClientFactory(BinanceLiveExecClientFactory):
    """Nautilus's factory; the futures client it makes gets the raw-symbol fix above."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop, name: str, config: Any, msgbus: Any, cache: Any, clock: Any
    ) -> Any:
        client = BinanceLiveExecClientFactory.create(loop, name, config, msgbus, cache, clock)
        if isinstance(client, BinanceFuturesExecutionClient):
            client._get_cache_active_symbols = types.MethodType(_cache_active_raw_symbols, client)
        return client
