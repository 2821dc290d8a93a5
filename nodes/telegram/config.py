"""The notifier's configuration; the trader adds the actor to a node with it (or an ImportableActorConfig)."""

from nautilus_trader.common.config import ActorConfig

TELEGRAM_API_URL = "https://api.telegram.org/bot"
TELEGRAM_MODES = ("live", "backtest")


class TelegramNotifierConfig(ActorConfig, frozen=True):
    """
    mode: "live" sends over the network; "backtest" renders the same messages to ``output_path`` (JSON lines)
        and never touches the network.
    language: "zh" (the original design's wording) or "en".
    events: per-event level overrides, e.g. {"node_started": "off", "tp1": "silent"} (keys: settings.py).
    queue_size: messages waiting while Telegram is unreachable; beyond it the oldest are dropped and counted,
        and the count is announced once Telegram answers again.
    backoff_initial_s / backoff_max_s: retry delay after a network error or 5xx, doubling up to the cap;
        a 429 waits Telegram's ``retry_after`` instead.
    keep_rendered: backtest mode keeps the first this many messages in memory for the report (the file has all).
    base_url: the Bot API root the token is appended to; tests point it at a loopback fake server.
    token_env / chat_ids_env: environment variable names: the bot token, and the allowed chat
        ids (comma separated). Messages go to those chats, and only they may send commands.
    commands: poll Telegram for the control commands (live mode only).
    poll_timeout_s: getUpdates long-poll timeout.
    command_drain_interval_s: where the node has no running asyncio loop (a BacktestEngine driven in live
        mode by tests), commands wait in an inbox drained by a clock timer at this interval.
    confirm_window_s: how long "/flatten confirm" is accepted after "/flatten".
    flush_timeout_s: how long dispose waits for queued messages before giving up (and logging how many).
    """

    mode: str = "live"
    language: str = "zh"
    events: dict[str, str] | None = None
    queue_size: int = 200
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    request_timeout_s: float = 10.0
    base_url: str = TELEGRAM_API_URL
    output_path: str | None = None
    keep_rendered: int = 1000
    token_env: str = "TELEGRAM_BOT_TOKEN"
    chat_ids_env: str = "TELEGRAM_CHAT_IDS"
    commands: bool = True
    poll_timeout_s: int = 20
    command_drain_interval_s: float = 60.0
    confirm_window_s: float = 60.0
    flush_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        # Checked when the config is built or parsed (``ats`` reads it before anything starts): a typo in a
        # language or an event level fails at once instead of silencing messages.
        from nodes.telegram.settings import resolve_event_settings
        from nodes.telegram.templates import LANGUAGES

        if self.mode not in TELEGRAM_MODES:
            raise ValueError(f"mode = {self.mode!r}: one of {', '.join(TELEGRAM_MODES)}")
        if self.language not in LANGUAGES:
            raise ValueError(f"language = {self.language!r}: one of {', '.join(LANGUAGES)}")
        resolve_event_settings(self.events)
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url = {self.base_url!r}: an http(s) URL like {TELEGRAM_API_URL}")
        for name in ("queue_size", "backoff_initial_s", "backoff_max_s", "request_timeout_s", "keep_rendered"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} = {getattr(self, name)!r}: must be positive")
        for name in ("poll_timeout_s", "command_drain_interval_s", "confirm_window_s", "flush_timeout_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} = {getattr(self, name)!r}: must not be negative")
