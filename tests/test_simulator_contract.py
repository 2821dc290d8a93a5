"""Contract tests: every simulator answer decodes with the installed adapter's own msgspec schemas, and has
the shape of the real Binance response recorded in ``../shared/data/binance/api_recordings``.

"Shape" means: every field of the recording is present with the same JSON type (nested objects and the first
element of arrays compared the same way). The few recorded fields we deliberately leave out are listed in
``NOT_SENT`` with the reason.
"""

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from nautilus_trader.adapters.binance.common.schemas.account import BinanceOrder, BinanceUserTrade
from nautilus_trader.adapters.binance.common.schemas.market import (
    BinanceAggregatedTradeMsg,
    BinanceCandlestickMsg,
    BinanceDepth,
    BinanceKline,
    BinanceOrderBookMsg,
    BinanceQuoteMsg,
    BinanceTime,
)
from nautilus_trader.adapters.binance.common.schemas.user import BinanceListenKey
from nautilus_trader.adapters.binance.futures.schemas.account import (
    BinanceFuturesAccountInfo,
    BinanceFuturesAlgoOrder,
    BinanceFuturesAlgoOrderCancelResponse,
    BinanceFuturesDualSidePosition,
    BinanceFuturesLeverage,
    BinanceFuturesMarginTypeResponse,
    BinanceFuturesPositionRisk,
    BinanceFuturesSymbolConfig,
)
from nautilus_trader.adapters.binance.futures.schemas.market import (
    BinanceFuturesExchangeInfo,
    BinanceFuturesMarkFunding,
    BinanceFuturesMarkPriceMsg,
)
from nautilus_trader.adapters.binance.futures.schemas.user import (
    BinanceFuturesAccountUpdateMsg,
    BinanceFuturesAlgoUpdateMsg,
    BinanceFuturesOrderUpdateMsg,
)

from simulator import BinanceSimulator
from tests.simulator_support import SignedClient, btc_data, running_simulator

# Recorded fields the simulator does not send, and why.
NOT_SENT = {
    # /fapi/v3/positionRisk dropped these v2 fields; the recording is a v2 answer.
    "position_risk.json": {"leverage", "maxNotionalValue", "marginType", "isAutoAddMargin"},
    # Trailing-stop fields: the simulator has no trailing stops.
    "http_futures_account_orders.json": {"activatePrice", "priceRate"},
    # The recording says "type", Binance's algo-order docs and the adapter's schema say "orderType".
    "open_algo_orders.json": {"type"},
    # "st" is not in Binance's stream documentation; the adapter ignores it.
    "mark_price_stream.json": {"st"},
    "agg_trade_stream.json": {"st"},
    "ws_futures_book_ticker.json": {"st"},
    "depth_update_stream.json": {"st"},
    # Trailing-stop activation / callback on order updates.
    "order_update_trade.json": {"AP", "cr"},
}


HISTORY_START_MS = 1_746_374_400_000  # 2025-05-04 16:00 UTC: 30 bars of history, then the replay


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def assert_shape(ours: Any, recorded: Any, name: str, path: str = "$") -> None:
    if isinstance(recorded, dict):
        assert isinstance(ours, dict), f"{name} {path}: expected an object, got {_json_type(ours)}"
        for key, value in recorded.items():
            if key in NOT_SENT.get(name, set()):
                continue
            assert key in ours, f"{name} {path}: field {key!r} missing (ours: {sorted(ours)})"
            if value is not None and ours[key] is not None:
                assert_shape(ours[key], value, name, f"{path}.{key}")
    elif isinstance(recorded, list):
        assert isinstance(ours, list), f"{name} {path}: expected an array, got {_json_type(ours)}"
        if recorded and ours:
            assert_shape(ours[0], recorded[0], name, f"{path}[0]")
    else:
        assert _json_type(ours) == _json_type(recorded), (
            f"{name} {path}: {ours!r} is a {_json_type(ours)}, recorded {recorded!r} a {_json_type(recorded)}"
        )


def recording(shared_data: Path, relative: str) -> Any:
    data = json.loads((shared_data / "api_recordings" / relative).read_text())
    # Stream recordings are either the bare event or wrapped as {"stream": ..., "data": ...}.
    return data["data"] if isinstance(data, dict) and "data" in data and "stream" in data else data


@pytest.fixture(scope="module")
def sim(shared_data: Path) -> Iterator[BinanceSimulator]:
    data = btc_data(shared_data, bars=40, start_ms=HISTORY_START_MS + 30 * 60_000, history=30)
    with running_simulator(data, bar_seconds=0.02) as sim:
        sim.play()
        deadline = time.monotonic() + 10
        while sim.status()["tick"] < 12 and time.monotonic() < deadline:
            time.sleep(0.02)
        sim.pause()
        yield sim


