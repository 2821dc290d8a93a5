"""The data client's market streams (``nodes/live/market_streams.py``): the same values as Nautilus's stock client
for every message, the 3-second mark-price stream, the mark price published once, the data handed to the engine
on the loop, and reconnects intact; against real frames (Binance's captured book tickers and depth) and the
simulator's streams over a real loopback WebSocket."""

import asyncio
import gzip
from pathlib import Path
from typing import Any

import aiohttp
from nautilus_trader.adapters.binance import BinanceAccountType, BinanceDataClientConfig, BinanceLiveDataClientFactory
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.model.data import BarType, CustomData
from nautilus_trader.model.identifiers import InstrumentId, TraderId
from nautilus_trader.model.objects import Price, Quantity

from nodes.live.market_streams import (
    install_market_streams,
    market_streams_of,
    parse_price,
    parse_quantity,
    stream_name,
)
from tests.live_support import RALLY_START_MS, live_node, wait_for, write_configs
from tests.simulator_support import btc_data, running_simulator

CAPTURE = "binance/ws_capture"
BTC = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
BTC_BARS = BarType.from_str("BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")


def _captured_frames(shared_data: Path, per_file: int = 1500) -> list[bytes]:
    """Binance's own frames: book tickers and depth updates of BTCUSDT and ETHUSDT (each line: receive time in
    ns, then the frame)."""
    frames: list[bytes] = []
    for name in ("btcusdt_20240808.gz", "ethusdt_20240808.gz"):
        with gzip.open(shared_data.parent / CAPTURE / name, "rb") as f:
            kept = 0
            for line in f:
                frame = line.split(b" ", 1)[1].strip()
                if b"@bookTicker" in frame or b"@depth@" in frame:
                    frames.append(frame)
                    kept += 1
                    if kept == per_file:
                        break
    return frames


async def _read_frames(url: str, bars: int) -> list[bytes]:
    frames: list[bytes] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        closed = 0
        async for msg in ws:
            frames.append(msg.data.encode())
            if b'"x":true' in frames[-1]:
                closed += 1
                if closed == bars:
                    break
    return frames


def _simulator_frames(shared_data: Path, bars: int = 12) -> list[bytes]:
    """The simulator's frames of BTCUSDT's kline, mark price (both names) and book ticker streams."""
    streams = "btcusdt@kline_1m/btcusdt@markPrice/btcusdt@markPrice@1s/btcusdt@bookTicker"
    with running_simulator(btc_data(shared_data, bars=bars + 2), bar_seconds=0.05) as sim:

        async def read() -> list[bytes]:
            reader = asyncio.ensure_future(_read_frames(f"{sim.ws_url}/stream?streams={streams}", bars))
            while not sim.hub.wants("BTCUSDT", "kline"):
                await asyncio.sleep(0.01)
            sim.play()
            return await reader

        return asyncio.run(read())


def _client() -> tuple[Any, list[Any]]:
    """A real Binance USDT-M data client on a real message bus, the data it hands the engine collected."""
    clock = LiveClock()
    msgbus = MessageBus(TraderId("TESTER-001"), clock)
    received: list[Any] = []
    msgbus.register(endpoint="DataEngine.process", handler=received.append)
    config = BinanceDataClientConfig(account_type=BinanceAccountType.USDT_FUTURES)
    client = BinanceLiveDataClientFactory.create(asyncio.new_event_loop(), "BINANCE", config, msgbus, Cache(), clock)
    return client, received


def _plain(item: Any) -> tuple[str, dict[str, Any]]:
    """A received item as comparable values; ``ts_init`` (each client's clock) left out."""
    if isinstance(item, CustomData):
        values = {"data_type": str(item.data_type), **type(item.data).to_dict(item.data)}
        name = f"CustomData[{type(item.data).__name__}]"
    else:
        values, name = type(item).to_dict(item), type(item).__name__
    return name, _without_ts_init(values)


def _without_ts_init(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_ts_init(v) for k, v in value.items() if k != "ts_init"}
    if isinstance(value, list):
        return [_without_ts_init(v) for v in value]
    return value


def test_frames_begin_with_their_stream_name(shared_data: Path) -> None:
    """Binance's combined frames (the capture) and the simulator's name their stream first, which is where the
    handler reads it; a frame that does not is left to the stock decoder."""
    for frame in _captured_frames(shared_data, per_file=50) + _simulator_frames(shared_data, bars=2):
        name = stream_name(frame)
        assert name is not None and name.split("@")[0] in ("btcusdt", "ethusdt")
    assert stream_name(b'{"data":{},"stream":"btcusdt@kline_1m"}') is None
    assert stream_name(b'{"result":null,"id":1}') is None


def test_every_message_gives_the_stock_clients_values(shared_data: Path) -> None:
    frames = _captured_frames(shared_data) + _simulator_frames(shared_data)
    stock, expected = _client()
    fixed, received = _client()
    streams = install_market_streams(fixed)
    assert streams is not None
    for frame in frames:
        stock._handle_ws_message(frame)
        fixed._handle_ws_message(frame)
    kinds = {name for name, _ in map(_plain, expected)}
    assert kinds == {
        "QuoteTick",
        "OrderBookDeltas",
        "BinanceBar",
        "CustomData[BinanceFuturesMarkPriceUpdate]",
        "MarkPriceUpdate",
    }
    # Nobody subscribed Nautilus's mark prices: that copy is left out, everything else is the stock client's.
    assert [_plain(i) for i in received] == [_plain(i) for i in expected if type(i).__name__ != "MarkPriceUpdate"]
    assert len([i for i in received if type(i).__name__ == "BinanceBar"]) == 12  # each closed kline once

    # Subscribed (an actor's subscribe_mark_prices): published too, in the stock client's order.
    fixed._add_subscription_mark_prices(BTC)
    asyncio.run(_refresh_mark_subscriptions(fixed))
    received.clear()
    for frame in frames:
        fixed._handle_ws_message(frame)
    assert [_plain(i) for i in received] == [_plain(i) for i in expected]


