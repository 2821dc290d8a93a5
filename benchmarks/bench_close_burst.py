"""The node's close burst, socket -> strategy, as a deterministic micro-benchmark of the message path.

``uv run python -m benchmarks close-burst [--quick]``

A minute's close on 200 symbols is 600 messages: each symbol's book ticker, mark price and closed kline. Here one
such burst is captured from the simulator's own streams (the live-load universe: the 16 real series under 200
names, the most volatile hour of 2025-05-23, read over a real loopback WebSocket; the open klines of the tick
dropped, as the node drops them unread) and replayed, on a running asyncio loop, through the data client's
``MarketStreams.handle`` into a real ``LiveDataEngine`` whose message bus carries the strategy's subscriptions (a
bar, quote and mark-price handler per symbol, each counting what it gets) and the portfolio's quote and bar
handlers. What it prints: the loop thread's cpu per message (median of repeated replays of the same burst, after
one to warm the caches) and the Python function calls per message (``cProfile``'s count: deterministic), with
the calls of the three message kinds apart. The WebSocket reader threads' hand-over and the strategy's own work
are not in it (``live-load`` measures those).
"""

import asyncio
import cProfile
import pstats
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
from nautilus_trader.adapters.binance import BinanceAccountType, BinanceDataClientConfig, BinanceLiveDataClientFactory
from nautilus_trader.adapters.binance.futures.types import BinanceFuturesMarkPriceUpdate
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.live.data_engine import LiveDataEngine
from nautilus_trader.model.data import BarType, DataType
from nautilus_trader.model.identifiers import TraderId

from benchmarks.bench_live import KEY, REAL, SECRET, SHARED, renamed_universe
from benchmarks.bench_live_load import day_ranges, volatile_window
from benchmarks.table import Row
from nodes.live.market_streams import MarketStreams, install_market_streams
from simulator import BinanceSimulator, SimulatorConfig
from simulator.sources import from_files

SYMBOLS = 200
KINDS = ("kline", "markPrice", "bookTicker")


def capture_burst(symbols: int = SYMBOLS) -> list[bytes]:
    """One close tick of ``symbols`` symbols as the simulator writes it: per symbol its book ticker, mark price and
    closed kline, in the order sent (the tick's open klines left out)."""
    everything = from_files([SHARED / f"{s}-1m.csv.gz" for s in REAL])
    day_ms, _ = day_ranges(everything.series)[0]
    start_ms = volatile_window(everything.series, day_ms, 1.0)
    data, names = renamed_universe(everything.window(start_ms, limit=4), symbols)
    config = SimulatorConfig(data.instruments, data.series, KEY, SECRET, bar_seconds=0.8, autostart=False)
    streams = [f"{n.lower()}@{kind}" for n in names for kind in ("bookTicker", "markPrice", "kline_1m")]
    with BinanceSimulator(config) as sim:

        async def read() -> list[bytes]:
            frames: list[bytes] = []
            async with aiohttp.ClientSession() as session, session.ws_connect(f"{sim.ws_url}/stream") as ws:
                await ws.send_json({"method": "SUBSCRIBE", "params": streams, "id": 1})
                while not all(sim.hub.wants(n, "kline") for n in names):
                    await asyncio.sleep(0.01)
                sim.play()
                closed = 0
                async for msg in ws:
                    raw = msg.data.encode()
                    if raw.startswith(b'{"result"'):
                        continue
                    frames.append(raw)
                    closed += b'"x":true' in raw
                    if closed == 2 * symbols:  # the second close: every stream has sent before it
                        break
            return frames

        frames = asyncio.run(read())
    # the last close tick: from the first message after the previous tick's last closed kline
    first_close_end = [i for i, f in enumerate(frames) if b'"x":true' in f][symbols - 1]
    tick = frames[first_close_end + 1 :]
    burst = [f for f in tick if b'"x":false' not in f]
    # a tick's messages: the ones of its last quarter-bar (book ticker and mark price right before the kline)
    return burst[-3 * symbols :]


