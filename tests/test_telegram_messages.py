"""Every message type, rendered by the notifier from real events of a backtest on shared Binance data, in
Chinese and English, compared with the expected text. Backtest mode: no network, messages go to a file."""

from pathlib import Path

import pytest

from nodes.telegram import TelegramNotifier, TelegramNotifierConfig, read_messages
from tests.telegram_support import ScriptedConfig, ScriptedStrategy, add, load_bars, make_engine

# The first message of each kind in the run, exactly as the trader reads it.
GOLDEN_ZH = {
    "node_started": "🚀 节点已启动 (回测)",
    "signal": (
        "🟢 NEARUSDT LONG\n"
        "\n"
        "📊 信号强度: 83/100\n"
        "⚡ 杠杆: 5x\n"
        "\n"
        "💰 入场: $2.826\n"
        "🛑 止损: $2.815 (0.4%)\n"
        "\n"
        "🎯 止盈1: $2.837 (0.4%) - 平50%\n"
        "🎯 止盈2: $2.849 (0.8%) - 平50%\n"
        "\n"
        "🔍 主要因子: 趋势 +21.4 · 动量 +12.2 · 量能 -6.5\n"
        "\n"
        "✅ 系统将自动执行和管理\n"
        "📢 关键事件时将通知"
    ),
    "entry_filled": (
        "✅ NEARUSDT LONG 已开仓\n"
        "成交价: $2.826\n"
        "数量: 1000"
    ),
    "stop": (
        "🛑 NEARUSDT 止损触发 $2.817\n"
        "总亏损 -0.32%"
    ),
    "position_closed": (
        "🏁 NEARUSDT LONG 交易结束\n"
        "盈亏: -11.82 USDT (-0.42%)\n"
        "入场 $2.826 → 出场 $2.817\n"
        "持仓时长: 7分钟\n"
        "原因: 止损"
    ),
    "tp1": (
        "🎯 NEARUSDT 止盈1触达 $2.806\n"
        "已平50%，止损移至保本 $2.813"
    ),
    "tp2": (
        "🎯 NEARUSDT 止盈2触达 $2.798\n"
        "已平剩余50%，总盈利 +0.39%"
    ),
    "node_reconnected": "🔌 已重新连接 (回测)",
    "dynamic_exit": (
        "🔄 NEARUSDT 动态退出 $2.744\n"
        "已平仓，总亏损 -0.18%"
    ),
    "node_error": "❌ 节点错误 (回测): funding feed stale",
    "flatten": (
        "⏹ NEARUSDT 一键平仓 $2.748\n"
        "已平仓，总亏损 -0.29%"
    ),
    "daily_loss_limit": (
        "⛔ 已达每日亏损上限\n"
        "今日盈亏: -53.45 USDT / 上限 40.00 USDT\n"
        "今日不再开新仓"
    ),
    "node_stopped": "⏹ 节点已停止 (回测)",
}

GOLDEN_EN = {
    "node_started": "🚀 Node started (backtest)",
    "signal": (
        "🟢 NEARUSDT LONG\n"
        "\n"
        "📊 Strength: 83/100\n"
        "⚡ Leverage: 5x\n"
        "\n"
        "💰 Entry: $2.826\n"
        "🛑 Stop: $2.815 (0.4%)\n"
        "\n"
        "🎯 TP1: $2.837 (0.4%) - closes 50%\n"
        "🎯 TP2: $2.849 (0.8%) - closes 50%\n"
        "\n"
        "🔍 Top factors: Trend +21.4 · Momentum +12.2 · Volume -6.5\n"
        "\n"
        "✅ The system executes and manages this trade\n"
        "📢 You will hear about key events"
    ),
    "entry_filled": (
        "✅ NEARUSDT LONG entry filled\n"
        "Price: $2.826\n"
        "Quantity: 1000"
    ),
    # "stop" is switched off for the English notifier in this run
    "position_closed": (
        "🏁 NEARUSDT LONG trade closed\n"
        "PnL: -11.82 USDT (-0.42%)\n"
        "Entry $2.826 → exit $2.817\n"
        "Duration: 7m\n"
        "Reason: stop"
    ),
    "tp1": (
        "🎯 NEARUSDT TP1 hit at $2.806\n"
        "Closed 50%, stop moved to break-even $2.813"
    ),
    "tp2": (
        "🎯 NEARUSDT TP2 hit at $2.798\n"
        "Closed the remaining 50%, total profit +0.39%"
    ),
    "node_reconnected": "🔌 Reconnected (backtest)",
    "dynamic_exit": (
        "🔄 NEARUSDT dynamic exit at $2.744\n"
        "Position closed, total loss -0.18%"
    ),
    "node_error": "❌ Node error (backtest): funding feed stale",
    "flatten": (
        "⏹ NEARUSDT flattened at $2.748\n"
        "Position closed, total loss -0.29%"
    ),
    "daily_loss_limit": (
        "⛔ Daily loss limit reached\n"
        "Today: -53.45 USDT / limit 40.00 USDT\n"
        "No new entries today"
    ),
    "node_stopped": "⏹ Node stopped (backtest)",
}

