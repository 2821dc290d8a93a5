"""WebSocket side: market streams (raw ``/ws/<stream>`` and combined ``/stream?streams=``, with SUBSCRIBE /
UNSUBSCRIBE / LIST_SUBSCRIPTIONS) and user data streams (``/ws?listenKey=`` or ``/ws/<listenKey>``).

Each connection has its own bounded send queue drained by a writer task: a slow client slows the replay
(back-pressure) instead of losing messages, except during a ``silence`` fault, when nothing is sent at all.
"""

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

_encode = msgspec.json.Encoder().encode


def dumps(payload: Any) -> str:
    return _encode(payload).decode()


QUEUE_SIZE = 10_000
MAX_STREAMS_PER_CONNECTION = 1024

# Market stream kinds the replay produces, keyed by the stream-name suffix after "<symbol>@".
_STREAM_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^aggTrade$"), "aggTrade"),
    (re.compile(r"^trade$"), "trade"),
    (re.compile(r"^bookTicker$"), "bookTicker"),
    (re.compile(r"^depth(@(0|100|250|500)ms)?$"), "depth"),
    (re.compile(r"^markPrice(@1s)?$"), "markPrice"),
    (re.compile(r"^kline_(\w+)$"), "kline"),
    (re.compile(r"^forceOrder$"), "forceOrder"),
]


def parse_stream(name: str) -> tuple[str, str, str] | None:
    """``btcusdt@kline_1m`` -> ``("BTCUSDT", "kline", "1m")``; None for names Binance would not accept."""
    if name == "!markPrice@arr" or name == "!markPrice@arr@1s":
        return ("*", "markPrice", "")
    symbol, sep, rest = name.partition("@")
    if not sep or not symbol.isalnum():
        return None
    for pattern, kind in _STREAM_PATTERNS:
        m = pattern.match(rest)
        if m:
            arg = m.group(1) if kind == "kline" else ""
            return (symbol.upper(), kind, arg)
    return None


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    combined: bool
    listen_key: str | None = None
    streams: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    sent: int = 0
    on_sent: Callable[[str], None] | None = None  # called with each message once it is on the wire

    async def writer(self) -> None:
        while True:
            text = await self.queue.get()
            if self.ws.closed:
                return
            try:
                await self.ws.send_str(text)
            except (ConnectionResetError, RuntimeError):
                return
            self.sent += 1
            if self.on_sent is not None:
                self.on_sent(text)


