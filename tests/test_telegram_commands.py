"""Control commands over real HTTP: a fake Telegram Bot API queues the trader's messages for getUpdates, the
notifier polls them, and a real BacktestEngine runs the scripted strategy that answers on CONTROL_ENDPOINT.

The engine runs in streaming chunks: between chunks the test sends commands and waits until the notifier has
fetched them; the next chunk's first clock tick runs them on the engine's thread, as a live node's loop would.
"""

import time
from pathlib import Path

import pytest
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.trading.strategy import Strategy

from nodes.telegram import TelegramNotifier, TelegramNotifierConfig
from strategies.ats import AtsStrategy
from tests.fake_telegram import FakeTelegram
from tests.strategy_support import ats_config, path_bars, perp
from tests.strategy_support import make_engine as make_strategy_engine
from tests.telegram_support import ScriptedConfig, ScriptedStrategy, add, load_bars, make_engine

TOKEN = "777001:AAH-commands-test-secret"
TRADER = 1001
STRANGER = 666
OTHER = 2002  # a second allowed chat
T0 = 1_700_006_400_000_000_000  # 2023-11-15 00:00 UTC


def notifier_for(tg: FakeTelegram) -> TelegramNotifier:
    return TelegramNotifier(TelegramNotifierConfig(
        component_id="TelegramCommands", mode="live", language="en", base_url=tg.base_url,
        events={"signal": "off", "entry_filled": "off", "node_started": "off", "node_stopped": "off"},
        poll_timeout_s=1, command_drain_interval_s=60.0, backoff_initial_s=0.05, request_timeout_s=2.0,
    ))


class Session:
    """One engine, one notifier, one fake Telegram; ``send`` runs the engine until the commands have acted."""

    def __init__(
        self, tg: FakeTelegram, engine: BacktestEngine, bars: list, strategy: Strategy, bars_per_minute: int = 1
    ) -> None:
        self.tg = tg
        self.step = bars_per_minute  # the inbox timer ticks each minute: feed at least a minute per command
        self.bars = bars
        self.strategy = strategy
        self.notifier = notifier_for(tg)
        self.engine = engine
        add(self.engine, self.strategy, self.notifier)
        self.done = 0  # bars fed so far

    def run_to(self, bar_count: int) -> None:
        self.engine.clear_data()
        self.engine.add_data(self.bars[self.done:bar_count])
        self.engine.run(streaming=True)
        self.done = bar_count

    def send(self, *messages: tuple[int, str]) -> None:
        """The trader (or a stranger) types; one more bar of trading lets the notifier act on it."""
        for chat_id, text in messages:
            self.tg.push_message(chat_id, text)
        deadline = time.monotonic() + 10
        while self.notifier.commands_waiting < len(messages):
            assert time.monotonic() < deadline, "the notifier did not fetch the commands"
            time.sleep(0.02)
        self.run_to(self.done + self.step)

    def replies(self, count: int) -> list[str]:
        """The last ``count`` messages the trader got, once they have arrived."""
        self.notifier.link.flush(10)
        return self.tg.texts(TRADER)[-count:]

    def position_open(self) -> bool:
        return bool(self.strategy.cache.positions_open())

    def close(self) -> None:
        self.engine.end()
        self.engine.dispose()


