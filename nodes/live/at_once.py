"""A live engine's own handler called at once when its queue's task would call it next.

Nautilus 1.231's live engines put every message (data, command) on an asyncio queue that a task drains: a turn of
the event loop per hop, behind whatever else is queued by then. On the loop's own thread with the queue empty there
is nothing to overtake, so the item is handled at once, as the backtest's engines do; from another thread, behind
queued items or before the engine runs, it still queues. A failure is handled as the queue's task handles it.
"""

import asyncio
from collections.abc import Callable
from typing import Any


class AtOnceOrQueued:
    """Hands items to ``run`` at once when allowed (see the module's text), else to ``enqueue``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None,
        busy: Callable[[], Any],
        run: Callable[[Any], None],
        enqueue: Callable[[Any], None],
        on_error: Callable[[Exception, str], None],
        kind: str,
    ) -> None:
        self.loop = loop
        self.busy = busy  # truthy: items are queued (the queue holds items, or the engine is not running)
        self.run = run
        self.enqueue = enqueue
        self.on_error = on_error
        self.kind = kind  # the queue task's name for its items in error logs
        self.direct = 0  # handled at once
        self.queued = 0  # through the queue

    def __call__(self, item: Any) -> None:
        if asyncio._get_running_loop() is not self.loop or self.busy():
            self.queued += 1
            self.enqueue(item)
            return
        self.direct += 1
        try:
            self.run(item)
        except Exception as e:  # what the queue's task does with a failure
            self.on_error(e, self.kind)

    @staticmethod
    def queue_only(enqueue: Callable[[Any], None]) -> "AtOnceOrQueued":
        """Everything through the queue (before an engine is attached)."""
        return AtOnceOrQueued(None, lambda: True, enqueue, enqueue, lambda e, kind: None, "")
