"""The market streams of Nautilus 1.231's Binance futures data client, handled for a node that watches hundreds of
symbols. Applied per client instance (no global patch); the wire formats, subscriptions, reconnects and
resubscriptions stay Nautilus's own.

Every minute the node must take in a burst at the minute's close: for each symbol its closed kline, its mark
price and its book ticker, and only then can the strategy scan (``benchmarks live-load``: 200 symbols, 600
messages). Stock, each message costs more than it needs to:

- its stream is found by decoding the message twice (a wrapper, then the typed message) and testing it against
  every known stream name; here the stream name is read from the frame's head (Binance's combined frames begin
  ``{"stream":"<name>"``) and looked up in a table of the names seen so far, which sends the three hot streams
  (kline, mark price, book ticker) straight to their handler;
- the typed message holds every field Binance sends, each checked; here each hot stream is decoded in one call
  into a struct of only the fields its Nautilus data is made of (msgspec skips the rest unread), untracked by
  the garbage collector;
- its symbol is parsed back into an instrument id each time (``_get_cached_instrument_id`` builds a
  ``BinanceSymbol`` before looking the id up); here the raw symbol is the key, also of each symbol's bar type and
  mark-price data type, made once;
- its prices are parsed from text by ``Price.from_str`` (2.5 us each, four or five a message); here a price of up
  to 15 digits is ``Price(float(text), decimals)``, the same value and precision in a tenth of the time (longer
  or exponent-bearing text still goes through ``from_str``);
- a kline that has not closed (Binance sends one every 250 ms per symbol, the simulator three a bar) is decoded in
  full to be dropped; here the frame's ``"x":false`` drops it unread;
- a mark price is published twice: as Binance's mark-price data (funding rate, next funding time: what the
  strategy reads) and as Nautilus's ``MarkPriceUpdate``, which the data engine caches and publishes to nobody
  unless something subscribed mark prices (the portfolio reads them only with ``use_mark_prices``, which the node
  leaves off); here the second one is published only for instruments whose mark prices were subscribed;
- each message crosses the data engine's queue with a thread-safe call and two more turns of the event loop
  before the strategy sees it; here, on the loop's own thread and with the queue empty (nothing to overtake), it
  is handed to the engine at once, as the queue's task would.

And the mark price is asked at Binance's default pace, every 3 s (``<symbol>@markPrice``), not every second
(``@markPrice@1s``): the strategy reads a mark for the basis factor's premium and the funding rate, both read at
a scan (each minute at the most); the stream watch (``nodes/live/stream_watch.py``) calls 10 quiet seconds a
gap. On Binance that is a third of the mark messages. (Nautilus's own ``speed=3000`` would ask for
``@markPrice@3s``, a name Binance does not have.)

The values are the stock client's (``tests/test_market_streams.py`` compares them message by message on a real
capture and on the simulator's streams).
"""

from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

import msgspec
from nautilus_trader.adapters.binance.common.enums import BinanceKlineInterval
from nautilus_trader.adapters.binance.common.symbol import BinanceSymbol
from nautilus_trader.adapters.binance.common.types import BinanceBar
from nautilus_trader.adapters.binance.futures.data import BinanceFuturesDataClient
from nautilus_trader.adapters.binance.futures.types import BinanceFuturesMarkPriceUpdate
from nautilus_trader.core.datetime import millis_to_nanos
from nautilus_trader.data.engine import DataEngine
from nautilus_trader.model.data import BarSpecification, BarType, CustomData, DataType, MarkPriceUpdate, QuoteTick
from nautilus_trader.model.enums import AggregationSource
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price, Quantity

from nodes.live.at_once import AtOnceOrQueued

_STREAM_HEAD = b'{"stream":"'
_NAME_START = len(_STREAM_HEAD)
_OPEN_KLINE = b'"x":false'


class _Frame[Event](msgspec.Struct, gc=False):
    """A combined-stream frame: its event (the stream name is read from its head)."""

    data: Event


