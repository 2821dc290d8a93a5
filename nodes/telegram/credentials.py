"""Bot token and allowed chats come from the environment; the token is redacted from anything logged."""

import logging
import os
from collections.abc import Mapping


class TelegramConfigError(RuntimeError):
    """A required setting is missing or malformed; the message names the variable, never its value."""


def read_token(env_name: str, environ: Mapping[str, str] | None = None) -> str:
    token = (os.environ if environ is None else environ).get(env_name, "").strip()
    if not token:
        raise TelegramConfigError(f"Telegram bot token missing: set the environment variable {env_name}")
    return token


def read_chat_ids(env_name: str, environ: Mapping[str, str] | None = None) -> tuple[int, ...]:
    raw = (os.environ if environ is None else environ).get(env_name, "").strip()
    if not raw:
        raise TelegramConfigError(
            f"Telegram chat ids missing: set the environment variable {env_name} (comma separated)"
        )
    try:
        return tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise TelegramConfigError(f"{env_name} must hold comma separated integer chat ids") from None


class Redactor:
    """Replaces the token (and its URL-encoded form) in text headed for a log."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, text: object) -> str:
        message = str(text)
        if self._token:
            for form in (self._token, self._token.replace(":", "%3A")):
                message = message.replace(form, "<token>")
        return message


def quiet_http_loggers() -> None:
    """httpx logs every request URL at INFO and python-telegram-bot logs its base URL at DEBUG: both hold
    the token, so keep them at WARNING whatever the root logger's level."""
    for name in ("httpx", "httpcore", "telegram"):
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
