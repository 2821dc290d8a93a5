"""The backtest report's view of the notifier: the messages a trader would have received, as text."""

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nautilus_trader.backtest.engine import BacktestEngine

    from nodes.telegram.actor import TelegramNotifier
    from nodes.telegram.sink import RenderedMessage


def first_notifier(engine: "BacktestEngine") -> "TelegramNotifier | None":
    actor = sys.modules.get("nodes.telegram.actor")
    if actor is None:  # never imported, so no notifier was built: the report need not load python-telegram-bot
        return None
    return next((a for a in engine.trader.actors() if isinstance(a, actor.TelegramNotifier)), None)


def notifier_messages(engine: "BacktestEngine") -> "list[RenderedMessage]":
    """Messages kept by the first TelegramNotifier of the engine (none when it has no notifier)."""
    notifier = first_notifier(engine)
    return list(notifier.rendered) if notifier is not None else []


def messages_section(engine: "BacktestEngine", limit: int = 50) -> str:
    """A report section listing the first ``limit`` messages with their event times; "" without a notifier."""
    notifier = first_notifier(engine)
    if notifier is None or not notifier.rendered:
        return ""
    messages, total = notifier.rendered, notifier.rendered_total
    lines = [f"Telegram messages ({total})"]
    for message in messages[:limit]:
        sound = " (silent)" if message.silent else ""
        lines.append(f"--- {message.ts[:19].replace('T', ' ')} {message.event}{sound}")
        lines.append(message.text)
    if total > limit:
        lines.append(f"... {total - limit} more in the notifier's output file")
    return "\n".join(lines)
