"""The live node under exchange faults, on the simulator: dropped WebSocket streams, an expired listen key,
429 / 418 answers and rejected orders. The node stays up, reports, backs off, and misses no exit."""

from pathlib import Path

import pytest
from nautilus_trader.model.data import BarType

from tests.fake_telegram import FakeTelegram
from tests.live_support import (
    RALLY_START_MS,
    SIM_ENV,
    TELEGRAM_TOKEN,
    TRADER_CHAT,
    NodeProcess,
    exchange_orders,
    exchange_position,
    live_node,
    order_posts,
    play_to_first_bar,
    telegram_env,
    wait_for,
    write_configs,
)
from tests.simulator_support import btc_data, running_simulator

BAR_TYPE = BarType.from_str("BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")


def test_dropped_streams_and_expired_listen_key_miss_no_exit(shared_data: Path, tmp_path: Path) -> None:
    data = btc_data(shared_data, bars=40, start_ms=RALLY_START_MS)
    with running_simulator(data, bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        with live_node(config) as node:
            play_to_first_bar(sim, node)
            assert node.control("signal", "BTC", "long")["accepted"]
            wait_for(lambda: len(exchange_orders(sim)) == 3, 30, "the entry's exits on the exchange")
            sim.pause()  # nothing fills while the streams are down: the test is about what follows
            bars = node.call(lambda: node.node.cache.bar_count(BAR_TYPE))

            market = sim.status()["market_connections"]  # the data client spreads streams over connections
            assert sim.drop_connections() == market + 1  # every market-data connection and the user stream
            wait_for(
                lambda: (s := sim.status())["market_connections"] == market and s["user_connections"] == 1,
                30,
                "both streams to reconnect",
            )
            assert sim.expire_listen_key() is not None
            wait_for(lambda: sim.request_log.count("/fapi/v1/listenKey", "POST") >= 2, 30, "a new listen key")
            wait_for(lambda: sim.status()["user_connections"] == 1, 30, "the user stream on the new key")

            sim.play()
            wait_for(lambda: node.call(lambda: node.node.cache.bar_count(BAR_TYPE)) >= bars + 2, 30, "bars again")
            wait_for(lambda: exchange_position(sim)[0] == 0, 60, "TP1 and TP2 to close the position")
            wait_for(lambda: node.call(lambda: node.strategy.ledger(include_open=False)), 10, "the closed trade")
            ledger = node.call(lambda: node.strategy.ledger(include_open=False))
            counters = node.strategy.counters()["total"]
            assert node.node.trader.is_running and node.strategy.errors == 0
    assert [r["exit_reason"] for r in ledger] == ["TP1+TP2"]
    # TP1's fill came over the re-keyed user stream and moved the stop: both seen, nothing repeated.
    assert counters["tp1"] == 1 and counters["breakeven"] == 1 and counters["tp2"] == 1
    assert order_posts(sim) == 5


def test_rejections_429_and_418_are_reported_backed_off_and_survived(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in telegram_env().items():
        monkeypatch.setenv(name, value)
    data = btc_data(shared_data, bars=120, start_ms=RALLY_START_MS)
    with FakeTelegram(TELEGRAM_TOKEN) as tg, running_simulator(data, bar_seconds=1.0) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"], live={"rate_limit_pause_s": 2.0}, telegram_url=tg.base_url)
        with live_node(config) as node:
            play_to_first_bar(sim, node)

            def refused() -> int:
                return node.strategy.counters()["total"]["refused"]

            # An order the exchange rejects (-2019 margin): reported as a refused entry, no back-off.
            sim.reject_next_order(-2019)
            assert node.control("signal", "BTC", "long")["accepted"]  # sent; the exchange answers later
            wait_for(lambda: refused() == 1, 15, "the rejected entry")
            assert not node.strategy.paused

            # 429: the entry is rejected, new entries pause for rate_limit_pause_s, then resume by themselves.
            sim.throttle(429, retry_after_s=1, count=1)
            assert node.control("signal", "BTC", "long")["accepted"]
            wait_for(lambda: node.strategy.paused, 15, "the back-off after a 429")
            assert refused() == 2
            during = node.control("signal", "BTC", "long")
            assert not during["accepted"] and "paus" in during["reason"]
            wait_for(lambda: not node.strategy.paused, 15, "entries to resume")

            # 418 (IP banned until a time): the pause lasts until that time.
            sim.throttle(418, retry_after_s=3, count=1)
            assert node.control("signal", "BTC", "long")["accepted"]
            wait_for(lambda: node.strategy.paused, 15, "the back-off after a 418")
            wait_for(lambda: not node.strategy.paused, 15, "entries to resume after the ban")

            posts = order_posts(sim)
            assert node.control("signal", "BTC", "long")["accepted"]
            wait_for(lambda: len(exchange_orders(sim)) == 3, 30, "a normal entry with its exits after the faults")
            assert order_posts(sim) == posts + 4
            assert node.node.trader.is_running and node.strategy.errors == 0
            wait_for(lambda: sum("rate limit" in t for t in tg.texts(TRADER_CHAT)) >= 2, 20, "two rate-limit messages")
            texts = tg.texts(TRADER_CHAT)
            node.control("flatten")
            wait_for(lambda: exchange_position(sim)[0] == 0 and not exchange_orders(sim), 20, "the flatten")
    rate_limited = [t for t in texts if "rate limit" in t]
    assert rate_limited[0].startswith("❌ Node error (live): Binance rate limit") and "-1003" in rate_limited[0]
    assert "banned until" in rate_limited[1]


def test_lifecycle_messages_and_clean_logs_of_ats_live(shared_data: Path, tmp_path: Path) -> None:
    """``ats live`` as a trader runs it: a clean start (no subscription error or warning), "reconnected" after
    dropped streams and after a pause in the data, "node stopped" on Ctrl-C, exit 0, and nothing left pending.
    Before: three ``subscribe_data`` errors and one "already subscribed" warning per symbol at start, no
    "reconnected" or "node stopped" message ever, and "Task was destroyed but it is pending!" at Ctrl-C."""
    data = btc_data(shared_data, bars=200, start_ms=RALLY_START_MS)
    env = {**SIM_ENV, **telegram_env()}
    with FakeTelegram(TELEGRAM_TOKEN) as tg, running_simulator(data, bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"], telegram_url=tg.base_url, live={"log_level": "INFO"})
        node = NodeProcess(config, env)
        try:
            wait_for(lambda: "🚀 Node started (live)" in tg.texts(TRADER_CHAT), 90, "the start message")
            sim.play()
            wait_for(lambda: sim.status()["tick"] >= 8, 30, "market data")
            sim.drop_connections()
            wait_for(lambda: any(t.startswith("🔌") for t in tg.texts(TRADER_CHAT)), 30, "the reconnect message")
            sim.silence(12)  # no message at all: the node sees the gap when data comes back
            wait_for(lambda: sum(t.startswith("🔌") for t in tg.texts(TRADER_CHAT)) >= 2, 30, "the gap message")
            assert node.interrupt() == 0
            wait_for(lambda: "⏹ Node stopped (live)" in tg.texts(TRADER_CHAT), 10, "the stop message")
            output = node.output()
        finally:
            node.close()
    assert "subscribe_data" not in output and "already subscribed" not in output, output[-3000:]
    assert "Task was destroyed" not in output and "Traceback" not in output, output[-3000:]
    assert "[ERROR]" not in output, [line for line in output.splitlines() if "[ERROR]" in line]
