"""The notifier against a fake Telegram Bot API over real HTTP: 429 with retry_after, 500s, then an outage.

A real BacktestEngine drives a scripted strategy on real bars; the notifier runs in live mode (network), with
a second notifier in backtest mode beside it recording every message the trader should get, in order.
"""

import logging
import re
import time
from pathlib import Path

import pytest

from nodes.telegram import TelegramNotifier, TelegramNotifierConfig
from nodes.telegram.credentials import TelegramConfigError
from nodes.telegram.link import TelegramLink
from nodes.telegram.settings import DEFAULT_EVENT_SETTINGS
from tests.fake_telegram import FakeTelegram, Fault
from tests.telegram_support import ScriptedConfig, ScriptedStrategy, add, load_bars, make_engine

TOKEN = "424242:AAF-very-secret-token_value"
CHAT = 1001
ALL_ON = {key: "on" for key in DEFAULT_EVENT_SETTINGS}
DROPPED = re.compile(r"^⚠️ (\d+) messages were dropped during a Telegram outage$")


@pytest.fixture
def telegram_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", str(CHAT))


def live_config(base_url: str, **overrides: object) -> TelegramNotifierConfig:
    settings: dict = dict(
        component_id="TelegramLive", mode="live", language="en", base_url=base_url, events=ALL_ON,
        queue_size=8, backoff_initial_s=0.05, backoff_max_s=0.2, request_timeout_s=2.0, commands=False,
    )
    settings.update(overrides)
    return TelegramNotifierConfig(**settings)


