"""Ctrl-C and ``kill -9`` of ``ats live`` with an open position, then a restart: the exchange keeps the
position protected, and the new process adopts it without duplicating anything.

The node runs as a trader runs it (``python -m nodes.cli live CONFIG`` in its own process); the simulator and
the fake Telegram server live in the test process, so they survive the kills. The replay is paused while the
node is down, so what happens meanwhile is only what the test does.

1. /signal on Telegram -> entry, stop, TP1, TP2 on the exchange. Ctrl-C: the exits stay. While the node is
   down the stop is cancelled on the exchange (by hand, as a trader might). Restart: the position is adopted,
   the missing stop is re-armed at the stop level from the entry, and nothing else is sent.
2. The replay goes on: TP1 fills, the new node moves the stop to the entry. kill -9 again. Restart: TP1 done
   and the break-even stop are recognised from the exchange (``/positions`` shows TP1 ✔, stop at the entry),
   no order is sent. The replay goes on: TP2 closes the rest and Telegram hears about it.
"""

from pathlib import Path

import pytest

from tests.fake_telegram import FakeTelegram
from tests.live_support import (
    RALLY_START_MS,
    SIM_ENV,
    TELEGRAM_TOKEN,
    TRADER_CHAT,
    NodeProcess,
    exchange_orders,
    exchange_position,
    order_posts,
    telegram_env,
    wait_for,
    write_configs,
)
from tests.simulator_support import SignedClient, btc_data, running_simulator

STARTED = "🚀 Node started (live)"


def _stops(sim) -> list[dict]:  # noqa: ANN001
    return [o for o in exchange_orders(sim) if o["type"] == "STOP_MARKET"]


def _targets(sim) -> list[dict]:  # noqa: ANN001
    return [o for o in exchange_orders(sim) if o["type"] == "LIMIT"]


def _start(config: Path, tg: FakeTelegram, env: dict[str, str]) -> NodeProcess:
    seen = tg.texts(TRADER_CHAT).count(STARTED)
    node = NodeProcess(config, env)
    try:
        wait_for(lambda: tg.texts(TRADER_CHAT).count(STARTED) > seen, 90, "the node to start and say so")
    except AssertionError:
        node.close()
        raise AssertionError(f"node did not start:\n{node.output()[-3000:]}") from None
    return node


def _ask(tg: FakeTelegram, command: str, answer_starts: str) -> str:
    before = len(tg.texts(TRADER_CHAT))
    tg.push_message(TRADER_CHAT, command)
    return wait_for(
        lambda: next((t for t in tg.texts(TRADER_CHAT)[before:] if t.startswith(answer_starts)), None),
        30,
        f"the answer to {command}",
    )


def test_kill_9_and_restart_adopts_positions_rearms_stops_keeps_tp1_state(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**SIM_ENV, **telegram_env()}
    data = btc_data(shared_data, bars=40, start_ms=RALLY_START_MS)
    with FakeTelegram(TELEGRAM_TOKEN) as tg, running_simulator(data, bar_seconds=0.5) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"], telegram_url=tg.base_url)
        rest = SignedClient(sim.http_url)
        node = _start(config, tg, env)
        try:
            sim.play()
            wait_for(lambda: sim.status()["tick"] >= 4, 30, "the first bar")
            tg.push_message(TRADER_CHAT, "/signal BTC long")
            wait_for(lambda: len(exchange_orders(sim)) == 3, 30, "the entry's three exit orders")
            sim.pause()
            amount, entry = exchange_position(sim)
            [stop] = _stops(sim)
            tp1, tp2 = sorted(t["price"] for t in _targets(sim))
            assert order_posts(sim) == 4

            # --- Ctrl-C with the position open: a clean stop that leaves the exits on the exchange
            assert node.interrupt() == 0
            node.close()
            assert exchange_position(sim)[0] == amount and len(exchange_orders(sim)) == 3
            # ... and then the stop disappears while nobody watches
            [algo] = rest.signed("GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT").json()
            assert rest.signed("DELETE", "/fapi/v1/algoOrder", algoId=algo["algoId"]).status_code == 200
            assert not _stops(sim)

            node = _start(config, tg, env)
            wait_for(lambda: len(_stops(sim)) == 1, 30, "the missing stop to be re-armed")
            [rearmed] = _stops(sim)
            assert rearmed["price"] == stop["price"] and rearmed["qty"] == amount and rearmed["reduce_only"]
            assert sorted(t["price"] for t in _targets(sim)) == [tp1, tp2]  # the targets were kept, not re-sent
            assert order_posts(sim) == 5  # only the re-armed stop
            positions = _ask(tg, "/positions", "📂")
            assert "BTCUSDT" in positions and "✔" not in positions, positions

            # --- TP1 fills under the new process: the stop follows to the entry
            sim.play()
            wait_for(lambda: [s["price"] for s in _stops(sim)] == [entry], 60, "the break-even stop")
            sim.pause()
            half = exchange_position(sim)[0]
            assert 0 < half < amount and _stops(sim)[0]["qty"] == half
            assert [t["price"] for t in _targets(sim)] == [tp2]
            posts = order_posts(sim)
            assert posts == 6  # the break-even stop

            # --- crash after TP1; restart: TP1 done and break-even known from the exchange, nothing sent
            node.kill9()
            node.close()
            node = _start(config, tg, env)
            positions = _ask(tg, "/positions", "📂")
            assert "✔" in positions and f"Stop ${entry}" in positions, positions
            assert order_posts(sim) == posts
            assert [s["price"] for s in _stops(sim)] == [entry] and [t["price"] for t in _targets(sim)] == [tp2]

            # --- TP2 closes the rest; the adopted trade is reported as such
            sim.play()
            wait_for(lambda: exchange_position(sim)[0] == 0, 60, "TP2 to close the position")
            wait_for(lambda: not exchange_orders(sim), 10, "no order left on the exchange")
            wait_for(
                lambda: any(t.startswith("🏁 BTCUSDT LONG trade closed") for t in tg.texts(TRADER_CHAT)), 20,
                "the trade-closed message",
            )
            assert order_posts(sim) == posts  # no duplicate at any point
            assert node.interrupt() == 0  # Ctrl-C: a clean stop
            output = node.output()
        finally:
            node.close()
    texts = tg.texts(TRADER_CHAT)
    assert any(t.startswith("🎯 BTCUSDT TP2 hit at $") for t in texts), "\n---\n".join(texts)
    assert "Traceback" not in output, output[-3000:]
