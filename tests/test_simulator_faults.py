"""Each injectable fault, seen from a client: dropped WebSockets, silence, an expired listen key, 429/418 with
Retry-After, the next order rejected with -2019 or -1111, added latency; also via the HTTP control endpoint.
"""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import pytest

from simulator import BinanceSimulator
from simulator.faults import request_target
from tests.simulator_support import SignedClient, btc_data, running_simulator


@pytest.fixture()
def sim(shared_data: Path) -> Iterator[BinanceSimulator]:
    with running_simulator(btc_data(shared_data, bars=400), bar_seconds=0.08, autostart=True) as sim:
        yield sim


def _market_order(client: SignedClient) -> httpx.Response:
    return client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002")


def test_drop_connections_closes_market_and_user_streams(sim: BinanceSimulator, client: SignedClient) -> None:
    key = client.keyed("POST", "/fapi/v1/listenKey").json()["listenKey"]

    async def run() -> tuple[aiohttp.WSMsgType, aiohttp.WSMsgType, int]:
        async with aiohttp.ClientSession() as session:
            market = await session.ws_connect(f"{sim.ws_url}/stream?streams=btcusdt@aggTrade")
            user = await session.ws_connect(f"{sim.ws_url}/ws?listenKey={key}")
            await market.receive_json(timeout=5)
            dropped = await asyncio.to_thread(sim.drop_connections)
            kinds = []
            for ws in (market, user):
                msg = await ws.receive(timeout=5)
                while msg.type == aiohttp.WSMsgType.TEXT:  # messages already queued before the drop
                    msg = await ws.receive(timeout=5)
                kinds.append(msg.type)
            return kinds[0], kinds[1], dropped

    market_end, user_end, dropped = asyncio.run(run())
    assert dropped == 2
    assert market_end in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert user_end in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)


def test_silence_stops_messages_for_n_seconds(sim: BinanceSimulator) -> None:
    async def run() -> float:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"{sim.ws_url}/ws/btcusdt@aggTrade")
            await ws.receive_json(timeout=5)
            await asyncio.to_thread(sim.silence, 1.0)
            while True:  # drain what was queued before the silence began
                started = time.monotonic()
                await ws.receive_json(timeout=5)
                if time.monotonic() - started > 0.5:
                    return time.monotonic() - started

    gap = asyncio.run(run())
    assert 0.7 <= gap <= 3.0


def test_expired_listen_key_is_announced_and_invalidated(sim: BinanceSimulator, client: SignedClient) -> None:
    key = client.keyed("POST", "/fapi/v1/listenKey").json()["listenKey"]

    async def run() -> tuple[dict[str, object], aiohttp.WSMsgType]:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"{sim.ws_url}/ws?listenKey={key}")
            assert await asyncio.to_thread(sim.expire_listen_key) == key
            event = await ws.receive_json(timeout=5)
            end = await ws.receive(timeout=5)
            return event, end.type

    event, end = asyncio.run(run())
    assert event["e"] == "listenKeyExpired" and event["listenKey"] == key
    assert end in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    keepalive = client.keyed("PUT", "/fapi/v1/listenKey")
    assert keepalive.status_code == 400 and keepalive.json()["code"] == -1125
    fresh = client.keyed("POST", "/fapi/v1/listenKey").json()["listenKey"]
    assert fresh != key


@pytest.mark.parametrize("status", [429, 418])
def test_throttle_answers_with_retry_after(sim: BinanceSimulator, client: SignedClient, status: int) -> None:
    sim.throttle(status=status, retry_after_s=7, count=2)
    for _ in range(2):
        response = client.public("GET", "/fapi/v1/time")
        assert response.status_code == status
        assert response.headers["Retry-After"] == "7"
        assert response.json()["code"] == -1003
    assert client.public("GET", "/fapi/v1/time").status_code == 200
    logged = [e for e in sim.request_log.entries if e.path == "/fapi/v1/time"]
    assert [e.status for e in logged] == [status, status, 200]


