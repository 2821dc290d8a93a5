"""A minimal EMA(10/20) cross, as in Nautilus's example, sized by notional so it trades any symbol.

It is the speed baseline every backtest figure is compared with: always in the market, flipping on each cross.
"""

from decimal import Decimal

from nautilus_trader.config import StrategyConfig
from nautilus_trader.indicators import ExponentialMovingAverage
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderSide, PositionSide
from nautilus_trader.model.events import PositionOpened
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.position import Position
from nautilus_trader.trading.strategy import Strategy


class EMACrossNotionalConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    bar_type: BarType
    notional_usdt: Decimal = Decimal(1000)
    fast_ema_period: int = 10
    slow_ema_period: int = 20
    trade: bool = True  # False: indicators only, the no-order reference run
    traded_symbols: tuple[str, ...] = ()  # when set, only instances on these raw symbols trade


class EMACrossNotional(Strategy):
    def __init__(self, config: EMACrossNotionalConfig) -> None:
        super().__init__(config)
        self.fast = ExponentialMovingAverage(config.fast_ema_period)
        self.slow = ExponentialMovingAverage(config.slow_ema_period)
        self.instrument = None
        self.trading = False
        # The strategy's latest position (the engine keeps the object current): one instance trades one
        # instrument, so it is the instrument's net position without asking the portfolio on every bar.
        self.position: Position | None = None

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        self.trading = self.config.trade and (
            not self.config.traded_symbols or self.instrument.raw_symbol.value in self.config.traded_symbols
        )
        self.register_indicator_for_bars(self.config.bar_type, self.fast)
        self.register_indicator_for_bars(self.config.bar_type, self.slow)
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        if not self.trading or not self.slow.initialized:
            return
        want = OrderSide.BUY if self.fast.value >= self.slow.value else OrderSide.SELL
        position = self.position
        if position is not None and position.is_open:
            if (want == OrderSide.BUY) == (position.side == PositionSide.LONG):
                return
            self.close_position(position)
        quantity = self.instrument.make_qty(self.config.notional_usdt / Decimal(str(bar.close.as_double())))
        self.submit_order(self.order_factory.market(self.config.instrument_id, want, quantity))

    def on_position_opened(self, event: PositionOpened) -> None:
        self.position = self.cache.position(event.position_id)

    def on_stop(self) -> None:
        self.close_all_positions(self.config.instrument_id)
