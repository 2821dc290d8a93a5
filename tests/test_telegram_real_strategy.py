"""The notifier beside the real AtsStrategy, added to a BacktestNode by config (TOML [[actors]]), on shared
Binance data: one message per event, in both languages, each in the expected shape with the instrument's price
precision. (Exact wording is pinned by test_telegram_messages.py; here the strategy is the real one, whose
signals change as it is tuned, so the check is on shape, completeness and precision.)"""

import re
from collections import Counter
from pathlib import Path

import pytest

from catalog.instruments import binance_perpetual
from nodes.backtest.report import render
from nodes.backtest.runner import BacktestOutcome, run_backtest
from nodes.settings import load_backtest_settings
from nodes.telegram import read_messages
from nodes.telegram.settings import DEFAULT_EVENT_SETTINGS, OFF, SILENT, event_key

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
P = r"\$\d+(?:\.(?P<d{n}>\d+))?"  # a price; the named group holds its decimals

SHAPES = {
    "zh": {
        "signal": r"(🟢|🔴) [A-Z]+ (LONG|SHORT)( \(手动\))?\n\n📊 信号强度: \d+/100\n⚡ 杠杆: \d+x\n\n"
        r"💰 入场: {p1}\n🛑 止损: {p2} \(\d+\.\d%\)\n\n🎯 止盈1: {p3} \(\d+\.\d%\) - 平50%\n"
        r"🎯 止盈2: {p4} \(\d+\.\d%\) - 平50%\n\n(🔍 主要因子: .+\n\n)?"
        r"✅ 系统将自动执行和管理\n📢 关键事件时将通知",
        "entry_filled": r"✅ [A-Z]+ (LONG|SHORT) 已开仓\n成交价: {p1}\n数量: \d+(\.\d+)?",
        "tp1": r"🎯 [A-Z]+ 止盈1触达 {p1}\n已平50%，止损移至保本( {p2})?",
        "tp2": r"🎯 [A-Z]+ 止盈2触达 {p1}\n已平剩余50%，总(盈利|亏损) [+-]\d+\.\d\d%",
        "stop": r"🛑 [A-Z]+ 止损触发 {p1}\n总(盈利|亏损) [+-]\d+\.\d\d%",
        "dynamic_exit": r"🔄 [A-Z]+ 动态退出 {p1}\n已平仓，总(盈利|亏损) [+-]\d+\.\d\d%",
        "flatten": r"⏹ [A-Z]+ 一键平仓 {p1}\n已平仓，总(盈利|亏损) [+-]\d+\.\d\d%",
        "position_closed": r"🏁 [A-Z]+ (LONG|SHORT) 交易结束\n盈亏: [+-]\d+\.\d\d USDT \([+-]\d+\.\d\d%\)\n"
        r"入场 {p1} → 出场 {p2}\n持仓时长: \d+(天\d+小时|小时\d\d分|分钟)\n原因: .+",
        "node_started": r"🚀 节点已启动 \(回测\)",
        "node_stopped": r"⏹ 节点已停止 \(回测\)",
        "node_error": r"❌ 节点错误 \(回测\): .+",
        "daily_loss_limit": r"⛔ 已达每日亏损上限\n今日盈亏: [+-]\d+\.\d\d USDT / 上限 \d+\.\d\d USDT\n"
        r"今日不再开新仓",
    },
    "en": {
        "signal": r"(🟢|🔴) [A-Z]+ (LONG|SHORT)( \(manual\))?\n\n📊 Strength: \d+/100\n⚡ Leverage: \d+x\n\n"
        r"💰 Entry: {p1}\n🛑 Stop: {p2} \(\d+\.\d%\)\n\n🎯 TP1: {p3} \(\d+\.\d%\) - closes 50%\n"
        r"🎯 TP2: {p4} \(\d+\.\d%\) - closes 50%\n\n(🔍 Top factors: .+\n\n)?"
        r"✅ The system executes and manages this trade\n📢 You will hear about key events",
        "entry_filled": r"✅ [A-Z]+ (LONG|SHORT) entry filled\nPrice: {p1}\nQuantity: \d+(\.\d+)?",
        "tp1": r"🎯 [A-Z]+ TP1 hit at {p1}\nClosed 50%, stop moved to break-even( {p2})?",
        "tp2": r"🎯 [A-Z]+ TP2 hit at {p1}\nClosed the remaining 50%, total (profit|loss) [+-]\d+\.\d\d%",
        "stop": r"🛑 [A-Z]+ stop hit at {p1}\nTotal (profit|loss) [+-]\d+\.\d\d%",
        "dynamic_exit": r"🔄 [A-Z]+ dynamic exit at {p1}\n"
        r"Position closed, total (profit|loss) [+-]\d+\.\d\d%",
        "flatten": r"⏹ [A-Z]+ flattened at {p1}\nPosition closed, total (profit|loss) [+-]\d+\.\d\d%",
        "position_closed": r"🏁 [A-Z]+ (LONG|SHORT) trade closed\n"
        r"PnL: [+-]\d+\.\d\d USDT \([+-]\d+\.\d\d%\)\n"
        r"Entry {p1} → exit {p2}\nDuration: (\d+d \d+h|\d+h \d\dm|\d+m)\nReason: .+",
        "node_started": r"🚀 Node started \(backtest\)",
        "node_stopped": r"⏹ Node stopped \(backtest\)",
        "node_error": r"❌ Node error \(backtest\): .+",
        "daily_loss_limit": r"⛔ Daily loss limit reached\nToday: [+-]\d+\.\d\d USDT / limit \d+\.\d\d USDT\n"
        r"No new entries today",
    },
}