# The second signal is the first short; the third trade ends on the break-even stop after TP1.
SHORT_SIGNAL_EN = (
    "🔴 NEARUSDT SHORT\n"
    "\n"
    "📊 Strength: 83/100\n"
    "⚡ Leverage: 5x\n"
    "\n"
    "💰 Entry: $2.813\n"
    "🛑 Stop: $2.824 (0.4%)\n"
    "\n"
    "🎯 TP1: $2.802 (0.4%) - closes 50%\n"
    "🎯 TP2: $2.790 (0.8%) - closes 50%\n"
    "\n"
    "🔍 Top factors: Trend +21.4 · Momentum +12.2 · Volume -6.5\n"
    "\n"
    "✅ The system executes and manages this trade\n"
    "📢 You will hear about key events"
)
BREAKEVEN_CLOSE_ZH_REASON = "原因: 止盈1+保本止损"


@pytest.fixture(scope="module")
def run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    instrument, bars = load_bars(shared_data, rows=1440)
    engine = make_engine(instrument, bars)
    strategy = ScriptedStrategy(ScriptedConfig(
        instrument_id=str(instrument.id), daily_loss_limit=40, quick_exit_trade=4, flatten_at_bar=151,
        reconnect_at_bar=100, error_at_bar=150,
    ))
    out = tmp_path_factory.mktemp("telegram") / "messages.jsonl"
    zh = TelegramNotifier(TelegramNotifierConfig(component_id="TelegramZH", mode="backtest", language="zh"))
    en = TelegramNotifier(TelegramNotifierConfig(
        component_id="TelegramEN", mode="backtest", language="en", output_path=str(out),
        events={"stop": "off", "node_error": "silent"},
    ))
    capped = TelegramNotifier(TelegramNotifierConfig(
        component_id="TelegramCapped", mode="backtest", language="zh", keep_rendered=3
    ))
    add(engine, strategy, zh, en, capped)
    engine.run()
    engine.dispose()  # the notifier flushes here: STOPPED comes from the strategy's on_stop, after actors'
    return {"zh": zh.rendered, "en": en.rendered, "file": read_messages(out), "capped": capped}


def first_by_kind(messages: list) -> dict[str, str]:
    firsts: dict[str, str] = {}
    for message in messages:
        firsts.setdefault(message.event, message.text)
    return firsts


def test_every_message_kind_in_chinese(run: dict) -> None:
    assert first_by_kind(run["zh"]) == GOLDEN_ZH


def test_every_message_kind_in_english(run: dict) -> None:
    assert first_by_kind(run["en"]) == GOLDEN_EN


def test_short_signal_and_break_even_close(run: dict) -> None:
    signals = [m.text for m in run["en"] if m.event == "signal"]
    assert signals[1] == SHORT_SIGNAL_EN
    closes = [m.text for m in run["zh"] if m.event == "position_closed"]
    assert closes[2].endswith(BREAKEVEN_CLOSE_ZH_REASON)


def test_event_settings_decide_what_is_sent_and_how_loud(run: dict) -> None:
    zh_kinds = [m.event for m in run["zh"]]
    en_kinds = [m.event for m in run["en"]]
    assert "stop" in zh_kinds and "stop" not in en_kinds
    assert en_kinds == [k for k in zh_kinds if k != "stop"]  # one message per event, nothing repeated
    zh_silent = {m.event: m.silent for m in run["zh"]}
    en_silent = {m.event: m.silent for m in run["en"]}
    assert zh_silent["node_started"] and not zh_silent["signal"] and not zh_silent["node_error"]
    assert en_silent["node_error"]


def test_memory_keeps_only_the_first_messages_but_counts_all(run: dict) -> None:
    assert run["capped"].rendered == run["zh"][:3]
    assert run["capped"].rendered_total == len(run["zh"]) > 3


def test_backtest_file_holds_the_same_messages(run: dict) -> None:
    assert run["file"] == run["en"]
    assert run["file"][0].ts == "2024-02-01T00:01:00.000000000Z"  # event time, not wall time


def test_settings_and_language_typos_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown Telegram event setting 'tp3'"):
        TelegramNotifier(TelegramNotifierConfig(mode="backtest", events={"tp3": "on"}))
    with pytest.raises(ValueError, match="must be one of on, silent, off"):
        TelegramNotifier(TelegramNotifierConfig(mode="backtest", events={"tp1": "loud"}))
    with pytest.raises(ValueError, match="language"):
        TelegramNotifier(TelegramNotifierConfig(mode="backtest", language="fr"))
    with pytest.raises(ValueError, match="mode"):
        TelegramNotifier(TelegramNotifierConfig(mode="paper"))
