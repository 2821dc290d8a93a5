"""The live node (``nodes/live/config.py``) with the real AtsStrategy and Binance clients, against the simulator.

- Clear errors before any order: a missing key, a hedge-mode account, a symbol the exchange does not trade.
- A full trade's lifecycle driven from Telegram: /signal -> entry -> stop, TP1, TP2 on the exchange -> TP1 fill
  -> stop moved to the entry -> TP2 fill, with every message received by the fake Telegram server.
"""

import gc
import time
from decimal import Decimal
from pathlib import Path

import pytest

from nodes.cli import main as ats_main
from nodes.live.config import MissingCredentialsError, load_live_settings
from nodes.live.preflight import PreflightError
from nodes.live.runner import checked_node_config, freeze_startup_objects
from tests.fake_telegram import FakeTelegram
from tests.live_support import (
    RALLY_START_MS,
    SIM_ENV,
    TELEGRAM_TOKEN,
    TRADER_CHAT,
    LiveNode,
    exchange_orders,
    exchange_position,
    live_node,
    order_posts,
    play_to_first_bar,
    telegram_env,
    wait_for,
    write_configs,
)
from tests.simulator_support import SignedClient, btc_data, running_simulator


def test_missing_key_is_a_clear_error_before_anything_connects(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BINANCE_API_KEY", raising=False)
    monkeypatch.setenv("BINANCE_API_SECRET", "a-secret")
    with running_simulator(btc_data(shared_data, bars=5)) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        with pytest.raises(MissingCredentialsError, match="BINANCE_API_KEY"):
            checked_node_config(load_live_settings(config))
        assert ats_main(["live", str(config)]) == 2
        assert sim.request_log.count() == 0  # nothing reached the exchange
    err = capsys.readouterr().err
    assert "ats live: error: live trading needs BINANCE_API_KEY in the environment" in err
    assert "a-secret" not in err
    # testnet has its own variables, named in the message
    with pytest.raises(MissingCredentialsError, match="BINANCE_FUTURES_TESTNET_API_KEY"):
        checked_node_config(load_live_settings(config, mode="testnet"), {})


def test_hedge_mode_account_is_refused_before_any_order(shared_data: Path, tmp_path: Path) -> None:
    with running_simulator(btc_data(shared_data, bars=5)) as sim:
        sim.call(lambda: setattr(sim.exchange, "dual_side", True))  # the account was switched to hedge mode
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        with pytest.raises(PreflightError, match="hedge mode.*One-way"):
            checked_node_config(load_live_settings(config), SIM_ENV)
        assert sim.request_log.count("/fapi/v1/positionSide/dual", "GET") == 1
        assert order_posts(sim) == 0
        assert sim.request_log.count("/fapi/v1/leverage", "POST") == 0  # the account was not touched


def test_unknown_symbol_is_refused_before_any_order(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in SIM_ENV.items():
        monkeypatch.setenv(name, value)
    with running_simulator(btc_data(shared_data, bars=5)) as sim:  # the exchange lists BTCUSDT only
        config = write_configs(tmp_path, sim, ["BTCUSDT", "ETHUSDT"])
        with pytest.raises(PreflightError, match="ETHUSDT not trading"):
            checked_node_config(load_live_settings(config), SIM_ENV)
        assert ats_main(["live", str(config)]) == 2
        assert order_posts(sim) == 0
        assert sim.request_log.count("/fapi/v1/listenKey", "POST") == 0
    assert "ETHUSDT not trading as a USDT-M perpetual" in capsys.readouterr().err


def _exits(orders: list[dict]) -> tuple[list[dict], list[dict]]:
    stops = [o for o in orders if o["type"] == "STOP_MARKET"]
    targets = [o for o in orders if o["type"] == "LIMIT"]
    return stops, targets


def test_full_lifecycle_from_a_telegram_signal(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in telegram_env().items():
        monkeypatch.setenv(name, value)
    data = btc_data(shared_data, bars=40, start_ms=RALLY_START_MS)
    with FakeTelegram(TELEGRAM_TOKEN) as tg, running_simulator(data, bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"], telegram_url=tg.base_url)
        with live_node(config) as node:
            assert sim.status()["positions"]["BTCUSDT"]["leverage"] == 5  # set per symbol at connect
            play_to_first_bar(sim, node)
            tg.push_message(TRADER_CHAT, "/signal BTC long")

            # Entry filled: the stop (whole position) and TP1 / TP2 (a half each) rest on the exchange.
            wait_for(lambda: len(exchange_orders(sim)) == 3, 30, "the three exit orders on the exchange")
            amount, entry = exchange_position(sim)
            stops, targets = _exits(exchange_orders(sim))
            assert amount > 0 and len(stops) == 1 and len(targets) == 2
            assert stops[0]["qty"] == amount and stops[0]["price"] < entry and stops[0]["reduce_only"]
            assert sum(t["qty"] for t in targets) == amount and all(t["reduce_only"] for t in targets)
            tp1, tp2 = sorted(t["price"] for t in targets)
            assert entry < tp1 < tp2

            # TP1 filled: half closed, the stop now sits at the entry price for the rest.
            def moved_to_entry() -> bool:
                stops, _ = _exits(exchange_orders(sim))
                return len(stops) == 1 and stops[0]["price"] == entry

            wait_for(moved_to_entry, 60, "the stop to move to break-even")
            rest, _ = exchange_position(sim)
            stops, targets = _exits(exchange_orders(sim))
            assert Decimal(0) < rest < amount and stops[0]["qty"] == rest
            assert [t["price"] for t in targets] == [tp2]

            wait_for(lambda: exchange_position(sim)[0] == 0, 60, "TP2 to close the rest")
            wait_for(lambda: not exchange_orders(sim), 10, "no order left on the exchange")
            ledger = node.call(lambda: node.strategy.ledger(include_open=False))
            texts = tg.wait_for_messages(7, timeout=20, chat_id=TRADER_CHAT)
            assert node.strategy.errors == 0

    assert [r["exit_reason"] for r in ledger] == ["TP1+TP2"]
    assert ledger[0]["entry_price"] == float(entry) and ledger[0]["quantity"] == float(amount)
    assert order_posts(sim) == 5  # entry, stop, TP1, TP2, break-even stop: nothing twice
    bodies = "\n---\n".join(texts)
    assert texts[0] == "🚀 Node started (live)", bodies
    assert texts[1].startswith("🟢 BTCUSDT LONG (manual)") and "Strength:" in texts[1], bodies
    assert "Manual signal accepted: BTCUSDT LONG" in bodies
    assert any(t.startswith("✅ BTCUSDT LONG entry filled") for t in texts), bodies
    assert any(t.startswith("🎯 BTCUSDT TP1 hit at $") and "stop moved to break-even" in t for t in texts), bodies
    assert any(t.startswith("🎯 BTCUSDT TP2 hit at $") and "total profit +" in t for t in texts), bodies
    assert any(t.startswith("🏁 BTCUSDT LONG trade closed") for t in texts), bodies


def test_ats_flatten_closes_every_position_and_cancels_every_order(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in SIM_ENV.items():
        monkeypatch.setenv(name, value)
    with running_simulator(btc_data(shared_data, bars=200, start_ms=RALLY_START_MS), bar_seconds=1.0) as sim:
        sim.play()
        # A position with a stop and a take-profit placed by someone else (another tool, a phone): flatten
        # closes whatever the account holds, not only what ats opened.
        rest = SignedClient(sim.http_url)
        assert rest.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.05")
        last = Decimal(sim.status()["last"]["BTCUSDT"])
        for path, params in (
            ("/fapi/v1/algoOrder", {"algoType": "CONDITIONAL", "type": "STOP_MARKET", "triggerPrice": str(last + 900)}),
            ("/fapi/v1/order", {"type": "LIMIT", "timeInForce": "GTC", "price": str(last - 900)}),
        ):
            answer = rest.signed(
                "POST", path, symbol="BTCUSDT", side="BUY", quantity="0.05", reduceOnly="true", **params
            )
            assert answer.status_code == 200, answer.text
        assert exchange_position(sim)[0] == Decimal("-0.05") and len(exchange_orders(sim)) == 2

        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        # The live node starts on this account (its cross margin left as is: Binance refuses to change the
        # margin type under a position) and adopts the position with the stop it has: nothing is sent.
        posts = order_posts(sim)
        with live_node(config) as node:
            trades = node.call(lambda: node.strategy.open_trades())
            assert [(t.direction, t.stop_price) for t in trades.values()] == [("SHORT", float(last + 900))]
            assert order_posts(sim) == posts
        assert ats_main(["flatten", str(config), "--timeout", "60"]) == 0
        assert exchange_position(sim)[0] == 0
        assert exchange_orders(sim) == []
    assert "account is flat" in capsys.readouterr().out


def test_live_config_scan_modes_and_account_settings() -> None:
    """The shipped live config: the backtest's strategy unchanged, hourly scans unless --scan-once, one-way
    NETTING, isolated margin and the leverage set per symbol, reconciled orders claimed by the strategy."""
    from nodes.live.config import DEFAULT_LIVE_CONFIG, build_node_config
    from nodes.settings import DEFAULT_BACKTEST_CONFIG, load_backtest_settings

    backtest = load_backtest_settings(DEFAULT_BACKTEST_CONFIG)
    periodic = build_node_config(load_live_settings(DEFAULT_LIVE_CONFIG), SIM_ENV)
    once = build_node_config(load_live_settings(DEFAULT_LIVE_CONFIG, scan_once=True), SIM_ENV)
    strategy = periodic.strategies[0].config
    assert {k: strategy[k] for k in backtest.strategy_config} == backtest.strategy_config
    assert strategy["scan"] == {"interval_minutes": 60}  # every scan may enter
    assert strategy["warmup_bars"] == 500  # live only: warm from past klines at start (the factors settle at ~400)
    assert once.strategies[0].config["scan"] == {"interval_minutes": 60, "entries": "FIRST_SCAN"}
    assert strategy["oms_type"] == "NETTING" and strategy["external_order_claims"] == strategy["instrument_ids"]
    exec_client = periodic.exec_clients["BINANCE"]
    assert exec_client.use_position_ids is False
    assert set(exec_client.futures_leverages.values()) == {5}
    assert {t.value for t in exec_client.futures_margin_types.values()} == {"ISOLATED"}
    assert len(exec_client.futures_margin_types) == len(backtest.symbols)


def test_open_interest_is_polled_at_the_configured_pace_and_reaches_the_factor(
    shared_data: Path, tmp_path: Path
) -> None:
    interval = 1.0  # production: 300 s (each symbol at most once per 5 minutes)
    with running_simulator(btc_data(shared_data, bars=200, start_ms=RALLY_START_MS), bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"], live={"open_interest_interval_s": interval})
        with live_node(config) as node:
            sim.play()
            started = time.monotonic()
            oi = node.strategy.book._symbol(node.strategy.config.instrument_ids[0]).o
            wait_for(lambda: node.call(lambda: oi.has_inputs), 20, "open interest in the factor")
            time.sleep(3.0)
            polls = sim.request_log.count("/fapi/v1/openInterest", "GET")
            elapsed = time.monotonic() - started
            latest, latest_ns = node.call(lambda: (oi._oi, oi._oi_ts))
            now_ns = node.call(lambda: node.strategy.clock.timestamp_ns())
    assert 2 <= polls <= elapsed / interval + 2  # paced, never a burst
    assert latest > 0 and now_ns - latest_ns < 3 * interval * 1e9  # fresh figures keep arriving


def test_node_starts_beside_open_orders_without_touching_their_margin_type(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SIM_ENV.items():
        monkeypatch.setenv(name, value)
    with running_simulator(btc_data(shared_data, bars=200, start_ms=RALLY_START_MS), bar_seconds=1.0) as sim:
        rest = SignedClient(sim.http_url)
        sim.play()
        last = Decimal(sim.status()["last"]["BTCUSDT"])
        answer = rest.signed(
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.01",
            price=str(last - 2000),
        )
        assert answer.status_code == 200, answer.text  # a resting order, no position: -4047 territory
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        with live_node(config) as node:
            assert node.strategy.is_running
        assert sim.request_log.count("/fapi/v1/marginType", "POST") == 0
        assert len(exchange_orders(sim)) == 1  # not the node's to cancel
        assert ats_main(["flatten", str(config)]) == 0
        assert exchange_orders(sim) == []


def test_node_freezes_its_start_up_objects_once_running(shared_data: Path, tmp_path: Path) -> None:
    """The start-up's long-lived objects leave the garbage collector's full sweeps (pauses of 100+ ms with 200
    symbols, see docs/live.md), and only once the trader runs."""
    with running_simulator(btc_data(shared_data, bars=5)) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        node = LiveNode(config)
        gc.unfreeze()
        thresholds = gc.get_threshold()
        freeze_startup_objects(node.node, after_s=1.0)
        try:
            node.start()  # returns once the trader runs
            assert gc.get_freeze_count() == 0  # not before the node has run after_s
            wait_for(lambda: gc.get_freeze_count() > 10_000, 10, "the start-up objects frozen")
            # then a minute's worth of short-lived containers (a close's bars, a scan) meets no collection
            gc.collect(0)  # the count of new containers starts at 0
            collections = gc.get_stats()[0]["collections"]
            held = [{} for _ in range(5_000)]
            assert gc.get_stats()[0]["collections"] == collections, f"collected among {len(held)} new containers"
        finally:
            node.stop()
            gc.unfreeze()
            gc.set_threshold(*thresholds)
