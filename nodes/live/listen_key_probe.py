"""The listen key of the user data stream, checked with the exchange: a key that expired unseen is replaced.

A listen key not kept alive for 60 minutes expires; Binance then sends ``listenKeyExpired`` on the user stream and
closes it. When that message is lost (the stream was silent, the connection hung), Nautilus 1.231's Binance client
never learns it: its stream client reconnects with the old key, the exchange refuses every try, and the client
asks for a new key only on that message or after a failed keep-alive, which it sends every 30 minutes. The node
would trade on without seeing its fills, cancels and expiries. The stream client's own flags cannot tell: they
read "active" and "reconnecting" alike before the close, during the refused reconnects and after.

``ListenKeyProbe`` asks the exchange instead: every ``interval_s`` (10 s) it sends the keep-alive
(``PUT /fapi/v1/listenKey``, weight 1: 6 a minute of Binance's 2,400). When Binance answers that the key does not
exist (-1125) or names another key, the client's own resubscribe runs: a new key, a new stream connection,
Nautilus's reconciliation of what was missed, reported as ``NodeEvent("RECONNECTED")`` and tried again when
refused (``nodes/live/stream_watch.py``). Any other failure (a 429, a ban, a timeout) proves nothing: the next
probe asks again. A key expiring unseen thus leaves the node blind for ``interval_s`` at most, plus the renewal.
The REST listen key (HMAC API keys) is probed; an Ed25519 key's user stream runs over Binance's WebSocket API and
is left to Nautilus.
"""

import asyncio
from typing import Any

from nautilus_trader.adapters.binance.common.enums import BinanceErrorCode
from nautilus_trader.adapters.binance.http.error import BinanceError, get_binance_error_code

PROBE_INTERVAL_S = 10.0


def key_is_alive(answer: object, key: str) -> bool:
    """The keep-alive's answer keeps ``key`` alive: Binance names the account's key (when it says)."""
    current = answer.get("listenKey") if isinstance(answer, dict) else None
    return current is None or current == key


class ListenKeyProbe:
    """Probes the listen key of ``client``'s user stream (a Binance execution client) and renews a dead one."""

    def __init__(self, client: Any, interval_s: float = PROBE_INTERVAL_S) -> None:
        self.client = client
        self.ws = client._ws_client
        self.interval_s = interval_s
        self.probes = 0
        self.renewals = 0
        self._task: asyncio.Task | None = None

    @property
    def applies(self) -> bool:
        return bool(self.ws._use_rest_listen_key)

    def start(self) -> None:
        if self.applies and self._task is None:
            self._task = self.client._loop.create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the probe must outlive any one failure
                self.client._log.error(f"listen key probe failed: {e!r}")

    async def check(self) -> bool:
        """Probe the current key once; True when it was dead and a new one was asked for."""
        ws = self.ws
        key = ws._subscription_id
        if key is None or ws._recovery_lock.locked() or not self.client.is_connected:
            return False  # a new key on its way, or none wanted
        self.probes += 1
        alive = await self._key_alive(key)
        if alive is not False or ws._subscription_id != key or ws._recovery_lock.locked():
            return False  # alive, no answer, or renewed meanwhile
        self.renewals += 1
        self.client._log.warning("user data stream: the exchange no longer knows its listen key; asking for a new one")
        await ws._resubscribe()
        return True

    async def _key_alive(self, key: str) -> bool | None:
        """True: the exchange keeps ``key`` alive; False: it does not know it; None: no answer."""
        try:
            answer = await self.ws._http_user.keepalive_listen_key()
        except BinanceError as e:
            if get_binance_error_code(e) == BinanceErrorCode.INVALID_LISTEN_KEY:
                return False
            self.client._log.warning(f"listen key keep-alive not answered: {e.message}")
            return None
        except Exception as e:
            self.client._log.warning(f"listen key keep-alive not answered: {e!r}")
            return None
        return key_is_alive(answer, key)
