"""``BinanceSimulator``: the loopback exchange, its replay loop, and the control API for faults.

Use it from a test either on a background thread (``with BinanceSimulator(config) as sim:``, or ``start()`` /
``stop()``) or inside a running event loop (``async with BinanceSimulator(config) as sim:``). Point the
Nautilus Binance clients at ``sim.http_url`` (``base_url_http``) and ``sim.ws_url`` (``base_url_ws`` and
``base_url_ws_stream``).
"""

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from aiohttp import web
from nautilus_trader.model.data import Bar
from nautilus_trader.model.instruments import CryptoPerpetual

from simulator.capture import Capture, CapturedMarket
from simulator.exchange import Exchange
from simulator.faults import Faults
from simulator.instruments import DEFAULT_WEIGHT_LIMIT, SymbolSpec, spec_from_instrument
from simulator.limits import RequestLog, WeightCounter
from simulator.market import Step
from simulator.marketstate import FundingSchedule, SymbolMarket
from simulator.rest import ListenKeys, RestApi
from simulator.series import KlineSeries, ReplaySchedule, series_from_bars
from simulator.streams import StreamHub, serve_connection

T = TypeVar("T")


@dataclass
class SimulatorConfig:
    """What to replay and how.

    ``bars``: what to replay, as ``KlineSeries`` (columnar, what ``simulator.sources`` reads; each carries its
    own history rows) or Nautilus ``Bar`` / ``BinanceBar`` objects (``history`` then holds their past bars),
    or both for different symbols. ``bar_seconds`` is the wall time one bar takes: the bar's length for real
    time (60 for 1m bars), less to accelerate, 0 for as fast as the clients take it. ``rebase_time`` shifts
    the data's timestamps so the replay starts now (a live node sees current times); without it the data's own
    times are sent.
    """

    instruments: Sequence[CryptoPerpetual]
    bars: Sequence[KlineSeries | Bar]
    api_key: str
    api_secret: str
    bar_seconds: float = 60.0
    funding: dict[str, Sequence[tuple[int, Decimal]]] = field(default_factory=dict)
    balance: Decimal = Decimal(10_000)
    default_leverage: int = 20
    host: str = "127.0.0.1"
    port: int = 0
    autostart: bool = True
    rebase_time: bool = True
    weight_limit: int = DEFAULT_WEIGHT_LIMIT
    history: Sequence[Bar] = ()  # Bars before the replay, served by GET /fapi/v1/klines (strategy warm-up)
    captures: Sequence[Capture] = ()  # symbols replayed from a raw WebSocket capture instead of bars
    capture_speed: float = 1.0  # 1 = the capture's own pace

    def __post_init__(self) -> None:
        if not self.api_key or not self.api_secret:
            raise ValueError("api_key and api_secret are required (the simulator checks signatures with them)")
        if self.capture_speed <= 0:
            raise ValueError(f"capture_speed must be > 0, was {self.capture_speed}")
        if self.bar_seconds < 0:
            raise ValueError(f"bar_seconds must be >= 0, was {self.bar_seconds}")
        if not self.instruments:
            raise ValueError("no instruments to simulate")


MINUTE_MS = 60_000


def replay_series(bars: Sequence[KlineSeries | Bar], history: Sequence[Bar] = ()) -> dict[str, KlineSeries]:
    """One series per symbol from what ``SimulatorConfig.bars`` holds (series as they are, Bars converted)."""
    given = [b for b in bars if isinstance(b, KlineSeries)]
    out = series_from_bars([b for b in bars if not isinstance(b, KlineSeries)], history)
    for series in given:
        if series.symbol in out:
            raise ValueError(f"{series.symbol}: given twice (two series, or a series and bars)")
        if series.replayed == 0:
            raise ValueError(f"{series.symbol}: no klines to replay (only history)")
        out[series.symbol] = series
    return out


def replay_shift_ms(now_ms: int, first_open_ms: int, grid_ms: int) -> int:
    """How far to move the data's times so the replay starts now, in whole ``grid_ms`` (the longest bar interval).

    Bars then keep their place on their interval's grid, as on Binance, so the times a strategy keys on (a
    scan every 15 minutes or every hour) still occur; an arbitrary shift in ms would put no bar on them. The
    replay starts less than one bar interval before now.
    """
    return (now_ms - first_open_ms) // grid_ms * grid_ms


