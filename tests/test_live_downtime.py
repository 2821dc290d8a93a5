"""``kill -9`` of ``ats live`` with three open trades, the market moving while it is down, then a restart.

Real BTC, ETH and BNB 1m bars from the 2025-05-18 rally, the node as a trader runs it (its own process), the
simulator and the fake Telegram server in the test process. While the node is down:
- BTC LONG reaches TP1 and TP2: its position closes, its stop stays on the exchange (a conditional order is not
  cancelled by the exchange when the targets close the position);
- ETH SHORT is stopped out;
- BNB LONG reaches TP1 only: half the position is left, still under the stop for the whole.

At restart the node must report both closed trades (ledger and Telegram, with the exit and the PnL of the
exchange's fills), cancel BTC's orphan stop, see BNB's TP1 from the exits' state and move its stop to
break-even for the half: one stop per position, no reduce-only order on a flat symbol. Before this was built,
the closed trades were never reported, BTC's stop stayed (and would close or flip the next BTC position), and
BNB was adopted with TP1 not done and the full-size stop at the original level.

The daily loss limit survives a restart: a SHORT stopped out while the node was down, a limit below that loss:
after the restart the day's PnL is the exchange's and entries are refused. Before, the restarted node counted
the day from zero and let the next entry through.
"""

from decimal import Decimal
from pathlib import Path

import pytest

from simulator.invariants import InvariantMonitor
from simulator.sources import ReplayData, from_files
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
from tests.simulator_support import running_simulator

STARTED = "🚀 Node started (live)"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
_data: dict[str, ReplayData] = {}


def _rally(shared_data: Path, bars: int) -> ReplayData:
    if "rally" not in _data:
        folder = shared_data / "ohlcv_2025-03_2025-06"
        _data["rally"] = from_files([folder / f"{s}-1m.csv.gz" for s in SYMBOLS])
    return _data["rally"].window(start_ms=RALLY_START_MS, limit=bars)


def _start(config: Path, tg: FakeTelegram, env: dict[str, str]) -> NodeProcess:
    seen = tg.texts(TRADER_CHAT).count(STARTED)
    node = NodeProcess(config, env)
    try:
        wait_for(lambda: tg.texts(TRADER_CHAT).count(STARTED) > seen, 90, "the node to start and say so")
    except AssertionError:
        node.close()
        raise AssertionError(f"node did not start:\n{node.output()[-3000:]}") from None
    return node


def _stops(sim, symbol: str) -> list[dict]:  # noqa: ANN001
    return [o for o in exchange_orders(sim, symbol) if o["type"] == "STOP_MARKET"]