class StreamHub:
    """Who is subscribed to what, and the fan-out of market and user events to them."""

    def __init__(self, is_silenced: Callable[[bool], bool]) -> None:
        self.market_conns: set[Connection] = set()
        self.user_conns: set[Connection] = set()
        self._index: dict[tuple[str, str], dict[Connection, list[str]]] = {}
        self._is_silenced = is_silenced  # is_silenced(user): True while that stream sends nothing
        self.messages_out = 0
        # User-stream events a client was too far behind to take (its connection is closed, as Binance would);
        # market streams never drop: a slow reader slows the replay instead.
        self.dropped = 0
        self.unsent = 0  # messages still queued to a connection when it closed (lost with it)
        # Called with every message a connection has written (benchmarks time what leaves the exchange).
        self.on_sent: Callable[[str], None] | None = None

    # --- subscriptions

    def subscribe(self, conn: Connection, names: list[str]) -> list[str]:
        """Returns the names it refused."""
        bad = []
        for name in names:
            parsed = parse_stream(name)
            if parsed is None or len(conn.streams) >= MAX_STREAMS_PER_CONNECTION:
                bad.append(name)
                continue
            if name in conn.streams:
                continue
            conn.streams[name] = parsed
            self._index.setdefault((parsed[0], parsed[1]), {}).setdefault(conn, []).append(name)
        return bad

    def unsubscribe(self, conn: Connection, names: list[str]) -> None:
        for name in names:
            parsed = conn.streams.pop(name, None)
            if parsed is None:
                continue
            subs = self._index.get((parsed[0], parsed[1]), {})
            if conn in subs:
                subs[conn] = [n for n in subs[conn] if n != name]
                if not subs[conn]:
                    del subs[conn]

    def remove(self, conn: Connection) -> None:
        if conn in self.market_conns or conn in self.user_conns:
            self.unsent += conn.queue.qsize()
        self.unsubscribe(conn, list(conn.streams))
        self.market_conns.discard(conn)
        self.user_conns.discard(conn)

    def wants(self, symbol: str, kind: str) -> bool:
        return bool(self._index.get((symbol, kind))) or (kind == "markPrice" and bool(self._index.get(("*", kind))))

    # --- sending

    async def publish(
        self, symbol: str, kind: str, payload: dict[str, Any], arg_filter: Callable[[str], bool] | None = None
    ) -> None:
        """Send one market event to every connection subscribed to it (combined or raw framing)."""
        if self._is_silenced(False):
            return
        subs = self._index.get((symbol, kind))
        if not subs:
            return
        raw: str | None = None
        for conn, names in list(subs.items()):
            for name in names:
                if arg_filter is not None and not arg_filter(conn.streams[name][2]):
                    continue
                if conn.combined:
                    text = dumps({"stream": name, "data": payload})
                else:
                    raw = raw or dumps(payload)
                    text = raw
                await conn.queue.put(text)
                self.messages_out += 1

    async def publish_all_mark(self, payloads: list[dict[str, Any]]) -> None:
        if self._is_silenced(False) or not payloads:
            return
        for conn, names in list(self._index.get(("*", "markPrice"), {}).items()):
            for name in names:
                data = {"stream": name, "data": payloads} if conn.combined else payloads
                await conn.queue.put(dumps(data))
                self.messages_out += 1

    def send_user(self, event: dict[str, Any], listen_key: str | None = None) -> None:
        if self._is_silenced(True):
            return
        text = dumps(event)
        for conn in list(self.user_conns):
            if listen_key is not None and conn.listen_key != listen_key:
                continue
            try:
                conn.queue.put_nowait(text)
            except asyncio.QueueFull:
                # A user stream this far behind is dead: Binance would drop it too.
                self.dropped += 1
                asyncio.ensure_future(conn.ws.close())
                continue
            self.messages_out += 1

    async def close(self, conns: set[Connection], code: int = 1001, message: bytes = b"") -> int:
        """Close connections; they leave the hub at once, so nothing more is queued to them and the status
        counts only live ones as soon as this returns (not when the close handshake ends)."""
        closed = 0
        for conn in list(conns):
            self.remove(conn)
            if not conn.ws.closed:
                await conn.ws.close(code=code, message=message)
                closed += 1
        return closed


async def serve_connection(
    request: web.Request,
    hub: StreamHub,
    combined: bool,
    initial: list[str],
    listen_key: str | None,
) -> web.WebSocketResponse:
    """Run one WebSocket connection until it closes; answers subscription requests on market connections."""
    ws = web.WebSocketResponse(heartbeat=None, autoping=True)
    await ws.prepare(request)
    conn = Connection(ws=ws, combined=combined, listen_key=listen_key, on_sent=hub.on_sent)
    (hub.user_conns if listen_key else hub.market_conns).add(conn)
    if initial:
        hub.subscribe(conn, initial)
    writer = asyncio.create_task(conn.writer())
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT or listen_key:
                continue
            reply = _handle_request(hub, conn, msg.data)
            await conn.queue.put(json.dumps(reply, separators=(",", ":")))
    finally:
        hub.remove(conn)
        writer.cancel()
    return ws


def _handle_request(hub: StreamHub, conn: Connection, text: str) -> dict[str, Any]:
    try:
        request = json.loads(text)
        method = request["method"]
        request_id = request.get("id")
    except (ValueError, KeyError, TypeError):
        return {"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}, "id": None}
    names = request.get("params") or []
    if method == "SUBSCRIBE":
        if not isinstance(names, list) or hub.subscribe(conn, names):
            return {"error": {"code": 2, "msg": "Invalid request: unknown stream name"}, "id": request_id}
        return {"result": None, "id": request_id}
    if method == "UNSUBSCRIBE":
        hub.unsubscribe(conn, list(names))
        return {"result": None, "id": request_id}
    if method == "LIST_SUBSCRIPTIONS":
        return {"result": list(conn.streams), "id": request_id}
    return {"error": {"code": 2, "msg": f"Invalid request: unknown method {method}"}, "id": request_id}
