"""Telegram notifier: concise trade messages, key events, and an allow-listed control surface."""

from nodes.telegram.actor import TelegramNotifier
from nodes.telegram.config import TelegramNotifierConfig
from nodes.telegram.sink import RenderedMessage, read_messages

__all__ = ["RenderedMessage", "TelegramNotifier", "TelegramNotifierConfig", "read_messages"]
