"""Open interest for the live strategy: Binance streams none, so it is polled over REST, gently.

``OpenInterestPoller`` asks ``GET /fapi/v1/openInterest`` (weight 1) for one symbol at a time, spreading the
symbols evenly over ``interval_s`` (300 s by default: each symbol at most once per 5 minutes, so 50 symbols
cost 10 weight per minute, 0.4 % of Binance's limit), and publishes each answer as an ``OpenInterest``
the strategy feeds to its open-interest factor. A failed request is logged and skipped; a 429 / 418 pauses
the polling for the ``Retry-After`` Binance sends. Each request waits for room in the process's weight budget
(``nodes/live/weight_budget.py``), so the first round, at the node's start, queues behind the warm-up rather
than adding to its burst. It only runs where the node has a running event loop (live), never in a backtest.
"""

import asyncio
import json
import time

import aiohttp
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import InstrumentId

from factors.inputs import OpenInterest
from nodes.live.task import LiveTaskActor
from nodes.live.weight_budget import IpBanned, budget_for

OPEN_INTEREST_WEIGHT = 1


class OpenInterestPollerConfig(ActorConfig, frozen=True):
    instrument_ids: tuple[str, ...] = ()
    base_url_http: str = "https://fapi.binance.com"
    interval_s: float = 300.0  # each symbol at most once per interval
    timeout_s: float = 10.0


def raw_symbol(instrument_id: str) -> str:
    return instrument_id.split(".")[0].removesuffix("-PERP")


class OpenInterestPoller(LiveTaskActor):
    task_name = "open-interest-poller"
    idle_when_not_live = "open interest is not polled"

    def __init__(self, config: OpenInterestPollerConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self.polled = 0
        self.failed = 0

    def has_work(self) -> bool:
        return bool(self._cfg.instrument_ids)

    async def run_forever(self) -> None:
        spacing = self._cfg.interval_s / len(self._cfg.instrument_ids)
        timeout = aiohttp.ClientTimeout(total=self._cfg.timeout_s)
        async with aiohttp.ClientSession(base_url=self._cfg.base_url_http, timeout=timeout) as session:
            while True:
                for instrument_id in self._cfg.instrument_ids:
                    await asyncio.sleep(max(spacing, await self._poll_one(session, instrument_id)))

    async def _poll_one(self, session: aiohttp.ClientSession, instrument_id: str) -> float:
        """Poll one symbol; returns how long to wait before the next request (Retry-After on 429 / 418)."""
        budget = budget_for(self._cfg.base_url_http)
        try:
            await budget.acquire(OPEN_INTEREST_WEIGHT)
            sent_at = time.time()
            async with session.get("/fapi/v1/openInterest", params={"symbol": raw_symbol(instrument_id)}) as answer:
                text = await answer.text()
                budget.observe(answer.status, dict(answer.headers), text, sent_at)
                if answer.status in (418, 429):
                    wait = float(answer.headers.get("Retry-After", "60"))
                    self.failed += 1
                    self.log.warning(f"open interest: HTTP {answer.status}, polling paused for {wait:.0f} s")
                    return wait
                answer.raise_for_status()
                body = json.loads(text)
            value = float(body["openInterest"])
        except IpBanned as e:
            self.failed += 1
            wait = max(1.0, e.until_ms / 1000 - time.time())
            self.log.warning(f"open interest: {e.line}; polling paused for {wait:.0f} s")
            return wait
        except Exception as e:  # noqa: BLE001 - one bad answer must not end the polling
            self.failed += 1
            self.log.warning(f"open interest for {instrument_id}: {e!r}")
            return 0.0
        self.polled += 1
        if value > 0:
            now = self.clock.timestamp_ns()
            update = OpenInterest(
                instrument_id=InstrumentId.from_str(instrument_id), open_interest=value, ts_event=now, ts_init=now
            )
            self.publish_data(DataType(OpenInterest), update)
        return 0.0
