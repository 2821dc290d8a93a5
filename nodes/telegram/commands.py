"""Control commands from Telegram -> ControlRequests to the strategy; runs on the node's event-loop thread.

Only allow-listed chats are heard; anything else is logged and ignored without a reply (a reply would confirm
to a stranger that the bot is alive). /flatten needs "/flatten confirm" within the confirm window.
"""

import time
from collections.abc import Callable
from typing import Any

from nodes.telegram.replies import ReplyRenderer
from strategies.control import ControlRequest

SIMPLE_COMMANDS = ("status", "positions", "balance", "daily", "pause", "resume")
Log = Callable[[str, str], None]


def parse(text: str) -> tuple[str, tuple[str, ...]] | None:
    """"/signal@MyBot BTCUSDT long" -> ("signal", ("BTCUSDT", "long")); None for text that is no command."""
    parts = text.strip().split()
    if not parts or not parts[0].startswith("/"):
        return None
    command = parts[0][1:].split("@", 1)[0].lower()
    return command, tuple(parts[1:])


class CommandRouter:
    def __init__(
        self,
        *,
        allowed_chats: frozenset[int],
        replies: ReplyRenderer,
        send_control: Callable[[ControlRequest, int], bool],  # (request, asking chat)
        answer: Callable[[int, str], None],
        log: Log,
        confirm_window_s: float,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._allowed = allowed_chats
        self._replies = replies
        self._send_control = send_control
        self._answer = answer
        self._log = log
        self._window = confirm_window_s
        self._now = now
        self._flatten_asked: dict[int, float] = {}  # chat -> when "/flatten" was sent
        self.ignored = 0

    def handle(self, chat_id: int, text: str) -> None:
        if chat_id not in self._allowed:
            self.ignored += 1
            self._log("warning", f"Ignored Telegram message from chat {chat_id}: not on the allow list")
            return
        parsed = parse(text)
        if parsed is None:
            return
        command, args = parsed
        self._log("info", f"Telegram command /{command} {' '.join(args)} from chat {chat_id}".rstrip())
        if command in SIMPLE_COMMANDS:
            self._request(chat_id, command, ())
        elif command == "flatten":
            self._flatten(chat_id, args)
        elif command == "signal":
            self._signal(chat_id, args)
        else:
            self._answer(chat_id, self._replies.text("help"))

    def _flatten(self, chat_id: int, args: tuple[str, ...]) -> None:
        if [a.lower() for a in args] != ["confirm"]:
            self._flatten_asked[chat_id] = self._now()
            self._answer(chat_id, self._replies.text("flatten_prompt", seconds=f"{self._window:.0f}"))
            return
        asked = self._flatten_asked.pop(chat_id, None)
        if asked is None or self._now() - asked > self._window:
            self._answer(chat_id, self._replies.text("flatten_expired"))
            return
        self._request(chat_id, "flatten", ())

    def _signal(self, chat_id: int, args: tuple[str, ...]) -> None:
        if len(args) != 2 or args[1].lower() not in ("long", "short"):
            self._answer(chat_id, self._replies.text("signal_usage"))
            return
        self._request(chat_id, "signal", (args[0].upper(), args[1].lower()))

    def _request(self, chat_id: int, command: str, args: tuple[str, ...]) -> None:
        def reply(answer: dict[str, Any]) -> None:
            if command == "signal" and "direction" not in answer:
                answer = {**answer, "direction": args[1]}
            self._answer(chat_id, self._replies.answer(command, answer))

        request = ControlRequest(command=command, args=args, reply=reply, source=f"telegram:{chat_id}")
        if not self._send_control(request, chat_id):
            self._answer(chat_id, self._replies.text("unavailable"))