@pytest.fixture
def session(shared_data: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", f"{TRADER},{OTHER}")
    with FakeTelegram(TOKEN) as tg:
        instrument, bars = load_bars(shared_data, rows=240)
        engine = make_engine(instrument, bars[:1])
        engine.clear_data()
        s = Session(tg, engine, bars, ScriptedStrategy(ScriptedConfig(instrument_id=str(instrument.id))))
        yield s
        s.close()


def test_commands_from_chats_not_on_the_allow_list_do_nothing(session: Session) -> None:
    session.run_to(31)  # the first trade is open (entered at bar 30)
    session.tg.push_message(TRADER, "/pause", date=time.time() - 3600)  # typed an hour before the node started
    assert session.position_open()
    session.send((STRANGER, "/flatten"), (STRANGER, "/flatten confirm"), (STRANGER, "/pause"))
    session.run_to(36)
    assert session.position_open()
    assert not session.strategy.requests and not session.strategy.paused  # the stale /pause was ignored too
    assert session.notifier.commands_ignored == 3
    session.notifier.link.flush(10)
    assert session.tg.texts(STRANGER) == []  # not even an answer


def test_status_positions_balance_daily(session: Session) -> None:
    session.run_to(31)
    session.send((TRADER, "/status"))
    assert session.replies(1) == [
        "📋 Status (backtest)\n"
        "New entries: active\n"
        "Equity: 9998.59 USDT\n"
        "Today's PnL: +0.00 USDT\n"
        "\n"
        "📂 Positions (1)\n"
        "• NEARUSDT LONG 1000 @ $2.826\n"
        "  Stop $2.815 · TP1 $2.837 · TP2 $2.849 · Unrealized +0.00 USDT"
    ]
    session.send((TRADER, "/balance"), (TRADER, "/daily@ats_bot"), (TRADER, "/positions"))
    balance, daily, positions = session.replies(3)
    assert balance.startswith("💰 Balance\nTotal: 9998.59 USDT\nFree: ")
    assert daily == (
        "📅 Today \nRealized: +0.00 USDT\nUnrealized: +0.00 USDT\nTotal: +0.00 USDT\n"
        "Loss limit: 1000000000.00 USDT\nTrades: 1"
    )
    assert positions.startswith("📂 Positions (1)\n• NEARUSDT LONG 1000 @ $2.826")
    assert [r.command for r in session.strategy.requests] == ["status", "balance", "daily", "positions"]
    assert {r.source for r in session.strategy.requests} == {f"telegram:{TRADER}"}


def test_pause_stops_new_entries_and_resume_restarts_them(session: Session) -> None:
    session.run_to(50)  # first trade opened at 30 and stopped out at 37
    session.send((TRADER, "/pause"))
    assert session.replies(1) == ["⏸ New entries paused (open positions are still managed)"]
    # The asking chat gets the answer, not the same news twice; the other allowed chat hears of it quietly.
    assert "⏸ New entries paused" not in session.tg.texts(TRADER)
    assert [(m.text, m.disable_notification) for m in session.tg.sent if m.chat_id == OTHER][-1] == (
        "⏸ New entries paused", True
    )
    entries = session.strategy.entries
    session.run_to(100)  # bars 60 and 90 would have entered
    assert session.strategy.entries == entries
    session.send((TRADER, "/signal NEARUSDT short"))
    assert session.replies(1) == ["🚫 Manual signal refused: paused"]
    assert session.tg.texts(OTHER)[-1] == "🚫 NEARUSDT signal refused: paused"
    assert session.strategy.entries == entries
    session.send((TRADER, "/resume"))
    assert session.replies(1) == ["▶️ New entries resumed"]
    session.send((TRADER, "/signal nearusdt long"))
    assert session.replies(1) == ["📨 Manual signal accepted: NEARUSDT LONG"]
    assert session.strategy.entries == entries + 1
    assert session.position_open()


def test_flatten_asks_for_confirmation_then_closes_everything(session: Session) -> None:
    session.run_to(31)
    session.send((TRADER, "/flatten"))
    assert session.replies(1) == [
        "⚠️ This closes ALL positions and cancels their orders.\nSend /flatten confirm within 60 s to proceed"
    ]
    session.run_to(33)
    assert session.position_open() and not session.strategy.requests  # nothing happens without the confirm
    session.send((TRADER, "/flatten confirm"))
    assert not session.position_open()
    assert [r.command for r in session.strategy.requests] == ["flatten"]
    replies = session.replies(3)
    assert "⏹ Closed 1 positions (NEARUSDT), cancelled 0 orders" in replies
    assert any(text.startswith("⏹ NEARUSDT flattened at $") for text in replies)  # the event, too
    session.send((TRADER, "/flatten confirm"))  # a second confirm has nothing to confirm
    assert session.replies(1) == ["⌛ Nothing to confirm: send /flatten first"]


def test_the_real_strategy_through_telegram(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same commands into the real AtsStrategy: its answers, rendered; pause refuses; flatten closes all."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_CHAT_IDS", str(TRADER))
    btc, eth, sol = perp("BTCUSDT"), perp("ETHUSDT"), perp("SOLUSDT")
    engine = make_strategy_engine([btc, eth, sol])
    bars = sorted(
        path_bars(btc, [50_000.0] * 30, T0) + path_bars(eth, [2_000.0] * 30, T0) + path_bars(sol, [150.0] * 30, T0),
        key=lambda bar: bar.ts_init,
    )
    strategy = AtsStrategy(ats_config(
        [btc, eth, sol], {"scan.entries": "NONE", "scan.interval_minutes": 1440},
    ))
    with FakeTelegram(TOKEN) as tg:
        session = Session(tg, engine, bars, strategy, bars_per_minute=3)
        session.run_to(6)  # two minutes of three symbols
        session.send((TRADER, "/signal BTCUSDT long"), (TRADER, "/signal ethusdt short"))
        assert session.replies(2) == [
            "📨 Manual signal accepted: BTCUSDT LONG", "📨 Manual signal accepted: ETHUSDT SHORT"
        ]
        session.run_to(12)
        session.send((TRADER, "/positions"))
        (positions,) = session.replies(1)
        assert positions.startswith("📂 Positions (2)\n")
        assert "• BTCUSDT LONG 0.199 @ $50000.0\n  Stop $49000.0 · TP1 $52000.0 · TP2 $54000.0" in positions
        session.send((TRADER, "/pause"))
        session.send((TRADER, "/signal SOLUSDT long"))
        assert session.replies(1)[0].startswith("🚫 Manual signal refused: ")
        session.send((STRANGER, "/flatten"), (STRANGER, "/flatten confirm"))
        assert len(session.strategy.cache.positions_open()) == 2
        session.send((TRADER, "/flatten"))
        session.send((TRADER, "/flatten confirm"))
        assert session.strategy.cache.positions_open() == []
        replies = session.replies(8)
        assert any(r.startswith("⏹ Closed 2 positions (") and "cancelled 6 orders" in r for r in replies), replies
        session.send((TRADER, "/status"))
        (status,) = session.replies(1)
        assert status.startswith("📋 Status (backtest)\nNew entries: paused\nEquity: ")
        assert status.endswith("📂 No open positions")
        session.close()