def test_primed_streams_look_nothing_up_on_the_first_messages(shared_data: Path) -> None:
    """Primed at start with the universe, the first closed klines (200 symbols' in one burst before the first scan)
    neither parse a symbol nor a kline interval again: the same values, the lookups counted on the real parser."""
    frames = _simulator_frames(shared_data, bars=3)
    stock, expected = _client()
    fixed, received = _client()
    streams = install_market_streams(fixed)
    assert streams is not None
    streams.prime([BTC])
    calls: list[str] = []
    lookup, parse = streams._stock_instrument_id, fixed._enum_parser.parse_binance_kline_interval_to_bar_spec
    streams._stock_instrument_id = lambda symbol: calls.append(symbol) or lookup(symbol)
    fixed._enum_parser.parse_binance_kline_interval_to_bar_spec = lambda i: calls.append(i.value) or parse(i)
    for frame in frames:
        stock._handle_ws_message(frame)
        fixed._handle_ws_message(frame)
    assert [_plain(i) for i in received] == [_plain(i) for i in expected if type(i).__name__ != "MarkPriceUpdate"]
    assert calls == ["1m"]  # the interval's bar spec once, for every symbol; no symbol parsed


def test_each_stream_is_routed_once_by_its_name(shared_data: Path) -> None:
    """A hot stream's name is read and matched to its handler on its first frame only; later frames are routed by
    the name's bytes in the frame's head (the same values either way: the tests above)."""
    frames = _simulator_frames(shared_data, bars=3)
    fixed, received = _client()
    streams = install_market_streams(fixed)
    assert streams is not None
    routed: list[bytes] = []
    route = streams._route
    streams._route = lambda raw: routed.append(raw) or route(raw)  # type: ignore[method-assign]
    for frame in frames:
        fixed._handle_ws_message(frame)
    names = sorted(stream_name(f) or "" for f in routed)
    assert names == ["btcusdt@bookTicker", "btcusdt@kline_1m", "btcusdt@markPrice", "btcusdt@markPrice@1s"]
    assert len([i for i in received if type(i).__name__ == "BinanceBar"]) == 3


async def _refresh_mark_subscriptions(client: Any) -> None:
    # the subscription itself goes to the WebSocket (none connected here): its failure is not the point
    try:
        await client._subscribe_mark_prices(None)
    except Exception:
        pass


def test_prices_parse_as_from_str_does() -> None:
    texts = ["61800.30", "0.00001234", "0.000", "100", "3.330", "0.00010000", "123456789.123456", "99999.99999999",
             "0.1", "1234567890123.45", "12345678.123456789", "12345678901234", "1234567.123456789",
             "1e-05", "2.5E3", "0.000000001"]  # fmt: skip
    for text in texts:
        for fast, stock in ((parse_price(text), Price.from_str(text)), (parse_quantity(text), Quantity.from_str(text))):
            assert (fast.raw, fast.precision) == (stock.raw, stock.precision), text


def test_a_broken_frame_is_logged_and_the_stream_goes_on(shared_data: Path) -> None:
    fixed, received = _client()
    install_market_streams(fixed)
    good = [f for f in _simulator_frames(shared_data, bars=1) if b"@bookTicker" in f][0]
    fixed._handle_ws_message(b'{"stream":"btcusdt@bookTicker","data":{"s":"BTCUSDT"}}')  # fields missing
    fixed._handle_ws_message(b'{"stream":"btc\xff@bookTicker","data":{}}')  # a name that is not text
    fixed._handle_ws_message(b'{"stream":"btcusdt@bookTicker')  # cut short
    fixed._handle_ws_message(good)
    assert [type(i).__name__ for i in received] == ["QuoteTick"]


def test_node_takes_the_3_second_mark_stream_and_hands_data_to_the_engine_on_its_loop(
    shared_data: Path, tmp_path: Path
) -> None:
    with running_simulator(btc_data(shared_data, bars=400, start_ms=RALLY_START_MS), bar_seconds=0.3) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        with live_node(config) as node:

            def subscribed() -> set[str]:
                return sim.call(lambda: {n for c in sim.hub.market_conns for n in c.streams})

            # each subscription is its own request, sent in no fixed order
            wanted = {"btcusdt@markPrice", "btcusdt@bookTicker", "btcusdt@kline_1m"}
            wait_for(lambda: wanted <= subscribed(), 30, "the node's subscriptions")
            assert "btcusdt@markPrice@1s" not in subscribed()
            sim.play()
            strategy = node.strategy
            symbol = strategy.book._symbol(BTC)

            def bars() -> int:
                return node.call(lambda: node.node.cache.bar_count(BTC_BARS))

            start = bars()
            wait_for(lambda: bars() >= start + 3, 30, "three bars")
            assert node.call(lambda: symbol.b.has_inputs and symbol.l.source == "quote")  # marks and quotes in
            [streams] = market_streams_of(node.node)
            assert streams.deliver.direct > 0  # on the loop, at once
            assert node.call(lambda: node.node.cache.mark_price(BTC)) is None  # no second copy of each mark

            # A dropped market connection: Nautilus reconnects and subscribes the same streams again.
            bars_before = bars()
            assert sim.drop_connections(market=True, user=False) >= 1
            wait_for(lambda: "btcusdt@markPrice" in subscribed(), 30, "the streams subscribed again")
            wait_for(lambda: bars() > bars_before + 2, 30, "bars after the reconnect")
            assert "btcusdt@markPrice@1s" not in subscribed()
