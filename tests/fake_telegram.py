"""A fake Telegram Bot API server on loopback, for tests that drive python-telegram-bot over real HTTP.

    with FakeTelegram(token) as tg:              # starts on a free 127.0.0.1 port, its own thread and loop
        Bot(token, base_url=tg.base_url)          # "http://127.0.0.1:PORT/bot"
        tg.inject(Fault(429, retry_after=1), Fault(500))   # the next sendMessage calls fail like this
        tg.go_down(); tg.come_back()              # stop listening and drop connections / listen again
        tg.push_message(chat_id, "/status")       # an update for getUpdates (long polling honoured)
        tg.wait_for_messages(3); tg.sent          # what sendMessage received, incl. disable_notification

Only the methods the project uses are served: sendMessage, getUpdates, getMe; anything else answers 404 like
Telegram's "Not Found". A wrong token answers 401.
"""

import asyncio
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Fault:
    """One failed answer: an HTTP status, optionally Telegram's retry_after (429)."""

    status: int
    retry_after: int | None = None
    method: str = "sendMessage"


@dataclass(frozen=True)
class SentMessage:
    chat_id: int
    text: str
    disable_notification: bool
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Served:
    method: str
    status: int
    at: float


def _bool(value: Any) -> bool:
    return value in (True, "true", "True", "1", 1)


class FakeTelegram:
    def __init__(self, token: str, host: str = "127.0.0.1") -> None:
        self.token = token
        self.host = host
        self.port = 0
        self.sent: list[SentMessage] = []
        self.served: list[Served] = []
        self._faults: deque[Fault] = deque()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._lock = threading.Lock()
        self._down = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-telegram", daemon=True)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._new_update: asyncio.Condition | None = None

    # ---- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> "FakeTelegram":
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._call(self._runner.cleanup())
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> "FakeTelegram":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/bot"

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _start(self) -> None:
        self._new_update = asyncio.Condition()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        if self.port == 0:
            server = self._site._server  # the only way aiohttp exposes the bound port
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]

    # ---- fault injection ----------------------------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def faults_left(self) -> int:
        with self._lock:
            return len(self._faults)

    def go_down(self) -> None:
        """Stop listening (new connections are refused) and cut kept-alive ones on their next request."""
        self._down = True
        if self._site is not None:
            self._call(self._site.stop())
            self._site = None

    def come_back(self) -> None:
        self._down = False
        self._call(self._listen())

    # ---- updates for getUpdates ---------------------------------------------------------------------------

    def push_message(self, chat_id: int, text: str, user_id: int | None = None, date: float | None = None) -> int:
        update_id = next(self._update_ids)
        update = {
            "update_id": update_id,
            "message": {
                "message_id": next(self._message_ids),
                "date": int(time.time() if date is None else date),
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": user_id or chat_id, "is_bot": False, "first_name": "Trader"},
                "text": text,
                "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
                if text.startswith("/")
                else [],
            },
        }
        self._call(self._add_update(update))
        return update_id

    async def _add_update(self, update: dict[str, Any]) -> None:
        assert self._new_update is not None
        async with self._new_update:
            self._updates.append(update)
            self._new_update.notify_all()

    def pending_updates(self) -> int:
        return len(self._updates)

    # ---- what was received --------------------------------------------------------------------------------

    def texts(self, chat_id: int | None = None) -> list[str]:
        with self._lock:
            return [m.text for m in self.sent if chat_id is None or m.chat_id == chat_id]

    def wait_for_messages(self, count: int, timeout: float = 10.0, chat_id: int | None = None) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            texts = self.texts(chat_id)
            if len(texts) >= count:
                return texts
            time.sleep(0.02)
        raise AssertionError(f"expected {count} messages within {timeout} s, got {len(self.texts(chat_id))}")

    # ---- the API ------------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if self._down:
            if request.transport is not None:
                request.transport.close()  # like a host that went away: no answer at all
            self.served.append(Served(method, 0, time.monotonic()))
            return web.Response(status=503)  # never reaches the client: its connection is gone
        if request.match_info["token"] != self.token:
            return self._error(method, 401, "Unauthorized")
        params = await self._params(request)
        fault = self._take_fault(method)
        if fault is not None:
            extra = {}
            if fault.retry_after is not None:
                extra["parameters"] = {"retry_after": fault.retry_after}
            description = HTTPStatus(fault.status).phrase
            return self._error(method, fault.status, description, **extra)
        if method == "sendMessage":
            return self._send_message(params)
        if method == "getUpdates":
            return await self._get_updates(params)
        if method == "getMe":
            bot_id = int(self.token.split(":")[0])
            bot = {"id": bot_id, "is_bot": True, "first_name": "ats", "username": "ats_bot"}
            return self._ok(method, bot)
        return self._error(method, 404, "Not Found")

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return dict(await request.json())
        return {key: value for key, value in (await request.post()).items() if isinstance(value, str)}

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            if self._faults and self._faults[0].method == method:
                return self._faults.popleft()
        return None

    def _send_message(self, params: dict[str, Any]) -> web.Response:
        chat_id = int(params["chat_id"])
        text = str(params["text"])
        with self._lock:
            self.sent.append(SentMessage(chat_id, text, _bool(params.get("disable_notification"))))
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "text": text,
        }
        return self._ok("sendMessage", message)

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        assert self._new_update is not None
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        # An offset confirms every earlier update, as on Telegram.
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and timeout > 0:
            async with self._new_update:
                try:
                    await asyncio.wait_for(self._new_update.wait(), timeout)
                except TimeoutError:
                    pass
        return self._ok("getUpdates", [u for u in self._updates if u["update_id"] >= offset])

    def _ok(self, method: str, result: Any) -> web.Response:
        self.served.append(Served(method, 200, time.monotonic()))
        return web.json_response({"ok": True, "result": result})

    def _error(self, method: str, status: int, description: str, **extra: Any) -> web.Response:
        self.served.append(Served(method, status, time.monotonic()))
        body = {"ok": False, "error_code": status, "description": description, **extra}
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def main(argv: list[str] | None = None) -> int:
    """``uv run python -m tests.fake_telegram [--port 8081] [--chat 1]``: a fake Bot API on loopback for a rehearsal.

    Prints every message the node sends; each line typed is sent to the node as a message from the chat (e.g.
    ``/status``). Point the notifier at it with ``config.base_url = "http://127.0.0.1:8081/bot"`` and set
    ``TELEGRAM_BOT_TOKEN`` to the token printed (any token the server is started with) and ``TELEGRAM_CHAT_IDS``.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m tests.fake_telegram", description=main.__doc__)
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--chat", type=int, default=1, help="the chat id the typed messages come from")
    parser.add_argument("--token", default="1:rehearsal", help="the bot token the server accepts")
    args = parser.parse_args(argv)
    server = FakeTelegram(args.token)
    server.port = args.port
    with server:
        print(f"fake Bot API at {server.base_url} (token {args.token}, chat {args.chat}); type commands, Ctrl-D ends")

        def show() -> None:
            printed = 0
            while True:
                texts = server.texts()
                for text in texts[printed:]:
                    print(f"--- bot:\n{text}", flush=True)
                printed = len(texts)
                time.sleep(0.2)

        threading.Thread(target=show, daemon=True).start()
        for line in sys.stdin:
            if line.strip():
                server.push_message(args.chat, line.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
