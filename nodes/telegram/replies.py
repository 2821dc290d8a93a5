"""Command answers (the strategy's reply dicts, see strategies/control.py) -> message text, zh or en."""

from collections.abc import Mapping
from typing import Any

from nodes.telegram import formatting as fmt
from nodes.telegram.templates import LANGUAGES, MODES

PHRASES: dict[str, dict[str, str]] = {
    "zh": {
        "status": "📋 状态 ({mode})\n开新仓: {entries}\n权益: {equity} USDT\n今日盈亏: {daily} USDT",
        "entries_on": "运行中",
        "entries_paused": "已暂停",
        "positions_head": "📂 持仓 ({count})",
        "no_positions": "📂 无持仓",
        "position": "• {symbol} {direction} {quantity} @ {entry}\n"
        "  止损 {stop} · 止盈1 {tp1}{tp1_done} · 止盈2 {tp2} · 浮动盈亏 {upnl} USDT",
        "tp1_done": " ✔",
        "balance": "💰 余额\n总额: {total} {currency}\n可用: {free} {currency}\n占用: {locked} {currency}",
        "daily": "📅 {date} 今日\n已实现: {realized} USDT\n未实现: {unrealized} USDT\n合计: {total} USDT\n"
        "亏损上限: {limit} USDT{hit}\n交易数: {trades}",
        "limit_hit": " (已触发)",
        "paused": "⏸ 已暂停开新仓 (持仓照常管理)",
        "resumed": "▶️ 已恢复开新仓",
        "flattened": "⏹ 已平仓 {count} 个持仓{symbols}，撤销 {orders} 个挂单",
        "signal_ok": "📨 手动信号已受理: {symbol} {direction}",
        "signal_refused": "🚫 手动信号被拒绝: {reason}",
        "error": "❌ 命令失败: {error}",
        "unavailable": "❌ 策略未运行，命令未执行",
        "flatten_prompt": "⚠️ 将平掉所有持仓并撤销其挂单。\n{seconds} 秒内发送 /flatten confirm 确认",
        "flatten_expired": "⌛ 没有待确认的平仓请求，请先发送 /flatten",
        "signal_usage": "用法: /signal SYMBOL long|short，例如 /signal BTCUSDT long",
        "help": "可用命令:\n/status 状态\n/positions 持仓\n/balance 余额\n/daily 今日盈亏\n"
        "/pause 暂停开新仓\n"
        "/resume 恢复开新仓\n/flatten 全部平仓 (需确认)\n/signal SYMBOL long|short 手动信号",
    },
    "en": {
        "status": "📋 Status ({mode})\nNew entries: {entries}\n"
        "Equity: {equity} USDT\nToday's PnL: {daily} USDT",
        "entries_on": "active",
        "entries_paused": "paused",
        "positions_head": "📂 Positions ({count})",
        "no_positions": "📂 No open positions",
        "position": "• {symbol} {direction} {quantity} @ {entry}\n"
        "  Stop {stop} · TP1 {tp1}{tp1_done} · TP2 {tp2} · Unrealized {upnl} USDT",
        "tp1_done": " ✔",
        "balance": "💰 Balance\nTotal: {total} {currency}\n"
        "Free: {free} {currency}\nLocked: {locked} {currency}",
        "daily": "📅 Today {date}\nRealized: {realized} USDT\n"
        "Unrealized: {unrealized} USDT\nTotal: {total} USDT\n"
        "Loss limit: {limit} USDT{hit}\nTrades: {trades}",
        "limit_hit": " (reached)",
        "paused": "⏸ New entries paused (open positions are still managed)",
        "resumed": "▶️ New entries resumed",
        "flattened": "⏹ Closed {count} positions{symbols}, cancelled {orders} orders",
        "signal_ok": "📨 Manual signal accepted: {symbol} {direction}",
        "signal_refused": "🚫 Manual signal refused: {reason}",
        "error": "❌ Command failed: {error}",
        "unavailable": "❌ The strategy is not running; nothing was done",
        "flatten_prompt": "⚠️ This closes ALL positions and cancels their orders.\n"
        "Send /flatten confirm within {seconds} s to proceed",
        "flatten_expired": "⌛ Nothing to confirm: send /flatten first",
        "signal_usage": "Usage: /signal SYMBOL long|short, e.g. /signal BTCUSDT long",
        "help": "Commands:\n/status\n/positions\n/balance\n/daily\n/pause (no new entries)\n/resume\n"
        "/flatten (close everything, asks to confirm)\n/signal SYMBOL long|short",
    },
}


