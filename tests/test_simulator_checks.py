"""Binance's request checks as a client meets them: API key, HMAC signature, timestamp and recvWindow, request
weight with ``X-MBX-USED-WEIGHT-1M`` and a natural 429, and the request log that counts what a client spent."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from simulator import BinanceSimulator
from simulator.limits import OrderCounter
from tests.simulator_support import SignedClient, btc_data, running_simulator


@pytest.fixture()
def sim(shared_data: Path) -> Iterator[BinanceSimulator]:
    with running_simulator(btc_data(shared_data, bars=20), weight_limit=60) as sim:
        yield sim


def test_api_key_and_signature(sim: BinanceSimulator, client: SignedClient) -> None:
    assert client.signed("GET", "/fapi/v2/account").status_code == 200
    no_key = client.http.get("/fapi/v2/account", params={"timestamp": int(time.time() * 1000)})
    assert (no_key.status_code, no_key.json()["code"]) == (401, -2014)
    wrong_key = SignedClient(sim.http_url, key="someone-else")
    assert wrong_key.signed("GET", "/fapi/v2/account").json()["code"] == -2015
    wrong_secret = SignedClient(sim.http_url, secret="not-the-secret")
    bad = wrong_secret.signed("GET", "/fapi/v2/account")
    assert (bad.status_code, bad.json()) == (400, {"code": -1022, "msg": "Signature for this request is not valid."})
    unsigned = client.http.get(
        "/fapi/v2/account", params={"timestamp": int(time.time() * 1000)}, headers={"X-MBX-APIKEY": client.key}
    )
    assert unsigned.json()["code"] == -1102
    # The listen key needs the API key but no signature, like Binance's USER_STREAM endpoints.
    assert client.keyed("POST", "/fapi/v1/listenKey").status_code == 200
    for c in (wrong_key, wrong_secret):
        c.close()


def test_timestamp_and_recv_window(client: SignedClient) -> None:
    now = int(time.time() * 1000)
    stale = client.signed("GET", "/fapi/v2/account", timestamp=now - 10_000)
    assert (stale.status_code, stale.json()["code"]) == (400, -1021)
    assert client.signed("GET", "/fapi/v2/account", timestamp=now - 10_000, recvWindow=20_000).status_code == 200
    assert client.signed("GET", "/fapi/v2/account", timestamp=now + 5_000).json()["code"] == -1021
    assert client.signed("GET", "/fapi/v2/account", recvWindow=70_000).json()["code"] == -1131


def test_weight_header_limit_and_request_log(sim: BinanceSimulator, client: SignedClient) -> None:
    first = int(client.public("GET", "/fapi/v1/exchangeInfo").headers["X-MBX-USED-WEIGHT-1M"])
    after_account = int(client.signed("GET", "/fapi/v2/account").headers["X-MBX-USED-WEIGHT-1M"])
    assert after_account - first == 5
    responses = [client.signed("GET", "/fapi/v1/positionSide/dual") for _ in range(2)]  # weight 30 each
    limited = responses[-1]
    if limited.status_code == 200:  # the minute rolled over between requests: spend again
        limited = client.signed("GET", "/fapi/v1/positionSide/dual")
    assert limited.status_code == 429 and limited.json()["code"] == -1003
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    log = sim.request_log
    assert log.count("/fapi/v1/positionSide/dual") >= 2
    assert log.total_weight() == sum(e.weight for e in log.entries) >= 66
    assert [e.status for e in log.entries if e.path == "/fapi/v1/exchangeInfo"] == [200]


def test_bad_requests(client: SignedClient) -> None:
    unknown_symbol = client.public("GET", "/fapi/v1/depth", symbol="NOPEUSDT")
    assert unknown_symbol.json() == {"code": -1121, "msg": "Invalid symbol."}
    assert client.public("GET", "/fapi/v1/nothing").status_code == 404
    assert client.public("GET", "/fapi/v1/depth", symbol="BTCUSDT", limit=7).json()["code"] == -1100
    not_found = client.signed("GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=42)
    assert not_found.json() == {"code": -2013, "msg": "Order does not exist."}
    cancel = client.signed("DELETE", "/fapi/v1/order", symbol="BTCUSDT", orderId=42)
    assert cancel.json() == {"code": -2011, "msg": "Unknown order sent."}


def test_user_stream_needs_a_valid_listen_key(sim: BinanceSimulator) -> None:
    async def handshake() -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(f"{sim.ws_url}/ws?listenKey=forged"):
                    return 101
            except aiohttp.WSServerHandshakeError as e:
                return e.status

    assert asyncio.run(handshake()) == 400


def test_new_order_count_limit(sim: BinanceSimulator, client: SignedClient) -> None:
    sim.rest.orders.per_10s = 3  # a small limit, reached without 300 requests
    counts: list[int] = []
    for attempt in range(3):
        # The counter's windows are the wall clock's 10-second slots: four orders must fall in one. Start at
        # the beginning of the next slot when less than half of this one is left, or after a try that split.
        left = 10 - time.time() % 10
        if attempt or left < 5:
            time.sleep(left + 0.05)
        answers = [
            client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002")
            for _ in range(4)
        ]
        counts = [int(a.headers["X-MBX-ORDER-COUNT-10S"]) for a in answers]
        if counts == [1, 2, 3, 4]:
            break
    assert counts == [1, 2, 3, 4], f"three tries, each split by a 10-second window boundary: {counts}"
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json() == {
        "code": -1015,
        "msg": "Too many new orders; current limit is 3 orders per TEN_SECONDS.",
    }
    assert [int(a.headers["X-MBX-ORDER-COUNT-1M"]) for a in answers][-1] >= 4


def test_order_counter_windows() -> None:
    counter = OrderCounter()
    assert [counter.add(now) for now in (100.0, 105.0, 109.9, 110.0, 119.0, 120.0)] == [
        (1, 1),
        (2, 2),
        (3, 3),
        (1, 4),
        (2, 5),
        (1, 1),
    ]


def test_subscription_requests(sim: BinanceSimulator) -> None:
    async def run() -> list[dict[str, object]]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{sim.ws_url}/stream?streams=btcusdt@aggTrade") as ws:
                replies = []
                for request in (
                    {"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker", "btcusdt@markPrice@1s"], "id": 1},
                    {"method": "UNSUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 2},
                    {"method": "LIST_SUBSCRIPTIONS", "id": 3},
                    {"method": "SUBSCRIBE", "params": ["btcusdt@nonsense"], "id": 4},
                    {"method": "TELEPORT", "id": 5},
                ):
                    await ws.send_json(request)
                    replies.append(await ws.receive_json(timeout=5))
                return replies

    replies = asyncio.run(run())
    assert replies[0] == {"result": None, "id": 1} and replies[1] == {"result": None, "id": 2}
    assert replies[2] == {"result": ["btcusdt@bookTicker", "btcusdt@markPrice@1s"], "id": 3}
    assert replies[3]["error"]["code"] == 2 and replies[4]["error"]["code"] == 2


def test_listen_key_lifecycle_and_algo_mass_cancel(client: SignedClient) -> None:
    key = client.keyed("POST", "/fapi/v1/listenKey").json()["listenKey"]
    assert client.keyed("POST", "/fapi/v1/listenKey").json()["listenKey"] == key  # one key per account
    assert client.keyed("PUT", "/fapi/v1/listenKey").status_code == 200
    assert client.keyed("DELETE", "/fapi/v1/listenKey").json() == {}
    assert client.keyed("PUT", "/fapi/v1/listenKey").json()["code"] == -1125
    assert client.keyed("POST", "/fapi/v1/listenKey").json()["listenKey"] != key

    last = float(client.public("GET", "/fapi/v1/ticker/price", symbol="BTCUSDT").json()["price"])
    for trigger in (last * 1.1, last * 1.2):
        placed = client.signed(
            "POST",
            "/fapi/v1/algoOrder",
            algoType="CONDITIONAL",
            symbol="BTCUSDT",
            side="BUY",
            type="STOP_MARKET",
            quantity="0.002",
            triggerPrice=f"{trigger:.1f}",
        )
        assert placed.status_code == 200, placed.text
    assert len(client.signed("GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT").json()) == 2
    assert client.signed("DELETE", "/fapi/v1/algoOpenOrders", symbol="BTCUSDT").json()["code"] == 200
    assert client.signed("GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT").json() == []


def test_a_shorter_weight_window_is_published_and_counted(shared_data: Path) -> None:
    with running_simulator(btc_data(shared_data, bars=10), weight_limit=50, weight_window_s=2) as short:
        client = SignedClient(short.http_url)
        try:
            info = client.public("GET", "/fapi/v1/exchangeInfo")
            weight = info.json()["rateLimits"][0]
            assert weight == {"rateLimitType": "REQUEST_WEIGHT", "interval": "SECOND", "intervalNum": 2, "limit": 50}
            assert "X-MBX-USED-WEIGHT-2S" in info.headers
            refused = [client.signed("GET", "/fapi/v1/positionSide/dual") for _ in range(3)][-1]  # 30 each
            if refused.status_code == 200:  # the window rolled over between requests: spend again
                refused = client.signed("GET", "/fapi/v1/positionSide/dual")
            assert refused.status_code == 429 and int(refused.headers["Retry-After"]) <= 2
            time.sleep(2.1)
            assert client.signed("GET", "/fapi/v2/account").headers["X-MBX-USED-WEIGHT-2S"] == "5"
        finally:
            client.close()
