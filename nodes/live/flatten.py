"""``ats flatten``: close every position and cancel every order on the account, then stop.

A one-shot strategy on a live node, so the closing goes through Nautilus's reconciled view of the account and
the same Binance execution client that trades: positions adopted from the exchange are closed with reduce-only
market orders, and every open order, conditional stops and take-profits included, is cancelled.
"""

from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy


class FlattenConfig(StrategyConfig, frozen=True):
    instrument_ids: tuple[str, ...] = ()


class Flattener(Strategy):
    def __init__(self, config: FlattenConfig) -> None:
        super().__init__(config)
        self.instrument_ids = [InstrumentId.from_str(i) for i in config.instrument_ids]
        self.requested = False

    def on_start(self) -> None:
        for instrument_id in self.instrument_ids:
            self.cancel_all_orders(instrument_id)
        # Positions the exchange reports belong to whichever strategy reconciliation assigned them to: close
        # them all, whoever "owns" them, with reduce-only market orders.
        for position in self.cache.positions_open():
            self.close_position(position, reduce_only=True, tags=["ATS:FLATTEN"])
        for order in self.cache.orders_open():
            if order.strategy_id != self.id:
                self.cancel_order(order)
        self.requested = True

    def is_flat(self) -> bool:
        return self.requested and not self.cache.positions_open() and not self.cache.orders_open()