# What each hot stream's event is decoded into: only the fields the Nautilus data is made of (msgspec skips the
# others unread), untracked by the garbage collector (they hold no cycles and die with the message).
class _Kline(msgspec.Struct, gc=False):
    T: int
    s: str
    i: str
    o: str
    c: str
    h: str
    l: str  # noqa: E741 (Binance's name)
    v: str
    n: int
    x: bool
    q: str
    V: str
    Q: str


class _KlineEvent(msgspec.Struct, gc=False):
    k: _Kline


class _Quote(msgspec.Struct, gc=False):
    s: str
    b: str
    B: str
    a: str
    A: str
    T: int | None = None


class _Mark(msgspec.Struct, gc=False):
    E: int
    s: str
    p: str
    i: str
    P: str
    r: str
    T: int


def stream_name(raw: bytes) -> str | None:
    """The stream of a combined-stream frame read from its head, or None when the frame does not begin with it
    (then the stock decoder finds it)."""
    if not raw.startswith(_STREAM_HEAD):
        return None
    end = raw.find(b'"', _NAME_START)
    if end < 0:
        return None
    try:
        return raw[_NAME_START:end].decode("ascii")
    except UnicodeDecodeError:  # not a name Binance sends: the stock decoder logs the frame
        return None


def _text_parser(kind: Any) -> Callable[[str], Any]:
    """``kind.from_str`` (``Price`` or ``Quantity``), a tenth of its time for the text Binance sends: a plain decimal
    of at most 15 digits is exact as a float rounded to its decimals (one call: the decimals counted inline)."""

    def parse(text: str) -> Any:
        dot = text.find(".")
        if len(text) > (16 if dot >= 0 else 15) or "e" in text or "E" in text:
            return kind.from_str(text)
        return kind(float(text), len(text) - dot - 1 if dot >= 0 else 0)

    return parse


parse_price: Callable[[str], Price] = _text_parser(Price)
parse_quantity: Callable[[str], Quantity] = _text_parser(Quantity)


def mark_price_stream(symbol: str | None) -> str:
    """Binance's 3-second mark-price stream of a symbol, or of every symbol."""
    return "!markPrice@arr" if symbol is None else f"{BinanceSymbol(symbol).lower()}@markPrice"


