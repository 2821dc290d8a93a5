"""The strategy's control entry points, reachable over the message bus.

The Telegram actor (and the live command line) never holds a reference to the strategy: it sends a
``ControlRequest`` to ``CONTROL_ENDPOINT`` with ``msgbus.send``, on the node's event-loop thread, and the strategy
answers through ``request.reply`` with a plain dict. So commands act through the strategy's own entry points and
the same risk checks, in a backtest and live alike.

Commands and their answers (dict keys):
- "status":    {"mode", "paused", "equity", "daily_pnl", "positions": [position dicts]}
- "positions": {"positions": [{"instrument", "direction", "quantity", "entry", "stop", "tp1", "tp2",
                 "tp1_done", "unrealized_pnl", "price_precision", "size_precision"}]}
- "balance":   {"currency", "total", "free", "locked"}
- "daily":     {"date", "realized_pnl", "unrealized_pnl", "total", "limit", "limit_hit", "trades"}
- "pause" / "resume": {"paused": bool}
- "flatten":   {"closed": [instrument ids], "cancelled_orders": int}
- "signal":    args = (SYMBOL, "long" | "short"); {"accepted": bool, "reason": str, "instrument": str}
Every answer may instead be {"error": "what went wrong"}.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CONTROL_ENDPOINT = "ats.control"
COMMANDS = ("status", "positions", "balance", "daily", "pause", "resume", "flatten", "signal")


@dataclass(frozen=True)
class ControlRequest:
    command: str
    args: tuple[str, ...] = ()
    reply: Callable[[dict[str, Any]], None] = field(default=lambda answer: None)
    source: str = ""  # who asked, e.g. "telegram:12345", for the log
