"""The network side: a bounded outbox drained in order by a sender task, and the command poller.

Both run on a dedicated asyncio loop in a daemon thread, so the trading loop only ever appends to the outbox
(a lock, a deque append, one ``call_soon_threadsafe``): a slow, failing or absent Telegram cannot block or
slow it, and nothing here can raise into the node. The pattern behaves the same in a backtest and live, where
``run_in_executor`` would run inline in a backtest.
"""

import asyncio
import datetime as dt
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from telegram import Bot
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

Log = Callable[[str, str], None]  # (level, message): "info" | "warning" | "error"
MAX_MESSAGE_CHARS = 4096
STALE_GRACE_S = 10.0  # commands older than the link's start by more than this are not acted upon


@dataclass(frozen=True)
class Outbound:
    chat_id: int
    text: str
    silent: bool = False  # Telegram's disable_notification


class BoundedOutbox:
    """FIFO shared by the trading thread (put) and the sender (take). Beyond the bound the OLDEST messages go:
    during a long outage the latest state matters most, and every drop is counted for the notice."""

    def __init__(self, bound: int) -> None:
        if bound < 1:
            raise ValueError("queue_size must be at least 1")
        self._bound = bound
        self._items: deque[Outbound] = deque()
        self._lock = threading.Lock()
        self._unreported = 0
        self.dropped_total = 0

    def put(self, item: Outbound) -> None:
        with self._lock:
            self._items.append(item)
            while len(self._items) > self._bound:
                self._items.popleft()
                self._unreported += 1
                self.dropped_total += 1

    def take(self) -> Outbound | None:
        with self._lock:
            return self._items.popleft() if self._items else None

    def take_dropped(self) -> int:
        """How many were dropped since last asked; the caller announces them."""
        with self._lock:
            count, self._unreported = self._unreported, 0
            return count

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


@dataclass
class LinkStats:
    sent: int = 0
    retries: int = 0
    failed: int = 0  # refused by Telegram for good (bad request, forbidden, invalid token)