class Subscribers:
    """The strategy's subscriptions on the bus, each handler counting what it gets."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()

    def handler(self, kind: str) -> Callable[[Any], None]:
        received = self.received

        def handle(item: Any) -> None:
            received[kind] += 1

        return handle


def replay_setup(frames: list[bytes]) -> tuple[asyncio.AbstractEventLoop, MarketStreams, Subscribers]:
    loop = asyncio.new_event_loop()
    clock = LiveClock()
    msgbus = MessageBus(TraderId("BENCH-001"), clock)
    cache = Cache()
    engine = LiveDataEngine(loop, msgbus, cache, clock)
    config = BinanceDataClientConfig(account_type=BinanceAccountType.USDT_FUTURES)
    client = BinanceLiveDataClientFactory.create(loop, "BINANCE", config, msgbus, cache, clock)
    engine.register_client(client)
    streams = install_market_streams(client)
    assert streams is not None
    subscribers = Subscribers()
    symbols = sorted({f.split(b'"s":"', 1)[1].split(b'"', 1)[0].decode() for f in frames})
    ids = [streams.instrument_id(s) for s in symbols]
    streams.prime(ids)
    for instrument_id in ids:
        msgbus.subscribe(f"data.bars.{BarType.from_str(f'{instrument_id}-1-MINUTE-LAST-EXTERNAL')}",
                         subscribers.handler("bar"))  # fmt: skip
        msgbus.subscribe(f"data.quotes.{instrument_id.venue}.{instrument_id.symbol}", subscribers.handler("quote"))
        data_type = DataType(BinanceFuturesMarkPriceUpdate, metadata={"instrument_id": instrument_id})
        msgbus.subscribe(f"data.{data_type.topic}", subscribers.handler("mark"))
    # the portfolio's (the node's default: quotes and external bars)
    msgbus.subscribe("data.quotes.*", subscribers.handler("portfolio quote"), priority=10)
    msgbus.subscribe("data.bars.*EXTERNAL", subscribers.handler("portfolio bar"), priority=10)

    async def start() -> None:
        engine.start()
        streams.attach_engine(engine)

    loop.run_until_complete(start())
    return loop, streams, subscribers


def replay(loop: asyncio.AbstractEventLoop, streams: MarketStreams, frames: list[bytes]) -> float:
    """The burst through the handler on the running loop; the thread's cpu seconds."""

    async def run() -> float:
        handle = streams.handle
        start = time.thread_time()
        for frame in frames:
            handle(frame)
        return time.thread_time() - start

    return loop.run_until_complete(run())


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """The engine's queue tasks ended, the loop closed."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.close()


def calls_per_kind(loop: asyncio.AbstractEventLoop, streams: MarketStreams, frames: list[bytes]) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind in KINDS:
        chosen = [f for f in frames if f"@{kind}".encode() in f]
        profile = cProfile.Profile()
        profile.enable()
        replay(loop, streams, chosen)
        profile.disable()
        total = sum(s[1] for s in pstats.Stats(profile).stats.values())  # type: ignore[attr-defined]
        out[kind] = total / len(chosen)
    return out


def rows(quick: bool) -> list[Row]:
    frames = capture_burst()
    loop, streams, subscribers = replay_setup(frames)
    replay(loop, streams, frames)  # first use: the bus's topic caches
    rounds = 20 if quick else 100
    cpu = sorted(replay(loop, streams, frames) for _ in range(rounds))
    calls = calls_per_kind(loop, streams, frames)
    _close(loop)
    delivered = {k: v // (rounds + 2) for k, v in subscribers.received.items()}
    name = f"close burst: {len(frames)} messages of {SYMBOLS} symbols -> the data engine and bus"
    per_message_us = statistics.median(cpu) / len(frames) * 1e6
    return [
        Row(name, "loop cpu per burst, median ms", statistics.median(cpu) * 1000, "", "",
            f"min {cpu[0] * 1000:.2f}, {rounds} replays"),
        Row(name, "loop cpu per message, median us", per_message_us, "", "", ""),
        *(Row(name, f"Python calls per {kind} message", calls[kind], "", "", "cProfile, deterministic")
          for kind in KINDS),
        Row(name, "items each subscriber got per burst", sum(delivered.values()), "", "",
            ", ".join(f"{k} {v}" for k, v in sorted(delivered.items()))),
    ]  # fmt: skip
