"""The WebSocket reader threads' batched hand-over to the event loop (``nodes/live/batched_hand_over.py``): every
message runs on the loop, in the order each thread handed it, one wake-up for what came while the loop was busy;
Nautilus's own Rust WebSocket client hands its frames through it."""

import asyncio
import threading
import time
from typing import Any

from aiohttp import web
from nautilus_trader.core.nautilus_pyo3 import WebSocketClient, WebSocketConfig

from nodes.live.batched_hand_over import BatchedHandOver


def test_every_message_runs_on_the_loop_in_each_threads_order() -> None:
    async def run() -> tuple[list[tuple[int, int]], set[int], BatchedHandOver]:
        loop = asyncio.get_running_loop()
        hand_over = BatchedHandOver(loop)
        got: list[tuple[int, int]] = []
        threads_seen: set[int] = set()

        def handle(sender: int, i: int) -> None:
            got.append((sender, i))
            threads_seen.add(threading.get_ident())

        def send(sender: int) -> None:
            for i in range(3000):
                hand_over.call_soon_threadsafe(handle, sender, i)

        senders = [threading.Thread(target=send, args=(n,)) for n in range(4)]
        for t in senders:
            t.start()
        while any(t.is_alive() for t in senders) or len(got) < 12_000:
            await asyncio.sleep(0.001)
        return got, threads_seen, hand_over

    got, threads_seen, hand_over = asyncio.run(run())
    assert threads_seen == {threading.get_ident()}  # the loop's thread only
    for sender in range(4):
        assert [i for s, i in got if s == sender] == list(range(3000))
    assert hand_over.handed == 12_000


def test_what_comes_while_the_loop_is_busy_wakes_it_once() -> None:
    async def run() -> tuple[list[int], BatchedHandOver, list[str]]:
        loop = asyncio.get_running_loop()
        hand_over = BatchedHandOver(loop)
        got: list[int] = []
        errors: list[str] = []
        loop.set_exception_handler(lambda _, context: errors.append(str(context["exception"])))

        def handle(i: int) -> None:
            if i == 50:
                raise ValueError("broken frame")
            got.append(i)

        def send() -> None:
            for i in range(100):
                hand_over.call_soon_threadsafe(handle, i)

        sender = threading.Thread(target=send)
        sender.start()
        sender.join()  # the loop's thread sat in join: all 100 queued before it ran anything
        await asyncio.sleep(0.05)
        return got, hand_over, errors

    got, hand_over, errors = asyncio.run(run())
    assert got == [i for i in range(100) if i != 50]  # the failure reported, the rest ran
    assert errors == ["broken frame"]
    assert hand_over.wakes == 1


def test_nautilus_websocket_client_hands_its_frames_through_it() -> None:
    frames = [f'{{"stream":"btcusdt@bookTicker","data":{{"u":{i}}}}}' for i in range(2000)]

    async def run() -> tuple[list[bytes], BatchedHandOver]:
        async def serve(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            for frame in frames:
                await ws.send_str(frame)
            await asyncio.sleep(2)
            return ws

        app = web.Application()
        app.router.add_get("/ws", serve)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        loop = asyncio.get_running_loop()
        hand_over = BatchedHandOver(loop)
        got: list[bytes] = []
        config = WebSocketConfig(url=f"ws://127.0.0.1:{port}/ws", headers=[], heartbeat=60)
        client: Any = await WebSocketClient.connect(
            loop_=hand_over,
            config=config,
            handler=got.append,
            ping_handler=lambda raw: None,
            post_reconnection=lambda: None,
        )
        deadline = time.monotonic() + 10
        while len(got) < len(frames) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await client.disconnect()
        await runner.cleanup()
        return got, hand_over

    got, hand_over = asyncio.run(run())
    assert [bytes(g) for g in got] == [f.encode() for f in frames]
    assert hand_over.handed >= len(frames)