def wait_until(predicate, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_outage_keeps_order_never_blocks_and_counts_every_drop(
    shared_data: Path, telegram_env: None, capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    instrument, bars = load_bars(shared_data, rows=1440)
    strategy = ScriptedStrategy(ScriptedConfig(
        instrument_id=str(instrument.id), daily_loss_limit=40, quick_exit_trade=4, flatten_at_bar=151,
        reconnect_at_bar=100, error_at_bar=150,
    ))
    with FakeTelegram(TOKEN) as tg:
        live = TelegramNotifier(live_config(tg.base_url))
        expected = TelegramNotifier(TelegramNotifierConfig(
            component_id="TelegramExpected", mode="backtest", language="en", events=ALL_ON
        ))
        engine = make_engine(instrument, bars[:1])
        engine.clear_data()
        add(engine, strategy, live, expected)

        # 1. Telegram throttles, then fails twice, while the first messages are produced.
        tg.inject(Fault(429, retry_after=1), Fault(500), Fault(500))
        engine.add_data(bars[:100])
        engine.run(streaming=True)
        wait_until(lambda: tg.faults_left() == 0 and live.link.pending() == 0)

        # 2. Telegram goes away; the rest of the day's trading happens during the outage.
        tg.go_down()
        engine.clear_data()
        engine.add_data(bars[100:])
        started = time.perf_counter()
        engine.run(streaming=True)
        engine.end()
        outage_run_s = time.perf_counter() - started
        time.sleep(1.0)
        assert live.link.pending() > 0  # still waiting, not lost
        tg.come_back()
        link = live.link
        engine.dispose()  # flushes the notifier

        received = tg.texts(CHAT)
        served = [s.status for s in tg.served if s.method == "sendMessage"]
        retry_gap = next(
            b.at - a.at for a, b in zip(tg.served, tg.served[1:], strict=False) if a.status == 429
        )

    want = [m.text for m in expected.rendered]
    assert len(want) > 2 * 8 + 2, "the run must overflow the bound in both phases"

    # Order kept; every gap announced with its exact size; nothing else missing.
    position, announced = 0, 0
    for text in received:
        match = DROPPED.match(text)
        if match:
            position += int(match.group(1))
            announced += int(match.group(1))
            continue
        assert text == want[position], f"message {position} out of order or altered"
        position += 1
    assert position == len(want), "messages lost without being announced"
    assert announced == link.outbox.dropped_total > 0
    assert sum(1 for t in received if DROPPED.match(t)) >= 2  # one notice per outage phase

    # What the server saw: 429, two 500s, refused while down, then success; retry_after was honoured.
    assert served[:3] == [429, 500, 500]
    assert 0 in served and served[-1] == 200
    assert retry_gap >= 0.95

    # The trading loop was never blocked: each publish (the notifier runs inline) stays far below any
    # network delay, and the whole outage phase ran while Telegram was unreachable.
    # Generous bounds for a loaded machine, yet a sender on the trading thread would have sat out the 1 s
    # retry_after inside a publish, and the outage phase inside the run.
    assert max(strategy.publish_seconds) < 0.25, max(strategy.publish_seconds)
    assert outage_run_s < 5.0  # a sender on the trading thread would retry the refused connection forever

    # The token appears nowhere: not in a message, not in Nautilus's log, not in Python logging.
    out, err = capfd.readouterr()
    assert all(TOKEN not in text for text in received)
    assert TOKEN not in out + err + caplog.text
    # The retries happened and were counted (their log lines only print when this process's Nautilus logging
    # was set up by this test: logging is initialised once per process).
    assert link.stats.retries >= 3
    with capfd.disabled():
        print(f"\npublish (notifier inline) max {max(strategy.publish_seconds) * 1000:.2f} ms over "
              f"{len(strategy.publish_seconds)} events; outage phase ran in {outage_run_s:.3f} s")


def test_silent_events_are_sent_without_sound(shared_data: Path, telegram_env: None) -> None:
    instrument, bars = load_bars(shared_data, rows=35)
    strategy = ScriptedStrategy(ScriptedConfig(instrument_id=str(instrument.id)))
    with FakeTelegram(TOKEN) as tg:
        live = TelegramNotifier(live_config(tg.base_url, events={"signal": "silent", "entry_filled": "off"}))
        engine = make_engine(instrument, bars)
        add(engine, strategy, live)
        engine.run()
        engine.dispose()
        sent = {m.text.split("\n")[0]: m.disable_notification for m in tg.sent}
    assert sent == {
        "🚀 Node started (backtest)": True,  # node events default to silent
        "🟢 NEARUSDT LONG": True,
        "⏹ Node stopped (backtest)": True,
    }


def test_missing_token_is_a_clear_error_naming_the_variable(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ATS_TEST_NO_TOKEN", raising=False)
    instrument, bars = load_bars(shared_data, rows=5)
    engine = make_engine(instrument, bars)
    add(engine, TelegramNotifier(live_config("http://127.0.0.1:9/bot", token_env="ATS_TEST_NO_TOKEN")))
    with pytest.raises(TelegramConfigError, match="ATS_TEST_NO_TOKEN"):
        engine.run()
    engine.dispose()


def test_link_alone_truncates_long_texts_and_survives_permanent_refusals() -> None:
    logged: list[tuple[str, str]] = []
    with FakeTelegram(TOKEN) as tg:
        link = TelegramLink(
            token=TOKEN, base_url=tg.base_url, chat_ids=(CHAT, 2002), queue_size=10, backoff_initial_s=0.05,
            backoff_max_s=0.1, request_timeout_s=2.0, dropped_text=str, log=lambda *entry: logged.append(entry),
        )
        link.start()
        tg.inject(Fault(400))  # a bad request is not retried: it would never succeed
        link.submit("first")
        link.submit("x" * 5000, silent=True, chat_ids=(CHAT,))
        assert link.flush(10) == 0
        link.stop()
        sent = list(tg.sent)
    assert [(m.chat_id, len(m.text)) for m in sent] == [(2002, 5), (CHAT, 4096)]
    assert sent[1].text.endswith("…") and sent[1].disable_notification
    assert link.stats.failed == 1 and link.stats.retries == 0
    assert any(level == "error" and "BadRequest" in text for level, text in logged)


def test_a_rejected_token_is_logged_without_the_token_and_nothing_retries_forever() -> None:
    logged: list[tuple[str, str]] = []
    wrong = "999999:AAF-wrong-token"
    with FakeTelegram(TOKEN) as tg:
        link = TelegramLink(
            token=wrong, base_url=tg.base_url, chat_ids=(CHAT,), queue_size=10, backoff_initial_s=0.05,
            backoff_max_s=0.1, request_timeout_s=2.0, dropped_text=str, log=lambda *entry: logged.append(entry),
        )
        link.start()
        link.submit("one")
        link.submit("two")
        assert link.flush(10) == 0
        link.stop()
        served = [s.status for s in tg.served]
    assert served == [401, 401] and link.stats.failed == 2 and tg.sent == []
    assert [level for level, _ in logged] == ["error", "error"]
    assert all("InvalidToken" in text and wrong not in text for _, text in logged)
