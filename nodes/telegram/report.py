"""The backtest report's view of the notifier: the messages a trader would have received, as text."""

from nautilus_trader.backtest.engine import BacktestEngine

from nodes.telegram.actor import TelegramNotifier
from nodes.telegram.sink import RenderedMessage


def notifier_messages(engine: BacktestEngine) -> list[RenderedMessage]:
    """Messages rendered by the first TelegramNotifier of the engine (none when it has no notifier)."""
    for actor in engine.trader.actors():
        if isinstance(actor, TelegramNotifier):
            return list(actor.rendered)
    return []


def messages_section(engine: BacktestEngine, limit: int = 50) -> str:
    """A report section listing the first ``limit`` messages with their event times; "" without a notifier."""
    messages = notifier_messages(engine)
    if not messages:
        return ""
    lines = [f"Telegram messages ({len(messages)})"]
    for message in messages[:limit]:
        sound = " (silent)" if message.silent else ""
        lines.append(f"--- {message.ts[:19].replace('T', ' ')} {message.event}{sound}")
        lines.append(message.text)
    if len(messages) > limit:
        lines.append(f"... {len(messages) - limit} more in the notifier's output file")
    return "\n".join(lines)