@pytest.mark.parametrize(
    ("code", "message"),
    [(-2019, "Margin is insufficient."), (-1111, "Precision is over the maximum defined for this asset.")],
)
def test_reject_next_order(sim: BinanceSimulator, client: SignedClient, code: int, message: str) -> None:
    sim.reject_next_order(code)
    rejected = _market_order(client)
    assert rejected.status_code == 400 and rejected.json() == {"code": code, "msg": message}
    assert _market_order(client).status_code == 200  # one-shot
    assert sim.status()["positions"]["BTCUSDT"]["amount"] == "0.002"


def test_latency_delays_answers(sim: BinanceSimulator, client: SignedClient) -> None:
    sim.set_latency(0.4)
    started = time.monotonic()
    assert client.public("GET", "/fapi/v1/time").status_code == 200
    assert time.monotonic() - started >= 0.4
    sim.clear_faults()
    started = time.monotonic()
    client.public("GET", "/fapi/v1/time")
    assert time.monotonic() - started < 0.4


def test_control_endpoint_injects_faults(sim: BinanceSimulator, client: SignedClient) -> None:
    control = httpx.Client(base_url=sim.http_url, timeout=10)
    try:
        assert control.post("/_sim/fault", json={"fault": "reject_next_order", "code": -2019}).json()["ok"]
        assert _market_order(client).json()["code"] == -2019
        assert control.post("/_sim/fault", json={"fault": "throttle", "status": 418, "retry_after": 3}).is_success
        banned = client.public("GET", "/fapi/v1/time")
        assert banned.status_code == 418 and banned.headers["Retry-After"] == "3"
        bad = control.post("/_sim/fault", json={"fault": "reject_next_order", "code": -9999})
        assert bad.status_code == 400 and "-9999" in bad.json()["error"]
        assert control.post("/_sim/fault", json={"fault": "nonsense"}).status_code == 400
        status = control.get("/_sim/status").json()
        assert status["requests"] >= 2 and status["market_connections"] == 0
        requests = control.get("/_sim/requests").json()
        assert requests["total_weight"] == sum(r["weight"] for r in requests["requests"])
    finally:
        control.close()


def test_injected_liquidation_reaches_force_order_subscribers(sim: BinanceSimulator) -> None:
    async def run() -> dict[str, object]:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"{sim.ws_url}/ws/btcusdt@forceOrder")
            await asyncio.sleep(0.1)
            sent = await asyncio.to_thread(sim.force_order, "BTCUSDT", "SELL", "0.014")
            received = await ws.receive_json(timeout=5)
            assert received == sent
            return received

    event = asyncio.run(run())
    assert event["e"] == "forceOrder" and event["o"]["q"] == "0.014"
    with pytest.raises(ValueError, match="unknown symbol"):
        sim.force_order("DOGEUSDT", "SELL", "1")


@pytest.mark.parametrize(
    ("method", "path", "params", "targets"),
    [
        ("POST", "/fapi/v1/order", {"type": "MARKET"}, {"any", "entry"}),
        ("POST", "/fapi/v1/order", {"type": "MARKET", "reduceOnly": "true"}, {"any", "exit"}),  # a close
        ("POST", "/fapi/v1/order", {"type": "LIMIT", "reduceOnly": "true"}, {"any", "exit", "target"}),  # a TP
        ("POST", "/fapi/v1/algoOrder", {"type": "STOP_MARKET", "reduceOnly": "true"}, {"any", "exit", "stop"}),
        (
            "POST",
            "/fapi/v1/algoOrder",
            {"type": "TAKE_PROFIT_MARKET", "closePosition": "true"},
            {"any", "exit", "target"},
        ),
        ("DELETE", "/fapi/v1/algoOrder", {}, {"stop_cancel"}),
        ("GET", "/fapi/v1/order", {}, set()),
    ],
)
def test_rejection_targets(method: str, path: str, params: dict[str, str], targets: set[str]) -> None:
    """Catches: a rejection aimed at take-profits meeting a stop or a close at market, or the reverse."""
    assert request_target(method, path, params) == targets