class ReplyRenderer:
    def __init__(self, language: str) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"Telegram language must be one of {', '.join(LANGUAGES)}, not {language!r}")
        self.language = language
        self._p = PHRASES[language]

    def text(self, key: str, **values: Any) -> str:
        return self._p[key].format(**values)

    def answer(self, command: str, answer: Mapping[str, Any]) -> str:
        """The message for a strategy's answer to ``command``."""
        if "error" in answer:
            return self.text("error", error=answer["error"])
        if command == "status":
            return self._status(answer)
        if command == "positions":
            return self._positions(answer.get("positions", []))
        if command == "balance":
            return self.text(
                "balance",
                currency=answer.get("currency", "USDT"),
                total=f"{_num(answer.get('total')):.2f}",
                free=f"{_num(answer.get('free')):.2f}",
                locked=f"{_num(answer.get('locked')):.2f}",
            )
        if command == "daily":
            return self.text(
                "daily",
                date=answer.get("date", ""),
                realized=fmt.signed(_num(answer.get("realized_pnl"))),
                unrealized=fmt.signed(_num(answer.get("unrealized_pnl"))),
                total=fmt.signed(_num(answer.get("total"))),
                limit=f"{_num(answer.get('limit')):.2f}",
                hit=self._p["limit_hit"] if answer.get("limit_hit") else "",
                trades=int(_num(answer.get("trades"))),
            )
        if command in ("pause", "resume"):
            return self.text("paused" if answer.get("paused") else "resumed")
        if command == "flatten":
            closed = [fmt.symbol(str(i)) for i in answer.get("closed", [])]
            return self.text(
                "flattened",
                count=len(closed),
                symbols=f" ({', '.join(closed)})" if closed else "",
                orders=int(_num(answer.get("cancelled_orders"))),
            )
        if command == "signal":
            if answer.get("accepted"):
                instrument = str(answer.get("instrument", ""))
                direction = str(answer.get("direction", "")).upper()
                return self.text("signal_ok", symbol=fmt.symbol(instrument), direction=direction).rstrip()
            return self.text("signal_refused", reason=answer.get("reason", ""))
        return self.text("error", error=f"unexpected answer to {command}")

    def _status(self, answer: Mapping[str, Any]) -> str:
        mode = str(answer.get("mode", ""))
        head = self.text(
            "status",
            mode=MODES[self.language].get(mode, mode),
            entries=self._p["entries_paused" if answer.get("paused") else "entries_on"],
            equity=f"{_num(answer.get('equity')):.2f}",
            daily=fmt.signed(_num(answer.get("daily_pnl"))),
        )
        return head + "\n\n" + self._positions(answer.get("positions", []))

    def _positions(self, positions: list[Mapping[str, Any]]) -> str:
        if not positions:
            return self._p["no_positions"]
        lines = [self.text("positions_head", count=len(positions))]
        for pos in positions:
            prec = int(pos.get("price_precision", 2))
            lines.append(
                self.text(
                    "position",
                    symbol=fmt.symbol(str(pos.get("instrument", ""))),
                    direction=str(pos.get("direction", "")).upper(),
                    quantity=fmt.plain(_num(pos.get("quantity")), int(pos.get("size_precision", 3))),
                    entry=fmt.price(_num(pos.get("entry")), prec),
                    stop=fmt.price(_num(pos.get("stop")), prec),
                    tp1=fmt.price(_num(pos.get("tp1")), prec),
                    tp1_done=self._p["tp1_done"] if pos.get("tp1_done") else "",
                    tp2=fmt.price(_num(pos.get("tp2")), prec),
                    upnl=fmt.signed(_num(pos.get("unrealized_pnl"))),
                )
            )
        return "\n".join(lines)


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