def _pattern(shape: str) -> re.Pattern[str]:
    for n in range(1, 5):
        shape = shape.replace(f"{{p{n}}}", P.replace("{n}", str(n)))
    return re.compile(shape)


@pytest.fixture(scope="module")
def outcome(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[BacktestOutcome, Path]:
    tmp = tmp_path_factory.mktemp("telegram_real")
    actors = "".join(
        f"""
[[actors]]
actor_path = "nodes.telegram:TelegramNotifier"
config_path = "nodes.telegram:TelegramNotifierConfig"
config.mode = "backtest"
config.language = "{lang}"
config.output_path = "{tmp / lang}.jsonl"
config.component_id = "Telegram-{lang}"
"""
        for lang in ("zh", "en")
    )
    config = tmp / "backtest.toml"
    config.write_text(f"""
[backtest]
catalog = "{tmp / "catalog"}"
sources = ["{shared_data / "ohlcv_2025-03_2025-06"}"]
symbols = {SYMBOLS!r}
bar = "1-MINUTE"
start = "2025-05-10"
end = "2025-05-13"
report_dir = "{tmp / "reports"}"
log_level = "ERROR"

[venue]
starting_balance = 10000
default_leverage = 1

[strategy]
path = "strategies.ats:AtsStrategy"
config_path = "strategies.config:AtsStrategyConfig"

[strategy.config]
min_score = 60.0

[[actors]]
actor_path = "tests.strategy_support:EventRecorder"
config_path = "tests.strategy_support:RecorderConfig"
config = {{}}
{actors}""")
    return run_backtest(load_backtest_settings(config)), tmp


def test_one_message_per_event_in_both_languages(outcome: tuple[BacktestOutcome, Path]) -> None:
    result, tmp = outcome
    recorder = next(a for a in result.engine.trader.actors() if type(a).__name__ == "EventRecorder")
    keys = [event_key(e) for e in recorder.events]
    expected = [k for k in keys if k is not None and DEFAULT_EVENT_SETTINGS[k] != OFF]
    zh, en = read_messages(tmp / "zh.jsonl"), read_messages(tmp / "en.jsonl")
    assert [m.event for m in zh] == [m.event for m in en] == expected
    assert {"signal", "entry_filled", "position_closed"} <= set(expected), Counter(keys)
    assert all(m.silent == (DEFAULT_EVENT_SETTINGS[m.event] == SILENT) for m in zh)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_message_has_its_shape_and_the_instruments_precision(
    outcome: tuple[BacktestOutcome, Path], language: str
) -> None:
    _, tmp = outcome
    precision = {s: binance_perpetual(s).price_precision for s in SYMBOLS}
    messages = read_messages(tmp / f"{language}.jsonl")
    assert messages
    for message in messages:
        shape = SHAPES[language].get(message.event)
        assert shape is not None, f"no expected shape for {message.event}"
        match = _pattern(shape).fullmatch(message.text)
        assert match, f"{message.event} message not in the expected shape:\n{message.text}"
        symbol = next((s for s in SYMBOLS if s in message.text), None)
        for name, decimals in match.groupdict().items():
            if name.startswith("d") and symbol is not None:
                assert len(decimals or "") == precision[symbol], f"{symbol} precision in:\n{message.text}"


def test_the_backtest_report_shows_the_messages(outcome: tuple[BacktestOutcome, Path]) -> None:
    result, tmp = outcome
    zh = read_messages(tmp / "zh.jsonl")  # the first notifier of the run is the Chinese one
    text = render(result)
    assert f"Telegram messages ({len(zh)})" in text
    assert zh[0].text in text and zh[-1].text in text
