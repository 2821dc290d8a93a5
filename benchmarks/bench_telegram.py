"""Telegram notifier: what it costs the trading loop per event, and how fast it delivers to a loopback Bot API.

The trading-loop cost is the work the actor does inline for each strategy event (render the text, append it
to the outbox and wake the sender), measured while the sender thread is busy posting to a fake Bot API on
127.0.0.1 (tests/fake_telegram.py), so the GIL is contended as it is live.
"""

import json
import time

from benchmarks.table import Row
from nodes.telegram.link import TelegramLink
from nodes.telegram.templates import Renderer
from strategies.events import ExitEvent, PositionClosedEvent, SignalEvent
from tests.fake_telegram import FakeTelegram

TOKEN = "100000:AAB-benchmark-token"
FACTORS = json.dumps({"T": {"value": 0.6, "contribution": 21.4}, "M": {"value": 0.4, "contribution": 12.2}})


def _events() -> list[object]:
    instrument = "BTCUSDT-PERP.BINANCE"
    return [
        SignalEvent(instrument=instrument, direction="LONG", strength=85.0, leverage=5, entry=50_000.0,
                    stop=49_000.0, tp1=52_000.0, tp2=54_000.0, price_precision=1, factors_json=FACTORS),
        ExitEvent(instrument=instrument, kind="TP1", direction="LONG", price=52_000.0, quantity=0.1,
                  new_stop=50_000.0, pnl_pct=2.0, price_precision=1),
        PositionClosedEvent(instrument=instrument, direction="LONG", entry_price=50_000.0, exit_price=54_000.0,
                            quantity=0.2, realized_pnl=612.3, pnl_pct=6.1, duration_s=12_345.0,
                            exit_reason="TP1+TP2", price_precision=1),
    ]


def rows(quick: bool) -> list[Row]:
    events = _events()
    count = 3_000 if quick else 30_000
    renderer = Renderer("zh")
    with FakeTelegram(TOKEN) as tg:
        link = TelegramLink(
            token=TOKEN, base_url=tg.base_url, chat_ids=(1,), queue_size=count, backoff_initial_s=0.05,
            backoff_max_s=0.2, request_timeout_s=5.0, dropped_text=str, log=lambda *_: None,
        )
        link.start()
        worst = 0.0
        started = time.perf_counter()
        for n in range(count):
            t0 = time.perf_counter()
            link.submit(renderer.render(events[n % len(events)]) or "")
            worst = max(worst, time.perf_counter() - t0)
        inline_us = (time.perf_counter() - started) / count * 1e6
        # Delivery: everything queued above goes out over HTTP, one request per message, in order.
        sent_before, t1 = len(tg.sent), time.perf_counter()
        deliver = min(count, 300 if quick else 2_000)
        while len(tg.sent) - sent_before < deliver:
            time.sleep(0.01)
        per_second = deliver / (time.perf_counter() - t1)
        link.stop()
    return [
        Row("telegram: render + enqueue on the trading loop", "us/event", inline_us, "<= 100 us",
            note=f"zh, sender + fake server busy in-process (GIL); worst {worst * 1e3:.2f} ms"),
        Row("telegram: delivery to a loopback Bot API", "msgs/s", per_second,
            note="one sendMessage per message, in order (Telegram itself allows ~30/s)"),
    ]
