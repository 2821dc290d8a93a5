"""Liquidations for the live strategy: Nautilus's Python Binance adapter has no ``forceOrder`` stream, so this
actor reads it itself.

``LiquidationStream`` opens one combined-stream WebSocket, ``<base_url_ws>/stream?streams=<s>@forceOrder/...``,
for the configured symbols only (Binance and the loopback simulator both serve it; the simulator has no
``!forceOrder@arr``). Each forced order is published as a ``LiquidationUpdate`` the strategy feeds to its
liquidation factor (Q), and every connect or loss as a ``LiquidationFeedStatus``, so a quiet live feed reads 0
and a lost one "not available". A malformed message is logged and skipped; a dropped connection is retried
with a doubling delay. It only runs where the node has a running event loop (live), never in a backtest.
"""

import asyncio
import json
import math
from dataclasses import dataclass

import aiohttp
from nautilus_trader.adapters.binance.common.enums import BinanceAccountType, BinanceEnvironment
from nautilus_trader.adapters.binance.common.urls import get_ws_base_url
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.model.data import DataType
from nautilus_trader.model.identifiers import InstrumentId

from factors.inputs import LiquidationFeedStatus, LiquidationUpdate
from nodes.live.open_interest import raw_symbol
from nodes.live.task import LiveTaskActor

SIDES = ("BUY", "SELL")


class LiquidationStreamConfig(ActorConfig, frozen=True):
    instrument_ids: tuple[str, ...] = ()
    base_url_ws: str = "wss://fstream.binance.com/market"  # Nautilus 1.231's USDT-M market-stream base
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 60.0
    heartbeat_s: float = 30.0  # ping interval: a silent dead connection is noticed, not waited on forever


@dataclass(frozen=True)
class ForceOrder:
    symbol: str  # Binance symbol, e.g. "BTCUSDT"
    side: str  # "SELL" = a long was liquidated
    quantity: float
    price: float
    ts_ms: int


def parse_force_order(text: str) -> ForceOrder:
    """One ``forceOrder`` event, raw or in the combined stream's ``{"stream": .., "data": ..}`` frame.

    Raises ValueError (or KeyError / TypeError) on anything that is not a usable forced order.
    """
    message = json.loads(text)
    event = message["data"] if "data" in message else message
    if event.get("e") != "forceOrder":
        raise ValueError(f"not a forceOrder event: {event.get('e')!r}")
    order = event["o"]
    side = order["S"]
    if side not in SIDES:
        raise ValueError(f"side {side!r} is neither BUY nor SELL")
    quantity = float(order["q"])
    # ``ap`` is the average fill price; an unfilled order reports 0 there, its limit price in ``p``.
    price = float(order["ap"]) or float(order.get("p", 0))
    if not (math.isfinite(quantity) and math.isfinite(price) and quantity > 0 and price > 0):
        raise ValueError(f"quantity {order['q']!r} and price {order['ap']!r} must be positive")
    return ForceOrder(str(order["s"]).upper(), side, quantity, price, int(order.get("T") or event["E"]))


def ws_base_url(mode: str, override: str | None) -> str:
    """The market-stream base the node's data client uses too: the config's ``base_url_ws`` (the simulator),
    else Binance's for the mode (``paper`` reads mainnet data)."""
    if override:
        return override
    environment = BinanceEnvironment.TESTNET if mode == "testnet" else BinanceEnvironment.LIVE
    return get_ws_base_url(BinanceAccountType.USDT_FUTURES, environment, is_us=False)


def stream_url(base_url_ws: str, instrument_ids: tuple[str, ...]) -> str:
    streams = "/".join(f"{raw_symbol(i).lower()}@forceOrder" for i in instrument_ids)
    return f"{base_url_ws.rstrip('/')}/stream?streams={streams}"


class LiquidationStream(LiveTaskActor):
    task_name = "liquidation-stream"
    idle_when_not_live = "liquidations are not streamed"

    def __init__(self, config: LiquidationStreamConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self._ids = {raw_symbol(i).upper(): i for i in config.instrument_ids}
        self.connected = False
        self.connects = 0
        self.received = 0
        self.skipped = 0

    def has_work(self) -> bool:
        return bool(self._ids)

    def on_stop(self) -> None:
        super().on_stop()
        self._set_connected(False, "stopped")  # the strategy may outlive us: Q must not read a dead feed as 0

    async def run_forever(self) -> None:
        url = stream_url(self._cfg.base_url_ws, self._cfg.instrument_ids)
        delay = self._cfg.reconnect_initial_s
        async with aiohttp.ClientSession() as session:
            while True:
                reason = await self._stream_once(session, url)
                if self.connected:
                    delay = self._cfg.reconnect_initial_s  # it had worked: the next try is quick again
                self._set_connected(False, reason)
                self.log.warning(f"liquidation stream: {reason}; reconnecting in {delay:.1f} s")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._cfg.reconnect_max_s)

    async def _stream_once(self, session: aiohttp.ClientSession, url: str) -> str:
        """Read one connection until it ends; returns why it ended."""
        try:
            async with session.ws_connect(url, heartbeat=self._cfg.heartbeat_s) as ws:
                self.connects += 1
                self._set_connected(True, f"connected, {len(self._ids)} symbols")
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        self._on_text(msg.data)
                    elif msg.type == aiohttp.WSMsgType.ERROR:
                        return f"error {ws.exception()!r}"
                return f"closed by the server (code {ws.close_code})"
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure to connect is retried, never ends the node
            return f"connection failed: {e!r}"

    def _on_text(self, text: str) -> None:
        try:
            order = parse_force_order(text)
        except Exception as e:  # noqa: BLE001 - one bad message must not end the stream
            self.skipped += 1
            self.log.warning(f"liquidation stream: skipped a malformed message ({e!r}): {text[:200]}")
            return
        instrument_id = self._ids.get(order.symbol)
        if instrument_id is None:
            return  # not one of ours (Binance would not send it, but the symbol list is the contract)
        self.received += 1
        update = LiquidationUpdate(
            instrument_id=InstrumentId.from_str(instrument_id),
            side=order.side,
            quantity=order.quantity,
            price=order.price,
            ts_event=order.ts_ms * 1_000_000,
            ts_init=self.clock.timestamp_ns(),
        )
        self.publish_data(DataType(LiquidationUpdate), update)

    def _set_connected(self, connected: bool, message: str) -> None:
        if connected == self.connected:
            return  # repeated failed connects are logged, not published: the strategy only needs the change
        self.connected = connected
        if connected:
            self.log.info(f"liquidation stream: {message}")
        now = self.clock.timestamp_ns()
        status = LiquidationFeedStatus(connected=connected, message=message, ts_event=now, ts_init=now)
        self.publish_data(DataType(LiquidationFeedStatus), status)
