"""Replay of the real WebSocket capture: the real book, real best bid/ask, real trades touching stops, and
1-minute klines built from the trades."""

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from catalog.instruments import binance_perpetual
from simulator import BinanceSimulator, SimulatorConfig
from simulator.capture import Capture, read_capture
from tests.simulator_support import API_KEY, API_SECRET, SignedClient

CAPTURE = "ws_capture/btcusdt_20240808.gz"
_captures: dict[str, Capture] = {}


def btc_capture(shared_data: Path) -> Capture:
    if "btc" not in _captures:
        _captures["btc"] = read_capture(shared_data / CAPTURE)
    return _captures["btc"]


@pytest.fixture()
def sim(shared_data: Path) -> Iterator[BinanceSimulator]:
    config = SimulatorConfig(
        [binance_perpetual("BTCUSDT")],
        [],
        API_KEY,
        API_SECRET,
        captures=[btc_capture(shared_data)],
        capture_speed=30,
        autostart=False,
        rebase_time=False,
    )
    with BinanceSimulator(config) as sim:
        yield sim


def test_read_capture(shared_data: Path) -> None:
    capture = btc_capture(shared_data)
    kinds = {e.kind for e in capture.events}
    assert capture.symbol == "BTCUSDT" and kinds == {"depth", "bookTicker", "trade"}
    assert capture.snapshot["bids"][0] == ["61800.20", "2.909"]
    assert all(e.data["u"] > capture.snapshot["lastUpdateId"] for e in capture.events if e.kind == "depth")


def test_real_book_and_fills_at_the_real_best_price(sim: BinanceSimulator, shared_data: Path) -> None:
    client = SignedClient(sim.http_url)
    depth = client.public("GET", "/fapi/v1/depth", symbol="BTCUSDT", limit=5).json()
    snapshot = btc_capture(shared_data).snapshot
    assert depth["lastUpdateId"] == snapshot["lastUpdateId"]
    assert depth["bids"] == snapshot["bids"][:5] and depth["asks"] == snapshot["asks"][:5]
    buy = client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010")
    assert buy.status_code == 200, buy.text
    fill = client.signed("GET", "/fapi/v1/userTrades", symbol="BTCUSDT").json()[-1]
    assert Decimal(fill["price"]) == Decimal(snapshot["asks"][0][0])
    client.close()


def test_real_trades_drive_streams_stops_and_klines(sim: BinanceSimulator, shared_data: Path) -> None:
    capture = btc_capture(shared_data)
    trades = [e.data for e in capture.events if e.kind == "trade"]
    client = SignedClient(sim.http_url)
    client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010")
    first_price = Decimal(trades[0]["p"])
    lowest_soon = min(Decimal(t["p"]) for t in trades if t["T"] < trades[0]["T"] + 50_000)
    trigger = (first_price + lowest_soon) / 2
    trigger = trigger.quantize(Decimal("0.1"))
    assert lowest_soon < trigger < first_price
    placed = client.signed(
        "POST",
        "/fapi/v1/algoOrder",
        algoType="CONDITIONAL",
        symbol="BTCUSDT",
        side="SELL",
        type="STOP_MARKET",
        quantity="0.010",
        triggerPrice=str(trigger),
        reduceOnly="true",
    )
    assert placed.status_code == 200, placed.text

    async def watch() -> tuple[list[dict], dict]:
        async with aiohttp.ClientSession() as session:
            url = f"{sim.ws_url}/stream?streams=btcusdt@aggTrade/btcusdt@kline_1m"
            async with session.ws_connect(url) as ws:
                await asyncio.sleep(0.1)
                await asyncio.to_thread(sim.play)
                agg: list[dict] = []
                while True:
                    msg = (await ws.receive_json(timeout=10))["data"]
                    if msg["e"] == "aggTrade":
                        agg.append(msg)
                    elif msg["k"]["x"]:
                        return agg, msg["k"]

    agg, closed = asyncio.run(watch())
    assert [a["p"] for a in agg[:50]] == [t["p"] for t in trades[:50]]
    minute = closed["t"] // 60_000 * 60_000
    in_minute = [t for t in trades if minute <= t["T"] < minute + 60_000]
    assert Decimal(closed["o"]) == Decimal(in_minute[0]["p"]) and Decimal(closed["c"]) == Decimal(in_minute[-1]["p"])
    assert Decimal(closed["h"]) == max(Decimal(t["p"]) for t in in_minute)
    assert Decimal(closed["l"]) == min(Decimal(t["p"]) for t in in_minute)
    assert closed["n"] == len(in_minute)
    deadline = time.monotonic() + 10
    while sim.status()["positions"]["BTCUSDT"]["amount"] != "0.000" and time.monotonic() < deadline:
        time.sleep(0.05)
    stop_fill = client.signed("GET", "/fapi/v1/userTrades", symbol="BTCUSDT").json()[-1]
    assert stop_fill["side"] == "SELL" and Decimal(stop_fill["price"]) <= trigger
    client.close()