class TelegramLink:
    """Owns the Bot, the sender task and (optionally) the getUpdates poller, on its own loop and thread."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        chat_ids: tuple[int, ...],
        queue_size: int,
        backoff_initial_s: float,
        backoff_max_s: float,
        request_timeout_s: float,
        dropped_text: Callable[[int], str],
        log: Log,
        on_command: Callable[[int, str], None] | None = None,
        poll_timeout_s: int = 20,
    ) -> None:
        self._token = token
        self._base_url = base_url
        self._chat_ids = chat_ids
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._timeout = request_timeout_s
        self._dropped_text = dropped_text
        self._log = log
        self._on_command = on_command
        self._poll_timeout = poll_timeout_s
        self.outbox = BoundedOutbox(queue_size)
        self.stats = LinkStats()
        self._inflight: Outbound | None = None
        self._started_at = time.time()
        self._loop = asyncio.new_event_loop()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="telegram-link", daemon=True)

    # ---- called from the trading thread -------------------------------------------------------------------

    def start(self) -> None:
        self._started_at = time.time()
        self._thread.start()

    def submit(self, text: str, silent: bool = False, chat_ids: tuple[int, ...] | None = None) -> None:
        if len(text) > MAX_MESSAGE_CHARS:  # Telegram refuses longer texts (400), e.g. /status with many positions
            text = text[: MAX_MESSAGE_CHARS - 1] + "…"
        for chat_id in chat_ids if chat_ids is not None else self._chat_ids:
            self.outbox.put(Outbound(chat_id, text, silent))
        self._poke(self._wake)

    def pending(self) -> int:
        return len(self.outbox) + (1 if self._inflight is not None else 0)

    def flush(self, timeout_s: float) -> int:
        """Wait until everything queued is sent (or refused); returns how many are still waiting."""
        deadline = time.monotonic() + timeout_s
        while self.pending() and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.pending()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._poke(self._stopping)
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _poke(self, event: asyncio.Event) -> None:
        try:
            self._loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # loop already closed: nothing left to wake
            pass

    # ---- the link's own thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        except Exception as exc:  # never let the link take anything else down; say why it stopped
            self._log("error", f"Telegram link stopped: {type(exc).__name__}: {exc}")
        finally:
            self._loop.close()

    async def _main(self) -> None:
        send_request = HTTPXRequest(
            connection_pool_size=2,
            connect_timeout=self._timeout,
            read_timeout=self._timeout,
            write_timeout=self._timeout,
            pool_timeout=self._timeout,
        )
        poll_request = HTTPXRequest(
            connection_pool_size=1,
            connect_timeout=self._timeout,
            read_timeout=self._poll_timeout + self._timeout,
        )
        # No bot.initialize(): it calls getMe, and the link must start even while Telegram is unreachable.
        bot = Bot(
            self._token, base_url=self._base_url, request=send_request, get_updates_request=poll_request
        )
        tasks = [asyncio.create_task(self._drain(bot))]
        if self._on_command is not None:
            tasks.append(asyncio.create_task(self._poll(bot)))
        await self._stopping.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for request in (send_request, poll_request):
            await request.shutdown()

    def _next(self) -> Outbound | None:
        if self._inflight is None:
            self._inflight = self.outbox.take()
        return self._inflight

    async def _drain(self, bot: Bot) -> None:
        while True:
            item = self._next()
            if item is None:
                self._wake.clear()
                if len(self.outbox) == 0:
                    await self._wake.wait()
                continue
            dropped = self.outbox.take_dropped()
            if dropped:
                # The notice goes where the gap is: after the oldest message that survived, before the rest.
                for chat_id in self._chat_ids:
                    await self._deliver(bot, Outbound(chat_id, self._dropped_text(dropped)))
                self._log("warning", f"Telegram outage: {dropped} messages dropped beyond the queue bound")
            await self._deliver(bot, item)
            self._inflight = None

    async def _deliver(self, bot: Bot, item: Outbound) -> None:
        """Send one message, retrying until Telegram accepts or refuses it for good."""
        backoff = self._backoff_initial
        while True:
            try:
                await bot.send_message(chat_id=item.chat_id, text=item.text, disable_notification=item.silent)
                self.stats.sent += 1
                return
            except RetryAfter as exc:
                delay = _retry_after_s(exc)
                self._log("warning", f"Telegram 429: retrying after {delay:.1f} s")
            except BadRequest as exc:  # a NetworkError subclass, but retrying cannot fix it
                self._give_up(item, exc)
                return
            except NetworkError as exc:  # connection refused, timeouts, 5xx
                delay = backoff
                backoff = min(backoff * 2, self._backoff_max)
                self._log("warning", f"Telegram unreachable ({exc}); retrying in {delay:.1f} s")
            except TelegramError as exc:  # forbidden, invalid token, chat migrated: permanent
                self._give_up(item, exc)
                return
            self.stats.retries += 1
            await asyncio.sleep(delay)

    def _give_up(self, item: Outbound, exc: Exception) -> None:
        self.stats.failed += 1
        self._log("error", f"Telegram refused a message to chat {item.chat_id}: {type(exc).__name__}: {exc}")

    async def _poll(self, bot: Bot) -> None:
        assert self._on_command is not None
        offset: int | None = None
        backoff = self._backoff_initial
        while True:
            try:
                updates = await bot.get_updates(
                    offset=offset, timeout=self._poll_timeout, allowed_updates=["message"]
                )
                backoff = self._backoff_initial
            except RetryAfter as exc:
                await asyncio.sleep(_retry_after_s(exc))
                continue
            except TelegramError as exc:
                self._log("warning", f"Telegram getUpdates failed ({type(exc).__name__}: {exc})")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max)
                continue
            for update in updates:
                offset = update.update_id + 1
                message = update.effective_message
                if message is None or not message.text or update.effective_chat is None:
                    continue
                if message.date.timestamp() < self._started_at - STALE_GRACE_S:
                    # Typed while the node was down: a /pause or /signal from hours ago must not act now.
                    self._log("warning", f"Ignored a Telegram command sent before start: {message.text[:40]}")
                    continue
                try:
                    self._on_command(update.effective_chat.id, message.text)
                except Exception as exc:  # e.g. the node's loop already closed at shutdown: keep polling
                    self._log("error", f"Telegram command not delivered to the node: {exc!r}")


def _retry_after_s(exc: RetryAfter) -> float:
    # PTB 22 warns on every read while retry_after migrates from int to timedelta; both are handled.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
