"""Telegram notifier: concise trade messages, key events, and an allow-listed control surface."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nodes.telegram.actor import TelegramNotifier
    from nodes.telegram.config import TelegramNotifierConfig
    from nodes.telegram.sink import RenderedMessage, read_messages

__all__ = ["RenderedMessage", "TelegramNotifier", "TelegramNotifierConfig", "read_messages"]
_WHERE = {
    "TelegramNotifier": "nodes.telegram.actor",
    "TelegramNotifierConfig": "nodes.telegram.config",
    "RenderedMessage": "nodes.telegram.sink",
    "read_messages": "nodes.telegram.sink",
}


def __getattr__(name: str) -> Any:
    # Imported on first use: a backtest report reads nodes.telegram.report without loading python-telegram-bot.
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'nodes.telegram' has no attribute {name!r}")
