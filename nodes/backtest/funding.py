"""Funding settlement for backtests: Nautilus's simulated exchange does not settle perpetual funding itself.

``FundingSettlementModule`` is a venue ``SimulationModule`` (``BacktestVenueConfig(modules=[
ImportableActorConfig(actor_path="nodes.backtest.funding:FundingSettlementModule",
config_path="nodes.backtest.funding:FundingSettlementConfig", config={})])``, or ``add_venue(modules=...)``).
On each ``FundingRateUpdate`` the data engine publishes, every open position of that instrument pays
``signed_qty x mark x rate`` (longs pay shorts when the rate is positive), booked with
``exchange.adjust_account`` so the account balance, the equity curve and the daily PnL all see it.
"""

from decimal import Decimal

from nautilus_trader.backtest.config import SimulationModuleConfig
from nautilus_trader.backtest.modules import SimulationModule
from nautilus_trader.common.component import Logger
from nautilus_trader.model.data import FundingRateUpdate
from nautilus_trader.model.enums import PriceType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Money

from strategies.funding import funding_payment

# Who asks gets the module: ``engine.kernel.msgbus.send(FUNDING_ENDPOINT, box)`` appends it to the list ``box``
# (a BacktestNode builds its venues' modules itself and the engine keeps them private).
FUNDING_ENDPOINT = "backtest.funding_settlement"


def funding_module(engine) -> "FundingSettlementModule | None":  # noqa: ANN001 (a BacktestEngine)
    """The funding settlement module of a backtest engine's venue, if it has one."""
    box: list = []
    if FUNDING_ENDPOINT in engine.kernel.msgbus.endpoints():
        engine.kernel.msgbus.send(FUNDING_ENDPOINT, box)
    return box[0] if box else None


class FundingSettlementConfig(SimulationModuleConfig, frozen=True):
    topic: str = "data.funding_rates.*"


class FundingSettlementModule(SimulationModule):
    def __init__(self, config: FundingSettlementConfig | None = None) -> None:
        super().__init__(config or FundingSettlementConfig())
        self._topic = (config or FundingSettlementConfig()).topic
        self.totals: dict[str, float] = {}  # instrument id -> net funding paid (positive = cost)
        self.settlements = 0
        self.payments: list[tuple[str, int, float]] = []  # (instrument id, ts, paid: positive = cost)
        self.rates_seen: dict[str, int] = {}  # instrument id -> funding updates received
        self._last_ts: dict[InstrumentId, int] = {}

    def register_venue(self, exchange) -> None:  # noqa: ANN001 (a Cython SimulatedExchange)
        super().register_venue(exchange)
        # The data engine publishes each funding update on this topic, whether or not a strategy subscribed.
        self.msgbus.subscribe(topic=self._topic, handler=self._on_funding)
        if FUNDING_ENDPOINT not in self.msgbus.endpoints():
            self.msgbus.register(endpoint=FUNDING_ENDPOINT, handler=lambda box: box.append(self))

    def _mark(self, instrument_id: InstrumentId) -> float | None:
        for price_type in (PriceType.MARK, PriceType.LAST, PriceType.MID):
            price = self.exchange.cache.price(instrument_id, price_type)
            if price is not None:
                return price.as_double()
        book = self.exchange.get_book(instrument_id)
        if book is not None:
            mid = book.midpoint() or book.best_bid_price() or book.best_ask_price()
            if mid:
                return float(mid)
        return None

    def _on_funding(self, update: FundingRateUpdate) -> None:
        if self.exchange is None or update.instrument_id.venue != self.exchange.id:
            return
        # The same update can reach the bus twice (catalog replay and a republish): settle each time once.
        if self._last_ts.get(update.instrument_id) == update.ts_event:
            return
        self._last_ts[update.instrument_id] = update.ts_event
        key = update.instrument_id.value
        self.rates_seen[key] = self.rates_seen.get(key, 0) + 1
        positions = self.exchange.cache.positions_open(instrument_id=update.instrument_id)
        if not positions:
            return
        mark = self._mark(update.instrument_id)
        if mark is None:
            return
        rate = float(Decimal(str(update.rate)))
        instrument = self.exchange.cache.instrument(update.instrument_id)
        currency = instrument.settlement_currency
        total = 0.0
        for position in positions:
            total += funding_payment(position.signed_qty, mark, rate)
        if total == 0.0:
            return
        booked = Money(-total, currency)  # rounded to the currency's precision: what the account really moves
        paid = -booked.as_double()
        self.totals[key] = self.totals.get(key, 0.0) + paid
        self.settlements += 1
        self.payments.append((key, update.ts_event, paid))
        self.exchange.adjust_account(booked)

    def process(self, ts_now: int) -> None:
        pass  # settlement is event driven (on each funding update), nothing to do per time step

    def log_diagnostics(self, logger: Logger) -> None:
        logger.info(f"Funding settled {self.settlements} times, totals {self.totals}")

    def reset(self) -> None:
        self.totals = {}
        self.settlements = 0
        self.payments = []
        self.rates_seen = {}
        self._last_ts = {}
