"""An order's way from the strategy's ``submit_order`` to Binance without the waits it does not need.

Stock, Nautilus 1.231's live node puts each command on the risk engine's queue, whose task puts it on the execution
engine's queue, whose task hands it to the execution client, which starts a task for the request: three turns of
the event loop, each behind whatever else is queued by then (at a minute's close: the tick's market data, the
fills), and none before the strategy's handler returns (a scan goes on to its other candidates first). Here, per
engine and client instance (no global patch):

- a command that comes on the loop's thread while the engine's command queue is empty is executed at once, as the
  queue's task would do next (nothing to overtake; a failure is handled as the queue's task handles it). The
  backtest's engines do the same, synchronously; a command from another thread, or behind others, still queues;
- the Binance execution client starts an order's request at once (an eager task: its coroutine runs until the
  request is on its way, then goes on as a task), so the order leaves while the strategy's handler goes on.

Events (accepted, filled, ...) still go through the engines' event queues, in order. The decisions are the
strategy's; only when its orders leave changes.
"""

import asyncio
import functools
from typing import Any

from nautilus_trader.common.enums import LogColor
from nautilus_trader.execution.messages import SubmitOrder

from nodes.live.at_once import AtOnceOrQueued


class DirectCommands(AtOnceOrQueued):
    """The commands of one live engine (risk or execution) executed at once when its queue's task would be next."""

    def __init__(self, engine: Any, endpoint: str) -> None:
        super().__init__(
            loop=engine._loop,
            busy=lambda: engine.cmd_qsize() or not engine.is_running,
            run=engine._execute_command,
            enqueue=engine.execute,
            on_error=engine._handle_queue_exception,
            kind="command",
        )
        self.engine = engine
        self.endpoint = endpoint

    def install(self, msgbus: Any) -> None:
        # The bus holds the engine's own ``execute``, taken when the engine registered its endpoint.
        msgbus.deregister(self.endpoint, self.enqueue)
        msgbus.register(self.endpoint, self)
        self.engine.ats_direct_commands = self


def direct_commands(node: Any) -> list[DirectCommands]:
    """After ``node.build()``: the node's live risk and execution engines execute commands at once."""
    kernel = node.kernel
    installed = []
    for engine, endpoint in ((kernel.risk_engine, "RiskEngine.execute"), (kernel.exec_engine, "ExecEngine.execute")):
        direct = DirectCommands(engine, endpoint)
        direct.install(kernel.msgbus)
        installed.append(direct)
    return installed


def submit_at_once(client: Any) -> None:
    """The execution client's orders start their request at once (see the module's text); on another thread than
    the client's loop, as stock."""
    stock = client.submit_order

    def submit_order(command: SubmitOrder) -> None:
        if asyncio._get_running_loop() is not client._loop:
            stock(command)
            return
        client._log.info(f"Submit {command.order}", LogColor.BLUE)
        name = f"submit_order: {command.order.client_order_id}"
        task = asyncio.Task(client._submit_order(command), loop=client._loop, name=name, eager_start=True)
        task.add_done_callback(functools.partial(client._on_task_completed, None, None, LogColor.NORMAL))
        client._tasks.add(task)

    client.submit_order = submit_order
