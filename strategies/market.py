"""The strategy's market: its instruments, their last prices, the factor inputs, and the account valued there.

``Market`` is what the strategy knows of the world apart from its trades: the universe found in the cache at
start, the last close of each symbol (the reference price of entries and of the account's unrealised PnL, kept by
the ``FactorBook`` it feeds), and the market inputs it hands to the book.
"""

from collections.abc import Iterable
from typing import Any

from nautilus_trader.core.data import Data
from nautilus_trader.model.data import Bar
from nautilus_trader.model.identifiers import InstrumentId, Venue
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.position import Position

from factors.book import FactorBook
from factors.config import FactorConfig
from factors.inputs import LiquidationFeedStatus, LiquidationUpdate, OpenInterest
from factors.scoring import directed
from strategies.exits import FactorInputs
from strategies.trade import Trade


def resolve_symbol(symbol: str, instrument_ids: Iterable[InstrumentId]) -> InstrumentId | None:
    """BTC, BTCUSDT, BTCUSDT-PERP or BTCUSDT-PERP.BINANCE (any case) -> the universe's instrument id."""
    s = symbol.upper()
    for instrument_id in instrument_ids:
        raw = instrument_id.symbol.value.upper().removesuffix("-PERP")
        if s in (instrument_id.value.upper(), instrument_id.symbol.value.upper(), raw, raw[:-4]):
            return instrument_id
    return None


class Market:
    def __init__(self) -> None:
        self.instruments: dict[InstrumentId, Instrument] = {}
        self.ids: dict[str, InstrumentId] = {}  # "BTCUSDT-PERP.BINANCE" -> its id (a scan names symbols by text)
        self.venue: Venue | None = None
        self.book: FactorBook | None = None

    def load(self, instrument_ids: Iterable[InstrumentId], cache: Any, log: Any) -> None:
        """The universe: the configured instruments the cache knows (the others are logged and left out)."""
        for instrument_id in instrument_ids:
            instrument = cache.instrument(instrument_id)
            if instrument is None:
                log.error(f"{instrument_id}: instrument not in the cache, left out of the universe")
                continue
            self.instruments[instrument_id] = instrument
            self.ids[instrument_id.value] = instrument_id
            self.venue = self.venue or instrument_id.venue

    def factor_book(self, factors: FactorConfig, btc_id: InstrumentId, eth_id: InstrumentId) -> FactorBook:
        # Factor I (independence) measures against BTC and ETH: only when they are in the universe too.
        btc = btc_id if btc_id in self.instruments else None
        eth = eth_id if eth_id in self.instruments else None
        self.book = FactorBook(factors, list(self.instruments), btc, eth)
        return self.book

    @property
    def last_close(self) -> dict[InstrumentId, float]:
        """The last bar's close of each symbol that has had a bar (the book keeps them as it takes the bars)."""
        return {} if self.book is None else self.book.last_closes()

    def close_of(self, instrument_id: InstrumentId, default: float | None = None) -> float | None:
        """One symbol's last close, ``default`` before its first bar or outside the universe: ``last_close.get``
        without listing every symbol (read per open trade at each scan, mark and funding rate)."""
        close = None if self.book is None else self.book.close_of(instrument_id)
        return default if close is None else close

    def resolve(self, symbol: str) -> InstrumentId | None:
        return resolve_symbol(symbol, self.instruments)

    # --- inputs of the factors ------------------------------------------------------------------------------

    def on_bar(self, book: FactorBook, bar: Bar) -> InstrumentId:
        """Feed the bar to the book; the bar's instrument (each ``bar.bar_type`` builds new objects: it is read once
        per bar)."""
        instrument_id = bar.bar_type.instrument_id
        book.handle_bar(bar, instrument_id)
        return instrument_id

    def on_input(self, book: FactorBook, data: Data) -> None:
        """Open interest and liquidations (live), for the symbols of the universe."""
        if isinstance(data, OpenInterest):
            if data.instrument_id in self.instruments and data.open_interest > 0:
                book.handle_open_interest(data.instrument_id, data.open_interest, data.ts_event)
        elif isinstance(data, LiquidationUpdate):
            if data.instrument_id in self.instruments:
                book.handle_liquidation(data.instrument_id, data.side, data.quantity, data.price, data.ts_event)
        elif isinstance(data, LiquidationFeedStatus):
            book.set_liquidation_feed(data.connected)  # a quiet live feed is Q = 0, a lost one is missing

    def factor_inputs(
        self, book: FactorBook, instrument_id: InstrumentId, strength: float
    ) -> tuple[FactorInputs, float | None]:
        """What the exit rules read at entry, and the ATR for ATR-mode exits.

        The trend as the model reads it: under ``factors.direction = "fade"`` a strong rise reads bearish.
        """
        trend = directed("T", book.factor_value(instrument_id, "T"), book.config)
        liquidity = book.factor_value(instrument_id, "L")
        atr = book.atr(instrument_id)
        atr_pct = book.atr_pct(instrument_id)
        return FactorInputs(strength=strength, trend=trend, liquidity=liquidity, atr_pct=atr_pct), atr

    # --- the account at these prices ------------------------------------------------------------------------

    def currency(self, account: Any) -> Any:
        """The settlement currency (USDT): a live Binance futures account also holds BNB, USDC... balances."""
        for instrument in self.instruments.values():
            return instrument.settlement_currency
        return account.base_currency or next(iter(account.balances()))

    def wallet(self, portfolio: Any) -> float:
        account = portfolio.account(self.venue) if self.venue is not None else None
        total = account.balance_total(self.currency(account)) if account is not None else None
        return total.as_double() if total is not None else 0.0

    def equity(self, portfolio: Any, cache: Any) -> float:
        """Wallet balance plus the unrealised PnL of every open position of the venue at the last closes."""
        if self.venue is None or portfolio.account(self.venue) is None:
            return 0.0
        equity = self.wallet(portfolio)
        for position in cache.positions_open(venue=self.venue):
            price = self.close_of(position.instrument_id)
            if price is not None:
                instrument = self.instruments.get(position.instrument_id) or cache.instrument(position.instrument_id)
                equity += position.unrealized_pnl(instrument.make_price(price)).as_double()
        return equity

    def balance(self, portfolio: Any) -> dict[str, Any]:
        account = portfolio.account(self.venue)
        currency = self.currency(account)
        return {
            "currency": str(currency),
            "total": account.balance_total(currency).as_double(),
            "free": account.balance_free(currency).as_double(),
            "locked": account.balance_locked(currency).as_double(),
        }

    def trade_pnl_pct(self, trade: Trade, position: Position | None, instrument: Instrument, price: float) -> float:
        """The trade's result so far (realised, fees and funding included, plus unrealised at ``price``) in
        percent of the entry notional: what "total profit +8.2 %" in a TP2 message means."""
        notional = trade.entry * float(trade.quantity)
        if position is None or notional <= 0:
            return 0.0
        pnl = position.realized_pnl.as_double() if position.realized_pnl is not None else 0.0
        if position.is_open and price > 0:
            pnl += position.unrealized_pnl(instrument.make_price(price)).as_double()
        return 100.0 * (pnl + trade.funding) / notional
