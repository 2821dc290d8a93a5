"""An actor whose work is one asyncio task on the live node's event loop (REST polling, an extra stream).

In a backtest there is no running loop: the actor then says why it idles and does nothing.
"""

import asyncio
from collections.abc import Coroutine
from typing import Any

from nautilus_trader.common.actor import Actor


class LiveTaskActor(Actor):
    task_name = "live-task"
    idle_when_not_live = "nothing to do outside a live node"  # completes "no running event loop (not live): "

    _task: asyncio.Task[None] | None = None

    def has_work(self) -> bool:
        return True

    def run_forever(self) -> Coroutine[Any, Any, None]:
        raise NotImplementedError

    def on_start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.log.warning(f"no running event loop (not live): {self.idle_when_not_live}")
            return
        if self.has_work():
            self._task = loop.create_task(self.run_forever(), name=self.task_name)

    def on_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
