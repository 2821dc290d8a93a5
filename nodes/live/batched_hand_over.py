"""The WebSocket reader threads' hand-over of each message to the event loop, batched.

Nautilus 1.231's WebSocket client (Rust) reads frames on its own threads and hands each to Python with
``loop.call_soon_threadsafe(handler, frame)`` on the loop it was given. Stock, each message is then a loop
handle of its own and a byte written to the loop's wake-up socket (a system call made while the reader thread
holds the GIL, which the loop thread waits for), and a turn of the loop's selector to read it back: 600 times in a
200-symbol close burst. Given this stand-in as its loop instead, a reader thread appends the message to a queue
and wakes the loop only when the queue was empty; the loop then runs the queued messages in one callback, in the
order they came. Messages that arrive while it runs wait for its next turn, behind whatever else the loop has
ready then, as they would have stock (a loop turn runs only what was ready when it began). Everything else is
the real loop's.
"""

import asyncio
import threading
from collections.abc import Callable
from typing import Any


class BatchedHandOver:
    """An event loop, to a WebSocket client, whose ``call_soon_threadsafe`` batches (see the module's text)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()  # several reader threads append; the loop's thread takes
        self._queued: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._scheduled = False  # a drain is due on the loop: no need to wake it
        self.wakes = 0  # the times a reader thread woke the loop
        self.handed = 0  # callbacks run

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> None:
        with self._lock:
            self._queued.append((callback, args))
            if self._scheduled:
                return
            self._scheduled = True
            self.wakes += 1
        self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            batch, self._queued = self._queued, []
        for callback, args in batch:
            try:
                callback(*args)
            except Exception as e:  # as the loop reports a failed callback: logged, the next one runs
                self._loop.call_exception_handler({"message": f"Exception in callback {callback!r}", "exception": e})
        self.handed += len(batch)
        with self._lock:
            if not self._queued:
                self._scheduled = False
                return
        # what came meanwhile: at the loop's next turn, behind what it has ready now
        self._loop.call_soon(self._drain)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)