def test_kill_9_with_fills_and_tp1_while_down_then_restart_reports_and_repairs(
    shared_data: Path, tmp_path: Path
) -> None:
    env = {**SIM_ENV, **telegram_env()}
    data = _rally(shared_data, bars=60)
    with FakeTelegram(TELEGRAM_TOKEN) as tg, running_simulator(data, bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, SYMBOLS, telegram_url=tg.base_url)
        node = _start(config, tg, env)
        try:
            sim.play()
            wait_for(lambda: sim.status()["tick"] >= 4, 30, "the first bar")
            for command in ("/signal BTC long", "/signal ETH short", "/signal BNB long"):
                tg.push_message(TRADER_CHAT, command)
            wait_for(lambda: all(len(exchange_orders(sim, s)) == 3 for s in SYMBOLS), 30, "three trades' exits")
            bnb_amount, bnb_entry = exchange_position(sim, "BNBUSDT")
            node.kill9()
            node.close()

            # While the node is down the market goes on.
            wait_for(lambda: exchange_position(sim, "BTCUSDT")[0] == 0, 60, "BTC's TP2")
            wait_for(lambda: exchange_position(sim, "ETHUSDT")[0] == 0, 60, "ETH's stop")
            wait_for(lambda: 0 < exchange_position(sim, "BNBUSDT")[0] < bnb_amount, 60, "BNB's TP1")
            sim.pause()
            assert len(_stops(sim, "BTCUSDT")) == 1  # the orphan the restart must cancel
            [bnb_stop] = _stops(sim, "BNBUSDT")
            assert bnb_stop["qty"] == bnb_amount and bnb_stop["price"] < bnb_entry
            half = exchange_position(sim, "BNBUSDT")[0]
            posts = order_posts(sim)

            node = _start(config, tg, env)
            with InvariantMonitor(sim, grace_s=10) as check:
                wait_for(
                    lambda: [s["price"] for s in _stops(sim, "BNBUSDT")] == [bnb_entry], 20, "BNB's break-even stop"
                )
                wait_for(lambda: not exchange_orders(sim, "BTCUSDT"), 20, "BTC's orphan stop cancelled")
                [stop] = _stops(sim, "BNBUSDT")
                assert stop["qty"] == half and stop["reduce_only"]
                assert [o["type"] for o in exchange_orders(sim, "BNBUSDT")] == ["LIMIT", "STOP_MARKET"]  # TP2 kept
                assert not exchange_orders(sim, "ETHUSDT")
                assert order_posts(sim) == posts + 1  # only BNB's break-even stop
                # The restart books what closed while it was down from the exchange's fills; under the whole suite's
                # load that took longer than 20 s once (alone: seconds), so the wait is the market waits' 60 s.
                wait_for(lambda: sum(t.startswith("🏁") for t in tg.texts(TRADER_CHAT)) >= 2, 60, "two closed trades")
                wait_for(lambda: any("🔄" in t for t in tg.texts(TRADER_CHAT)), 60, "the repair message")
            check.assert_clean()
            tg.push_message(TRADER_CHAT, "/positions")
            positions = wait_for(
                lambda: next((t for t in tg.texts(TRADER_CHAT) if t.startswith("📂")), None), 20, "/positions"
            )
            assert "BNBUSDT" in positions and "✔" in positions and "BTCUSDT" not in positions, positions
            assert node.interrupt() == 0
            output = node.output()
        finally:
            node.close()
    texts = tg.texts(TRADER_CHAT)
    closed = {t.split()[1]: t for t in texts if t.startswith("🏁")}
    assert "Reason: TP1 + TP2" in closed["BTCUSDT"] and "BTCUSDT LONG" in closed["BTCUSDT"], closed
    assert "Reason: stop" in closed["ETHUSDT"] and "ETHUSDT SHORT" in closed["ETHUSDT"], closed
    repaired = "\n".join(t for t in texts if t.startswith("🔄"))  # what closed while down, then the repairs
    assert "BTCUSDT: the LONG trade closed while the node was down (TP1+TP2" in repaired, repaired
    assert "ETHUSDT: the SHORT trade closed while the node was down (STOP" in repaired, repaired
    assert "BNBUSDT: TP1 had filled; stop moved to break-even" in repaired, repaired
    assert "BTCUSDT: no position; 1 reduce-only order(s) cancelled" in repaired, repaired
    assert "Traceback" not in output, output[-3000:]


def test_restart_keeps_the_day_loss_and_the_daily_limit(shared_data: Path, tmp_path: Path) -> None:
    data = _rally(shared_data, bars=60)
    with running_simulator(data, bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["ETHUSDT"], strategy={"risk.daily_loss_limit_usdt": 20.0})
        with live_node(config) as node:
            play_to_first_bar(sim, node)
            assert node.control("signal", "ETH", "short")["accepted"]
            wait_for(lambda: len(exchange_orders(sim, "ETHUSDT")) == 3, 30, "the exits")
        # Down: the stop closes the SHORT at a loss beyond the day's limit.
        wait_for(lambda: exchange_position(sim, "ETHUSDT")[0] == 0, 60, "ETH's stop")
        loss = Decimal(sim.status()["wallet_balance"]) - 10_000
        assert loss < -20
        with live_node(config) as node:
            status = node.control("status")
            refused = node.control("signal", "ETH", "long")
            ledger = node.call(lambda: node.strategy.ledger(include_open=False))
    assert status["daily_pnl"] == pytest.approx(float(loss), abs=0.01)
    assert not refused["accepted"] and "daily loss limit" in refused["reason"], refused
    [trade] = ledger  # booked from the exchange's fills while the node was down
    assert trade["exit_reason"] == "STOP" and trade["realized_pnl"] == pytest.approx(float(loss), abs=0.01)