def _ok(response: Any) -> bytes:
    assert response.status_code == 200, response.text
    assert response.headers["X-MBX-USED-WEIGHT-1M"].isdigit()
    return response.content


def test_market_endpoints(client: SignedClient, shared_data: Path) -> None:
    raw = _ok(client.public("GET", "/fapi/v1/exchangeInfo"))
    info = msgspec.json.decode(raw, type=BinanceFuturesExchangeInfo)
    assert [s.symbol for s in info.symbols] == ["BTCUSDT"]
    assert_shape(
        json.loads(raw),
        recording(shared_data, "rest/http_futures_market_exchange_info.json"),
        "exchange_info.json",
    )
    assert msgspec.json.decode(_ok(client.public("GET", "/fapi/v1/time")), type=BinanceTime).serverTime > 0

    raw = _ok(client.public("GET", "/fapi/v1/depth", symbol="BTCUSDT", limit=5))
    depth = msgspec.json.decode(raw, type=BinanceDepth)
    assert len(depth.bids) == len(depth.asks) == 5 and float(depth.bids[0][0]) < float(depth.asks[0][0])
    assert_shape(json.loads(raw), recording(shared_data, "rest/http_futures_market_depth.json"), "depth.json")

    raw = _ok(client.public("GET", "/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=3))
    klines = msgspec.json.decode(raw, type=list[BinanceKline])
    assert len(klines) == 3 and all(k.close_time - k.open_time == 59_999 for k in klines)
    everything = msgspec.json.decode(
        _ok(client.public("GET", "/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=1000)),
        type=list[BinanceKline],
    )
    assert len(everything) >= 33 and everything[0].open == "95421.1"  # the 16:00 bar, first of the history
    assert [b.open_time - a.open_time for a, b in zip(everything, everything[1:], strict=False)] == [60_000] * (
        len(everything) - 1
    )
    paged = msgspec.json.decode(
        _ok(
            client.public(
                "GET", "/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=5, startTime=everything[10].open_time
            )
        ),
        type=list[BinanceKline],
    )
    assert [k.open_time for k in paged] == [k.open_time for k in everything[10:15]]
    assert_shape(json.loads(raw), recording(shared_data, "rest/http_futures_market_klines.json"), "klines.json")

    raw = _ok(client.public("GET", "/fapi/v1/premiumIndex", symbol="BTCUSDT"))
    funding = msgspec.json.decode(raw, type=BinanceFuturesMarkFunding)
    assert funding.nextFundingTime > funding.time
    assert_shape(json.loads(raw), recording(shared_data, "rest/http_futures_market_premium_index.json"), "pi")

    raw = _ok(client.public("GET", "/fapi/v1/openInterest", symbol="BTCUSDT"))
    assert_shape(json.loads(raw), recording(shared_data, "rest/http_futures_market_open_interest.json"), "oi")


def test_account_endpoints(client: SignedClient, shared_data: Path) -> None:
    raw = _ok(client.signed("GET", "/fapi/v2/account"))
    account = msgspec.json.decode(raw, type=BinanceFuturesAccountInfo)
    assert account.canTrade and account.assets[0].asset == "USDT"
    assert_shape(json.loads(raw), recording(shared_data, "rest_rust/account_info_v2.json"), "account_info_v2.json")

    raw = _ok(client.signed("GET", "/fapi/v2/balance"))
    assert_shape(json.loads(raw), recording(shared_data, "rest_rust/balance.json"), "balance.json")

    leverage = msgspec.json.decode(
        _ok(client.signed("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=7)),
        type=BinanceFuturesLeverage,
    )
    assert leverage.leverage == 7
    msgspec.json.decode(
        _ok(client.signed("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")),
        type=BinanceFuturesMarginTypeResponse,
    )
    again = client.signed("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")
    assert again.status_code == 400 and again.json()["code"] == -4046

    assert _ok(client.signed("GET", "/fapi/v3/positionRisk")) == b"[]"  # v3 lists active symbols only
    assert len(json.loads(_ok(client.signed("GET", "/fapi/v2/positionRisk")))) == 1
    _ok(client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.002"))
    raw = _ok(client.signed("GET", "/fapi/v3/positionRisk", symbol="BTCUSDT"))
    risk = msgspec.json.decode(raw, type=list[BinanceFuturesPositionRisk])
    assert (risk[0].symbol, risk[0].positionAmt) == ("BTCUSDT", "-0.002")
    assert_shape(json.loads(raw), recording(shared_data, "rest_rust/position_risk.json"), "position_risk.json")

    _ok(client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002"))
    raw = _ok(client.signed("GET", "/fapi/v1/symbolConfig"))
    configs = msgspec.json.decode(raw, type=list[BinanceFuturesSymbolConfig])
    assert (configs[0].leverage, configs[0].marginType) == (7, "ISOLATED")
    assert_shape(json.loads(raw), recording(shared_data, "rest/http_futures_account_symbol_config.json"), "sc")

    raw = _ok(client.signed("GET", "/fapi/v1/positionSide/dual"))
    assert msgspec.json.decode(raw, type=BinanceFuturesDualSidePosition).dualSidePosition is False
    assert_shape(json.loads(raw), recording(shared_data, "rest/http_futures_account_position_side_dual.json"), "d")

    key = msgspec.json.decode(_ok(client.keyed("POST", "/fapi/v1/listenKey")), type=BinanceListenKey).listenKey
    assert _ok(client.keyed("PUT", "/fapi/v1/listenKey")) and key


def test_order_endpoints(client: SignedClient, sim: BinanceSimulator, shared_data: Path) -> None:
    last = float(sim.status()["last"]["BTCUSDT"])
    raw = _ok(
        client.signed(
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="BUY",
            type="MARKET",
            quantity="0.002",
            newClientOrderId="contract-entry",
        )
    )
    order = msgspec.json.decode(raw, type=BinanceOrder)
    assert order.clientOrderId == "contract-entry"
    assert_shape(json.loads(raw), recording(shared_data, "rest_rust/order_response.json"), "order_response.json")

    limit_price = f"{round(last * 0.9, 1):.1f}"
    raw = _ok(
        client.signed(
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.002",
            price=limit_price,
        )
    )
    resting = msgspec.json.decode(raw, type=BinanceOrder)
    raw = _ok(client.signed("GET", "/fapi/v1/openOrders", symbol="BTCUSDT"))
    open_orders = msgspec.json.decode(raw, type=list[BinanceOrder])
    assert [o.orderId for o in open_orders] == [resting.orderId]
    assert_shape(
        json.loads(raw),
        recording(shared_data, "rest/http_futures_account_orders.json"),
        "http_futures_account_orders.json",
    )
    got = msgspec.json.decode(
        _ok(client.signed("GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=resting.orderId)),
        type=BinanceOrder,
    )
    assert got.status.value == "NEW"
    canceled = msgspec.json.decode(
        _ok(client.signed("DELETE", "/fapi/v1/order", symbol="BTCUSDT", orderId=resting.orderId)),
        type=BinanceOrder,
    )
    assert canceled.status.value == "CANCELED"
    all_orders = msgspec.json.decode(
        _ok(client.signed("GET", "/fapi/v1/allOrders", symbol="BTCUSDT")), type=list[BinanceOrder]
    )
    assert {o.status.value for o in all_orders} >= {"FILLED", "CANCELED"}

    raw = _ok(client.signed("GET", "/fapi/v1/userTrades", symbol="BTCUSDT"))
    trades = msgspec.json.decode(raw, type=list[BinanceUserTrade])
    assert trades and float(trades[-1].commission) > 0
    assert_shape(json.loads(raw), recording(shared_data, "rest/http_futures_account_trades.json"), "trades")

    stop_price = f"{round(last * 0.8, 1):.1f}"
    raw = _ok(
        client.signed(
            "POST",
            "/fapi/v1/algoOrder",
            algoType="CONDITIONAL",
            symbol="BTCUSDT",
            side="SELL",
            type="STOP_MARKET",
            quantity="0.002",
            triggerPrice=stop_price,
            reduceOnly="true",
            clientAlgoId="contract-stop",
        )
    )
    algo = msgspec.json.decode(raw, type=BinanceFuturesAlgoOrder)
    assert (algo.clientAlgoId, algo.algoStatus) == ("contract-stop", "NEW")
    for path in ("/fapi/v1/openAlgoOrders", "/fapi/v1/algoOpenOrders"):
        raw = _ok(client.signed("GET", path, symbol="BTCUSDT"))
        assert [a.algoId for a in msgspec.json.decode(raw, type=list[BinanceFuturesAlgoOrder])] == [algo.algoId]
        assert_shape(
            json.loads(raw),
            recording(shared_data, "rest_rust/open_algo_orders.json"),
            "open_algo_orders.json",
        )
    one = msgspec.json.decode(
        _ok(client.signed("GET", "/fapi/v1/algoOrder", algoId=algo.algoId)), type=BinanceFuturesAlgoOrder
    )
    assert one.triggerPrice == stop_price
    canceled_algo = msgspec.json.decode(
        _ok(client.signed("DELETE", "/fapi/v1/algoOrder", algoId=algo.algoId)),
        type=BinanceFuturesAlgoOrderCancelResponse,
    )
    assert canceled_algo.algoId == algo.algoId
    history = msgspec.json.decode(
        _ok(client.signed("GET", "/fapi/v1/allAlgoOrders", symbol="BTCUSDT")),
        type=list[BinanceFuturesAlgoOrder],
    )
    assert [a.algoStatus for a in history] == ["CANCELED"]
    _ok(
        client.signed(
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="SELL",
            type="MARKET",
            quantity="0.002",
            reduceOnly="true",
        )
    )


async def _collect(sim: BinanceSimulator, client: SignedClient) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Subscribe to every market stream and the user stream, trade once, gather one message of each kind."""
    key = client.keyed("POST", "/fapi/v1/listenKey").json()["listenKey"]
    market: dict[str, Any] = {}
    user: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        async with (
            session.ws_connect(f"{sim.ws_url}/stream?streams=btcusdt@kline_1m") as ws,
            session.ws_connect(f"{sim.ws_url}/ws?listenKey={key}") as user_ws,
        ):
            streams = ["btcusdt@aggTrade", "btcusdt@bookTicker", "btcusdt@depth@0ms", "btcusdt@markPrice@1s"]
            await ws.send_json({"method": "SUBSCRIBE", "params": streams, "id": 7})
            assert (await ws.receive_json(timeout=5)) == {"result": None, "id": 7}
            sim.play()
            while len(market) < 5:
                msg = await ws.receive_json(timeout=5)
                market[msg["stream"]] = msg
            last = float(sim.status()["last"]["BTCUSDT"])
            await asyncio.to_thread(
                client.signed,
                "POST",
                "/fapi/v1/order",
                symbol="BTCUSDT",
                side="BUY",
                type="MARKET",
                quantity="0.002",
            )
            stop = f"{round(last * 0.8, 1):.1f}"
            await asyncio.to_thread(
                client.signed,
                "POST",
                "/fapi/v1/algoOrder",
                algoType="CONDITIONAL",
                symbol="BTCUSDT",
                side="SELL",
                type="STOP_MARKET",
                quantity="0.002",
                triggerPrice=stop,
                reduceOnly="true",
            )
            while {e["e"] for e in user} < {"ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE", "ALGO_UPDATE"}:
                user.append(await user_ws.receive_json(timeout=5))
            sim.pause()
    return market, user


def test_stream_messages(sim: BinanceSimulator, client: SignedClient, shared_data: Path) -> None:
    market, user = asyncio.run(_collect(sim, client))
    decoders = {
        "btcusdt@kline_1m": (BinanceCandlestickMsg, "rest_rust/kline_stream_closed.json"),
        "btcusdt@aggTrade": (BinanceAggregatedTradeMsg, "rest_rust/agg_trade_stream.json"),
        "btcusdt@bookTicker": (BinanceQuoteMsg, "ws/ws_futures_book_ticker.json"),
        "btcusdt@depth@0ms": (BinanceOrderBookMsg, "rest_rust/depth_update_stream.json"),
        "btcusdt@markPrice@1s": (BinanceFuturesMarkPriceMsg, "rest_rust/mark_price_stream.json"),
    }
    for stream, (schema, recorded) in decoders.items():
        msgspec.json.decode(json.dumps(market[stream]), type=schema)
        assert_shape(market[stream]["data"], recording(shared_data, recorded), Path(recorded).name)

    by_kind = {}
    for event in user:
        by_kind.setdefault(event["e"], event)
    trade = next(e for e in user if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "TRADE")
    msgspec.json.decode(json.dumps(trade), type=BinanceFuturesOrderUpdateMsg)
    assert_shape(trade, recording(shared_data, "rest_rust/order_update_trade.json"), "order_update_trade.json")
    msgspec.json.decode(json.dumps(by_kind["ACCOUNT_UPDATE"]), type=BinanceFuturesAccountUpdateMsg)
    assert_shape(by_kind["ACCOUNT_UPDATE"], recording(shared_data, "rest_rust/account_update.json"), "acc")
    msgspec.json.decode(json.dumps(by_kind["ALGO_UPDATE"]), type=BinanceFuturesAlgoUpdateMsg)
    assert_shape(by_kind["ALGO_UPDATE"], recording(shared_data, "rest_rust/algo_update_new.json"), "algo")


def test_shape_check_catches_missing_and_mistyped_fields() -> None:
    recorded = {"a": "1", "b": [{"c": 1}], "d": True}
    assert_shape({"a": "2", "b": [{"c": 5}], "d": False, "extra": 0}, recorded, "x")
    for broken in (
        {"b": [{"c": 1}], "d": True},
        {"a": 1, "b": [{"c": 1}], "d": True},
        {"a": "1", "b": [{"c": "1"}], "d": True},
        {"a": "1", "b": {}, "d": True},
    ):
        with pytest.raises(AssertionError):
            assert_shape(broken, recorded, "x")