class MarketStreams:
    """The hot market streams of one ``BinanceFuturesDataClient``: decoded, turned into Nautilus data and handed
    to the data engine (see the module's text)."""

    def __init__(self, client: BinanceFuturesDataClient) -> None:
        self.client = client
        self._stock_handler = client._handle_ws_message
        self._stock_instrument_id = client._get_cached_instrument_id
        self._clock = client._clock
        self._instrument_ids: dict[str, InstrumentId] = {}
        # per stream name (the frame's head, as sent): its handler; filled as names are first seen
        self._routes: dict[bytes, Callable[[bytes], None]] = {}
        self._bar_types: dict[tuple[str, str], BarType] = {}  # (symbol, interval) as sent
        self._bar_specs: dict[str, BarSpecification] = {}
        self._marks: dict[str, tuple[InstrumentId, DataType]] = {}  # symbol as sent -> its mark data's type
        self._mark_subscribed: frozenset[InstrumentId] = frozenset()
        self._decode_kline = msgspec.json.Decoder(_Frame[_KlineEvent]).decode
        self._decode_quote = msgspec.json.Decoder(_Frame[_Quote]).decode
        self._decode_mark = msgspec.json.Decoder(_Frame[_Mark]).decode
        self._engine: DataEngine | None = None
        self.received = 0  # kline, book ticker and mark messages (the stream gap watch reads it; not replies)
        # to the data engine; counts the messages handed over at once and through its queue
        self.deliver = AtOnceOrQueued.queue_only(client._handle_data)

    def install(self) -> None:
        client = self.client
        client._handle_ws_message = self.handle
        client._get_cached_instrument_id = self.instrument_id
        # the WebSocket clients took the stock handler when the data client was made; they connect later
        client._ws_client._handler = client._ws_public_client._handler = self.handle
        ws = client._ws_client

        async def subscribe_mark_price(symbol: str | None = None, speed: int | None = None) -> None:
            await ws._subscribe(mark_price_stream(symbol))

        async def unsubscribe_mark_price(symbol: str | None = None, speed: int | None = None) -> None:
            await ws._unsubscribe(mark_price_stream(symbol))

        ws.subscribe_mark_price = subscribe_mark_price
        ws.unsubscribe_mark_price = unsubscribe_mark_price
        subscribe, unsubscribe = client._subscribe_mark_prices, client._unsubscribe_mark_prices

        async def subscribe_mark_prices(command: Any) -> None:
            self._mark_subscribed = frozenset(client.subscribed_mark_prices())
            await subscribe(command)

        async def unsubscribe_mark_prices(command: Any) -> None:
            self._mark_subscribed = frozenset(client.subscribed_mark_prices())
            await unsubscribe(command)

        client._subscribe_mark_prices = subscribe_mark_prices
        client._unsubscribe_mark_prices = unsubscribe_mark_prices

    def attach_engine(self, engine: Any) -> None:
        """Hand data to ``engine`` (the node's ``LiveDataEngine``) at once when the queue's task would be next."""
        self._engine = engine
        self.deliver = AtOnceOrQueued(
            loop=self.client._loop,
            busy=engine._data_queue.qsize,  # data_qsize without its extra call
            run=partial(DataEngine.process, engine),  # the engine's own, not the queue's
            enqueue=self.client._handle_data,
            on_error=engine._handle_queue_exception,
            kind="Data",
        )

    # --- per message

    def prime(self, instrument_ids: list[InstrumentId]) -> None:
        """Before the streams start: each symbol's instrument id looked up as its first message would (the stock
        lookup parses the symbol, ~20 us; 200 symbols' first klines come in one burst, before the first scan)."""
        for instrument_id in instrument_ids:
            self.instrument_id(str(BinanceSymbol(instrument_id.symbol.value)))

    def instrument_id(self, symbol: str) -> InstrumentId:
        instrument_id = self._instrument_ids.get(symbol)
        if instrument_id is None:
            instrument_id = self._instrument_ids[symbol] = self._stock_instrument_id(symbol)
        return instrument_id

    def handle(self, raw: bytes) -> None:
        end = raw.find(b'"', _NAME_START) if raw.startswith(_STREAM_HEAD) else -1
        route = self._routes.get(raw[_NAME_START:end]) if end > 0 else None
        if route is None:
            route = self._route(raw)
        route(raw)

    def _route(self, raw: bytes) -> Callable[[bytes], None]:
        """The handler of a frame's stream (kept by name for the hot streams), the stock one for any other."""
        name = stream_name(raw)
        kind = name.partition("@")[2] if name is not None else ""
        if kind.startswith("kline_"):
            route = self._on_kline
        elif kind == "bookTicker":
            route = self._on_quote
        elif kind == "markPrice" or kind == "markPrice@1s":
            route = self._on_mark
        else:
            return self._stock_handler
        assert name is not None
        self._routes[name.encode()] = route
        return route

    def _on_kline(self, raw: bytes) -> None:
        self.received += 1
        if _OPEN_KLINE in raw:
            return
        try:
            bar = self._kline(raw)
        except Exception as e:  # as the stock handler: logged, the stream goes on
            self._failed(raw, e)
            return
        if bar is not None:
            self.deliver(bar)

    def _on_quote(self, raw: bytes) -> None:
        self.received += 1
        try:
            quote = self._book_ticker(raw)
        except Exception as e:
            self._failed(raw, e)
            return
        self.deliver(quote)

    def _on_mark(self, raw: bytes) -> None:
        self.received += 1
        try:
            custom, update = self._mark_price(raw)
        except Exception as e:
            self._failed(raw, e)
            return
        self.deliver(custom)
        if update is not None:
            self.deliver(update)

    def _failed(self, raw: bytes, e: Exception) -> None:
        self.client._log.exception(f"Error handling websocket message {raw!r}", e)

    def _kline(self, raw: bytes) -> BinanceBar | None:
        k = self._decode_kline(raw).data.k
        if not k.x:
            return None
        bar_type = self._bar_types.get((k.s, k.i))
        if bar_type is None:
            bar_type = self._bar_type(k.s, k.i)
        # BinanceCandlestick.parse_to_binance_bar with the bar type kept
        ts_event = millis_to_nanos(k.T)
        return BinanceBar(
            bar_type,
            parse_price(k.o),
            parse_price(k.h),
            parse_price(k.l),
            parse_price(k.c),
            parse_quantity(k.v),
            Decimal(k.q),
            k.n,
            Decimal(k.V),
            Decimal(k.Q),
            ts_event,
            self._clock.timestamp_ns() or ts_event,
        )

    def _bar_type(self, symbol: str, interval: str) -> BarType:
        bar_spec = self._bar_specs.get(interval)
        if bar_spec is None:
            parse = self.client._enum_parser.parse_binance_kline_interval_to_bar_spec
            bar_spec = self._bar_specs[interval] = parse(BinanceKlineInterval(interval))
        bar_type = self._bar_types[(symbol, interval)] = BarType(
            instrument_id=self.instrument_id(symbol), bar_spec=bar_spec, aggregation_source=AggregationSource.EXTERNAL
        )
        return bar_type

    def _book_ticker(self, raw: bytes) -> QuoteTick:
        data = self._decode_quote(raw).data
        ts_init = self._clock.timestamp_ns()
        ts_event = millis_to_nanos(data.T) if data.T else ts_init  # BinanceQuoteData.parse_to_quote_tick
        instrument_id = self._instrument_ids.get(data.s)
        return QuoteTick(
            self.instrument_id(data.s) if instrument_id is None else instrument_id,
            parse_price(data.b),
            parse_price(data.a),
            parse_quantity(data.B),
            parse_quantity(data.A),
            ts_event,
            ts_init or ts_event,
        )

    def _mark_price(self, raw: bytes) -> tuple[CustomData, MarkPriceUpdate | None]:
        data = self._decode_mark(raw).data
        mark = self._marks.get(data.s)
        if mark is None:
            instrument_id = self.instrument_id(data.s)
            data_type = DataType(BinanceFuturesMarkPriceUpdate, metadata={"instrument_id": instrument_id})
            mark = self._marks[data.s] = (instrument_id, data_type)
        instrument_id, data_type = mark
        # BinanceFuturesMarkPriceData.parse_to_binance_futures_mark_price_update
        update = BinanceFuturesMarkPriceUpdate(
            instrument_id,
            parse_price(data.p),
            parse_price(data.i),
            parse_price(data.P),
            Decimal(data.r),
            millis_to_nanos(data.T),
            millis_to_nanos(data.E),
            self._clock.timestamp_ns(),
        )
        custom = CustomData(data_type, update)
        if instrument_id not in self._mark_subscribed:
            return custom, None
        return custom, MarkPriceUpdate(instrument_id, update.mark, update.ts_event, update.ts_init)


def install_market_streams(client: Any) -> MarketStreams | None:
    """Give a Binance futures data client the handling above; None for any other client."""
    if not isinstance(client, BinanceFuturesDataClient):
        return None
    streams = MarketStreams(client)
    streams.install()
    client.ats_market_streams = streams
    return streams


def market_streams_of(node: Any) -> list[MarketStreams]:
    """The market streams of a built node's Binance data clients."""
    clients = node.kernel.data_engine._clients.values()
    return [c.ats_market_streams for c in clients if getattr(c, "ats_market_streams", None) is not None]


def attach_data_engine(node: Any) -> None:
    """After ``node.build()``: the node's Binance data clients hand their market data to its data engine at once."""
    for streams in market_streams_of(node):
        streams.attach_engine(node.kernel.data_engine)
