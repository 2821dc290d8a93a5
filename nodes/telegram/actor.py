"""The Telegram notifier: a Nautilus Actor the trader adds to a node by config.

It subscribes to the strategy's events (strategies/events.py), renders each into one short message, and
either hands it to the Telegram link (live) or writes it to a file (backtest). Commands from allow-listed
chats become ControlRequests sent to the strategy on the node's event-loop thread.
"""

import asyncio
import functools
import queue
from collections.abc import Callable
from datetime import timedelta

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.core.datetime import unix_nanos_to_iso8601
from nautilus_trader.model.data import DataType

from nodes.telegram.commands import CommandRouter
from nodes.telegram.config import TelegramNotifierConfig
from nodes.telegram.credentials import Redactor, quiet_http_loggers, read_chat_ids, read_token
from nodes.telegram.link import TelegramLink
from nodes.telegram.replies import ReplyRenderer
from nodes.telegram.settings import OFF, SILENT, event_key, resolve_event_settings
from nodes.telegram.sink import FileSink, RenderedMessage
from nodes.telegram.templates import Renderer
from strategies.control import CONTROL_ENDPOINT, ControlRequest
from strategies.events import ALL_EVENT_TYPES

_INBOX_TIMER = "telegram-command-inbox"
_ANSWERED_BY_REPLY = frozenset({"paused", "resumed", "signal_refused"})