class BinanceSimulator:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        specs = {s.symbol: s for s in (spec_from_instrument(i) for i in config.instruments)}
        klines = replay_series(config.bars, config.history)
        captured = {c.symbol: c for c in config.captures}
        both = sorted(set(klines) & set(captured))
        if both:
            raise ValueError(f"symbols given both as bars and as a capture: {both}")
        missing = sorted((set(klines) | set(captured)) - set(specs))
        if missing:
            raise ValueError(f"data for symbols without an instrument: {missing}")
        unpriced = sorted(set(specs) - set(klines) - set(captured))
        if unpriced:
            raise ValueError(f"instruments without bars or capture to replay: {unpriced}")
        self.specs: dict[str, SymbolSpec] = specs
        self.schedule = ReplaySchedule(klines)
        starts = [int(self.schedule.open_times[0])] if len(self.schedule.open_times) else []
        starts += [c.events[0].ts_ms for c in captured.values()]
        first_open = min(starts)
        grid = max([MINUTE_MS] + [s.interval_ms for s in klines.values()])
        shift = replay_shift_ms(int(time.time() * 1000), first_open, grid) if config.rebase_time else 0
        self.markets: dict[str, SymbolMarket] = {
            s: SymbolMarket(specs[s], FundingSchedule(config.funding.get(s, ())), shift, series)
            for s, series in klines.items()
        }
        self._captured = {s: CapturedMarket(specs[s], c, shift) for s, c in captured.items()}
        self.markets.update(self._captured)
        self.faults = Faults()
        self.hub = StreamHub(self.faults.silenced)
        self.request_log = RequestLog()
        self.weights = WeightCounter(config.weight_limit)
        self.listen_keys = ListenKeys()
        self.exchange = Exchange(
            specs,
            self.markets,
            config.balance,
            lambda: int(time.time() * 1000),
            self.hub.send_user,
            config.default_leverage,
            self._send_user_later,
        )
        self.rest = RestApi(
            self.exchange,
            self.markets,
            specs,
            config.api_key,
            config.api_secret,
            self.faults,
            self.weights,
            self.request_log,
            self.listen_keys,
            self._drop_user_connections,
        )
        self.position = 0  # replay ticks done
        self.funding_events: list[tuple[str, int, Decimal]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._replay_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._play: asyncio.Event | None = None
        self.finished: asyncio.Event | None = None
        self.port = 0

    # --- URLs

    @property
    def http_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}"

    # --- lifecycle inside a loop

    async def start_async(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._play = asyncio.Event()
        self.finished = asyncio.Event()
        if self.config.autostart:
            self._play.set()
        app = web.Application()
        app.router.add_get("/stream", self._ws_combined)
        app.router.add_get("/ws", self._ws_raw)
        app.router.add_get("/ws/{name}", self._ws_raw)
        app.router.add_get("/_sim/status", self._control_status)
        app.router.add_get("/_sim/requests", self._control_requests)
        app.router.add_post("/_sim/fault", self._control_fault)
        app.router.add_post("/_sim/replay", self._control_replay)
        app.router.add_route("*", "/{tail:.*}", self.rest.handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        self._replay_task = asyncio.create_task(self._replay())

    def spawn(self, coro: Any) -> "asyncio.Task[Any]":
        """Run a coroutine on the simulator's loop as a task the simulator cancels when it stops (monitors, chaos
        runs); call on the loop."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop_async(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._replay_task is not None:
            self._replay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replay_task
        await self.hub.close(self.hub.market_conns | self.hub.user_conns)
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> "BinanceSimulator":
        await self.start_async()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()

    # --- lifecycle on a background thread

    def start(self) -> "BinanceSimulator":
        started: Future[None] = Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as e:  # surface bind errors etc. to the caller
                started.set_exception(e)
                return
            started.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            loop.close()

        self._thread = threading.Thread(target=run, name="binance-simulator", daemon=True)
        self._thread.start()
        started.result(timeout=30)
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> "BinanceSimulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the simulator's loop (the exchange state lives there) and return its result."""
        assert self._loop is not None, "simulator not started"
        if self._thread is None or threading.current_thread() is self._thread:
            return fn()

        async def wrapper() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout=30)

    def _call_async(self, coro_fn: Callable[[], Any]) -> Any:
        assert self._loop is not None, "simulator not started"
        if self._thread is None:
            return asyncio.ensure_future(coro_fn())
        return asyncio.run_coroutine_threadsafe(coro_fn(), self._loop).result(timeout=30)

    # --- replay

    def play(self) -> None:
        self.call(lambda: self._play.set())  # type: ignore[union-attr]

    def pause(self) -> None:
        self.call(lambda: self._play.clear())  # type: ignore[union-attr]

    @property
    def total_ticks(self) -> int:
        return self.schedule.total_ticks

    async def _replay(self) -> None:
        assert self.finished is not None
        await asyncio.gather(self._replay_bars(), *(self._replay_capture(m) for m in self._captured.values()))
        self.finished.set()

    async def _replay_capture(self, market: CapturedMarket) -> None:
        """Captured messages at their own pace (times ``capture_speed``), trades matched by the exchange."""
        assert self._play is not None
        await self._play.wait()
        data_start = market.capture.events[0].ts_ms
        wall_start = time.monotonic()
        speed = self.config.capture_speed
        hub, symbol = self.hub, market.spec.symbol
        last_mark_second = -1
        for count, (event, step) in enumerate(market.steps()):
            if not self._play.is_set():
                paused = time.monotonic()
                await self._play.wait()
                wall_start += time.monotonic() - paused
            delay = wall_start + (event.ts_ms - data_start) / 1000 / speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif count % 64 == 0:
                await asyncio.sleep(0)  # behind schedule: still let the writers and the REST handlers run
            if event.kind == "depth":
                await hub.publish(symbol, "depth", market.depth_update())
            elif event.kind == "bookTicker":
                await hub.publish(symbol, "bookTicker", market.book_ticker())
            elif step is not None:
                mark_before = market.mark or step.start
                self.exchange.on_step(step, mark_before, market.mark or step.end)
                if hub.wants(symbol, "aggTrade"):
                    await hub.publish(symbol, "aggTrade", market.agg_trade())
                if market.just_closed is not None:
                    closed = market.closed_kline_event(market.just_closed)
                    await hub.publish(symbol, "kline", closed, arg_filter=lambda arg: arg == "1m")
                event_k = market.kline_event()
                if event_k is not None:
                    await hub.publish(symbol, "kline", event_k, arg_filter=lambda arg: arg == "1m")
                if event.ts_ms // 1000 != last_mark_second:  # @markPrice@1s: once a second of data time
                    last_mark_second = event.ts_ms // 1000
                    await hub.publish(symbol, "markPrice", market.mark_price_event())

    async def _replay_bars(self) -> None:
        assert self._play is not None
        tick_s = self.config.bar_seconds / 4
        next_at = time.monotonic()
        for tick in self.schedule.ticks():
            if not self._play.is_set():
                await self._play.wait()
                next_at = time.monotonic()
            for step in tick:
                await self._advance(step)
            self.position += 1
            if tick_s > 0:
                next_at += tick_s
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            else:
                await asyncio.sleep(0)

    async def _advance(self, step: Step) -> None:
        market = self.markets[step.symbol]
        mark_before = market.mark or step.start
        previous_ts = market.data_ts
        market.apply(step)
        self.exchange.on_step(step, mark_before, market.mark or step.end)
        funding_time = market.funding.next_time(previous_ts)
        if previous_ts < funding_time <= market.data_ts:
            rate = market.funding.rate_at(funding_time)
            paid = self.exchange.settle_funding(step.symbol, rate, int(time.time() * 1000))
            self.funding_events.append((step.symbol, funding_time, paid))
        hub, symbol = self.hub, step.symbol
        if hub.wants(symbol, "aggTrade"):
            await hub.publish(symbol, "aggTrade", market.agg_trade())
        if hub.wants(symbol, "bookTicker"):
            await hub.publish(symbol, "bookTicker", market.book_ticker())
        if hub.wants(symbol, "depth"):
            await hub.publish(symbol, "depth", market.depth_update())
        if hub.wants(symbol, "markPrice"):
            mark_event = market.mark_price_event()
            await hub.publish(symbol, "markPrice", mark_event)
            await hub.publish_all_mark([mark_event])
        if hub.wants(symbol, "kline"):
            event = market.kline_event()
            if event is not None:
                interval = event["k"]["i"]
                await hub.publish(symbol, "kline", event, arg_filter=lambda arg: arg == interval)

    # --- faults (Python API; the control endpoint calls the same)

    def drop_connections(self, market: bool = True, user: bool = True) -> int:
        """Close WebSocket connections abruptly (code 1006-like: no close reason); returns how many."""
        return self._call_async(lambda: self.drop_connections_async(market, user))

    async def drop_connections_async(self, market: bool = True, user: bool = True) -> int:
        conns = (self.hub.market_conns if market else set()) | (self.hub.user_conns if user else set())
        return await self.hub.close(conns, code=1011, message=b"simulated drop")

    def silence(self, seconds: float, market: bool = True, user: bool = True) -> None:
        """Send no WebSocket message for ``seconds`` on the market streams, the user stream, or both; what would
        have been sent is lost (the connections stay open)."""
        self.call(lambda: self.faults.silence(seconds, market, user))

    def expire_listen_key(self) -> str | None:
        """Send ``listenKeyExpired`` on the user stream, invalidate the key and close its connections."""
        return self._call_async(self.expire_listen_key_async)

    async def expire_listen_key_async(self) -> str | None:
        key = self.listen_keys.key
        if key is None:
            return None
        self.hub.send_user({"e": "listenKeyExpired", "E": int(time.time() * 1000), "listenKey": key}, key)
        self.listen_keys.close()
        await asyncio.sleep(0.05)  # let the writer flush the event before the close
        await self.hub.close({c for c in self.hub.user_conns if c.listen_key == key})
        return key

    async def inject(self, fault: str, params: dict[str, Any]) -> Any:
        """Apply one fault by name, on the simulator's loop: what ``POST /_sim/fault`` and chaos runs do (the
        names and parameters of the control endpoint; see docs/simulator.md)."""
        f = self.faults
        if fault == "drop_connections":
            return await self.drop_connections_async(bool(params.get("market", True)), bool(params.get("user", True)))
        if fault == "silence":
            return f.silence(float(params["seconds"]), bool(params.get("market", True)), bool(params.get("user", True)))
        if fault == "expire_listen_key":
            return await self.expire_listen_key_async()
        if fault == "throttle":
            status, retry_after = int(params.get("status", 429)), int(params.get("retry_after", 5))
            return f.throttle(status, retry_after, int(params.get("count", 1)))
        if fault == "reject_next_order":
            return f.reject_next(int(params["code"]), str(params.get("target", "any")), int(params.get("count", 1)))
        if fault == "latency":
            duration = params.get("duration")
            return f.set_latency(float(params["seconds"]), None if duration is None else float(duration))
        if fault == "ban":
            return f.ban(float(params["seconds"]))
        if fault == "clear":
            return f.clear()
        raise ValueError(f"unknown fault {fault!r}")

    def throttle(self, status: int = 429, retry_after_s: int = 5, count: int = 1) -> None:
        """Answer the next ``count`` REST requests with 429 (rate limit) or 418 (IP ban) and Retry-After."""
        self.call(lambda: self.faults.throttle(status, retry_after_s, count))

    def reject_next_order(self, code: int, target: str = "any", count: int = 1) -> None:
        """Reject the next ``count`` order requests of ``target`` ("any", "entry", "exit", "stop",
        "stop_cancel"; see ``simulator.faults``) with -2019 (margin), -1111 (precision), -2021 (would trigger
        at once) or -1008 (server busy)."""
        self.call(lambda: self.faults.reject_next(code, target, count))

    def set_latency(self, seconds: float, duration_s: float | None = None) -> None:
        """Delay every REST answer by ``seconds``, for ``duration_s`` (a spike) or until cleared."""
        self.call(lambda: self.faults.set_latency(seconds, duration_s))

    def ban(self, seconds: float) -> None:
        """An IP ban window: every REST request for ``seconds`` gets 418 with Retry-After and the ban's end."""
        self.call(lambda: self.faults.ban(seconds))

    def force_order(self, symbol: str, side: str, quantity: str) -> dict[str, Any]:
        """Publish a liquidation on ``<symbol>@forceOrder`` at the current price (the data has none of its own)."""
        if side not in ("BUY", "SELL"):
            raise ValueError(f"side must be BUY or SELL, not {side!r}")
        market = self.markets.get(symbol.upper())
        if market is None:
            raise ValueError(f"unknown symbol {symbol!r}; simulated: {', '.join(self.markets)}")

        async def run() -> dict[str, Any]:
            spec, price = market.spec, market.last or Decimal(0)
            qty = spec.fmt_qty(Decimal(quantity))
            event = {
                "e": "forceOrder",
                "E": market.now_ms(),
                "o": {
                    "s": spec.symbol,
                    "S": side,
                    "o": "LIMIT",
                    "f": "IOC",
                    "q": qty,
                    "p": spec.fmt_price(price),
                    "ap": spec.fmt_price(price),
                    "X": "FILLED",
                    "l": qty,
                    "z": qty,
                    "T": market.now_ms(),
                },
            }
            await self.hub.publish(spec.symbol, "forceOrder", event)
            return event

        return self._call_async(run)

    def clear_faults(self) -> None:
        self.call(self.faults.clear)

    def _send_user_later(self, event: dict[str, Any], delay_s: float) -> None:
        asyncio.get_running_loop().call_later(delay_s, self.hub.send_user, event)

    def _drop_user_connections(self, key: str) -> None:
        conns = {c for c in self.hub.user_conns if c.listen_key == key}
        asyncio.ensure_future(self.hub.close(conns))

    # --- state for tests and the control endpoint

    def status(self) -> dict[str, Any]:
        def build() -> dict[str, Any]:
            return {
                "tick": self.position,
                "ticks": self.total_ticks,
                "playing": bool(self._play and self._play.is_set()),
                "wallet_balance": str(self.exchange.wallet),
                "funding_paid": str(self.exchange.funding_total),
                "positions": {
                    s: {"amount": str(p.amount), "entry": str(p.entry_price), "leverage": p.leverage}
                    for s, p in self.exchange.positions.items()
                },
                "last": {s: str(m.last) for s, m in self.markets.items()},
                "mark": {s: str(m.mark) for s, m in self.markets.items()},
                "market_connections": len(self.hub.market_conns),
                "user_connections": len(self.hub.user_conns),
                "requests": len(self.request_log.entries),
                "request_weight": self.request_log.total_weight(),
            }

        return self.call(build)

    # --- control endpoints

    async def _ws_combined(self, request: web.Request) -> web.StreamResponse:
        streams = [s for s in request.query.get("streams", "").split("/") if s]
        return await serve_connection(request, self.hub, combined=True, initial=streams, listen_key=None)

    async def _ws_raw(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("name", "")
        key = request.query.get("listenKey") or (name if self.listen_keys.is_valid(name) else None)
        if key is not None:
            if not self.listen_keys.is_valid(key):
                return web.json_response({"code": -1125, "msg": "This listenKey does not exist."}, status=400)
            return await serve_connection(request, self.hub, combined=False, initial=[], listen_key=key)
        return await serve_connection(
            request, self.hub, combined=False, initial=[name] if name else [], listen_key=None
        )

    async def _control_status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status())

    async def _control_requests(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"total_weight": self.request_log.total_weight(), "requests": self.request_log.as_dicts()}
        )

    async def _control_fault(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            result = await self.inject(body["fault"], {k: v for k, v in body.items() if k != "fault"})
        except (KeyError, ValueError, TypeError) as e:
            return web.json_response({"error": str(e)}, status=400)
        return web.json_response({"ok": True, "result": result})

    async def _control_replay(self, request: web.Request) -> web.Response:
        assert self._play is not None
        try:
            action = (await request.json())["action"]
        except (KeyError, ValueError, TypeError):
            return web.json_response({"error": 'body must be {"action": "pause" | "play"}'}, status=400)
        if action == "play":
            self._play.set()
        elif action == "pause":
            self._play.clear()
        else:
            return web.json_response({"error": f"unknown action {action!r}"}, status=400)
        return web.json_response({"ok": True, "tick": self.position})