class TelegramNotifier(Actor):
    def __init__(self, config: TelegramNotifierConfig) -> None:
        super().__init__(config)  # the config checked its own values (TelegramNotifierConfig.__post_init__)
        self._config = config
        self._levels = resolve_event_settings(config.events)
        self._renderer = Renderer(config.language)
        self._replies = ReplyRenderer(config.language)
        self._redact = Redactor("")
        self._topics = [f"data.{DataType(t).topic}" for t in ALL_EVENT_TYPES]
        self._subscribed = False
        self._sink: FileSink | None = None
        self._link: TelegramLink | None = None
        self._router: CommandRouter | None = None
        self._node_loop: asyncio.AbstractEventLoop | None = None
        self._inbox: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._chat_ids: tuple[int, ...] = ()
        self._asking_chat: int | None = None  # set while a Telegram command is inside the strategy
        self.rendered: list[RenderedMessage] = []  # backtest mode: the first keep_rendered, for the report
        self.rendered_total = 0
        self.dropped_events = 0  # events whose rendering failed (logged)

    # ---- lifecycle ----------------------------------------------------------------------------------------

    def on_start(self) -> None:
        if not self._subscribed:
            # Straight on the bus, not subscribe_data: its handler drops data once the actor is stopped, and
            # actors stop before strategies, whose on_stop still publishes (NodeEvent STOPPED, closes).
            for topic in self._topics:
                self.msgbus.subscribe(topic=topic, handler=self._on_event)
            self._subscribed = True
        if self._config.mode == "backtest":
            if self._config.output_path and self._sink is None:
                self._sink = FileSink(self._config.output_path)
            return
        if self._link is None:
            self._start_link()
        if self._router is not None and self._node_loop is None and _INBOX_TIMER not in self.clock.timer_names:
            self.clock.set_timer(
                _INBOX_TIMER, timedelta(seconds=self._config.command_drain_interval_s), callback=self._drain_inbox
            )

    def _start_link(self) -> None:
        cfg = self._config
        token = read_token(cfg.token_env)  # raises naming the variable, never showing a value
        chat_ids = self._chat_ids = read_chat_ids(cfg.chat_ids_env)
        quiet_http_loggers()
        self._redact = Redactor(token)
        on_command: Callable[[int, str], None] | None = None
        if cfg.commands:
            self._router = CommandRouter(
                allowed_chats=frozenset(chat_ids),
                replies=self._replies,
                send_control=self._send_control,
                answer=self._answer,
                log=self._log,
                confirm_window_s=cfg.confirm_window_s,
            )
            on_command = self._from_telegram
            try:
                self._node_loop = asyncio.get_running_loop()  # a live TradingNode starts actors on its loop
            except RuntimeError:
                self._node_loop = None  # commands wait in the inbox for the clock timer (on_start)
        self._link = TelegramLink(
            token=token,
            base_url=cfg.base_url,
            chat_ids=chat_ids,
            queue_size=cfg.queue_size,
            backoff_initial_s=cfg.backoff_initial_s,
            backoff_max_s=cfg.backoff_max_s,
            request_timeout_s=cfg.request_timeout_s,
            dropped_text=self._renderer.dropped,
            log=self._log,
            on_command=on_command,
            poll_timeout_s=cfg.poll_timeout_s,
        )
        self._link.start()
        self._log("info", f"Telegram notifier started: {len(chat_ids)} chat(s), language {cfg.language}")

    def on_stop(self) -> None:
        # The link keeps running: strategies stop after actors and their last events still need sending.
        if _INBOX_TIMER in self.clock.timer_names:
            self.clock.cancel_timer(_INBOX_TIMER)

    def on_dispose(self) -> None:
        if self._link is not None:
            left = self._link.flush(self._config.flush_timeout_s)
            if left:
                self._log("warning", f"Telegram: {left} messages unsent at shutdown")
            self._link.stop()
            self._link = None
        if self._sink is not None:
            self._sink.close()
        if self._subscribed:
            for topic in self._topics:
                self.msgbus.unsubscribe(topic=topic, handler=self._on_event)
            self._subscribed = False

    @property
    def link(self) -> TelegramLink | None:
        return self._link

    @property
    def commands_waiting(self) -> int:
        """Commands received but not yet run (only where the node has no running loop: see config)."""
        return self._inbox.qsize()

    @property
    def commands_ignored(self) -> int:
        return self._router.ignored if self._router is not None else 0

    # ---- events -> messages -------------------------------------------------------------------------------

    def _on_event(self, event: object) -> None:
        # On the trading loop: render and enqueue, nothing that can wait; never raise into the node.
        try:
            key = event_key(event)
            if key is None:
                return
            level = self._levels[key]
            if level == OFF:
                return
            text = self._renderer.render(event)
            if text is None:
                return
            silent = level == SILENT
            if self._config.mode == "backtest":
                ts = unix_nanos_to_iso8601(event.ts_event)  # type: ignore[attr-defined]
                message = RenderedMessage(ts, key, silent, text)
                self.rendered_total += 1
                if len(self.rendered) < self._config.keep_rendered:
                    self.rendered.append(message)
                if self._sink is not None:
                    self._sink.write(message)
            elif self._link is not None:
                self._link.submit(text, silent, self._recipients(key))
        except Exception as exc:
            self.dropped_events += 1
            self._log("error", f"Telegram: could not render {type(event).__name__}: {exc!r}")

    # ---- commands -----------------------------------------------------------------------------------------

    def _from_telegram(self, chat_id: int, text: str) -> None:
        """Called on the link's thread: hop to the node's thread before touching any Nautilus component."""
        assert self._router is not None
        work = functools.partial(self._guarded, functools.partial(self._router.handle, chat_id, text))
        if self._node_loop is not None:
            self._node_loop.call_soon_threadsafe(work)
        else:
            self._inbox.put(work)

    def _drain_inbox(self, _event: TimeEvent) -> None:
        while True:
            try:
                work = self._inbox.get_nowait()
            except queue.Empty:
                return
            work()

    def _guarded(self, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception as exc:  # a bad command must never stop the node
            self._log("error", f"Telegram command failed: {exc!r}")

    def _send_control(self, request: ControlRequest, chat_id: int) -> bool:
        if CONTROL_ENDPOINT not in self.msgbus.endpoints():
            self._log("warning", f"Telegram /{request.command}: no strategy registered at {CONTROL_ENDPOINT}")
            return False
        self._asking_chat = chat_id
        try:
            self.msgbus.send(endpoint=CONTROL_ENDPOINT, msg=request)
        finally:
            self._asking_chat = None
        return True

    def _recipients(self, key: str) -> tuple[int, ...] | None:
        """All chats, except that the chat whose command caused a pause/resume/refusal gets the command's
        answer instead of the same news twice; the other chats still hear about it."""
        if self._asking_chat is None or key not in _ANSWERED_BY_REPLY or self._link is None:
            return None
        return tuple(c for c in self._chat_ids if c != self._asking_chat)

    def _answer(self, chat_id: int, text: str) -> None:
        if self._link is not None:
            self._link.submit(text, silent=False, chat_ids=(chat_id,))

    def _log(self, level: str, message: str) -> None:
        getattr(self.log, level)(self._redact(message))
