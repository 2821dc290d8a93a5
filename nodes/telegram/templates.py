"""Event -> message text, in Chinese (the original design's wording) or English.

Each language is one table of format strings, so the two read side by side and a wording change is one line.
Prices print with the event's price precision, percentages with one (distances) or two (PnL) decimals.
"""

from nodes.telegram import formatting as fmt
from strategies.events import (
    EntryFilledEvent,
    ExitEvent,
    NodeEvent,
    PositionClosedEvent,
    RiskEvent,
    SignalEvent,
)

LANGUAGES = ("zh", "en")

PHRASES: dict[str, dict[str, str]] = {
    "zh": {
        "manual": " (手动)",
        "strength": "📊 信号强度: {strength}/100",
        "leverage": "⚡ 杠杆: {leverage}x",
        "entry": "💰 入场: {entry}",
        "stop": "🛑 止损: {stop} ({stop_pct})",
        "tp1": "🎯 止盈1: {tp1} ({tp1_pct}) - 平50%",
        "tp2": "🎯 止盈2: {tp2} ({tp2_pct}) - 平50%",
        "factors": "🔍 主要因子: {factors}",
        "managed": "✅ 系统将自动执行和管理\n📢 关键事件时将通知",
        "entry_filled": "✅ {symbol} {direction} 已开仓\n成交价: {price}\n数量: {quantity}",
        "TP1": "🎯 {symbol} 止盈1触达 {price}\n已平50%，止损移至保本{new_stop}",
        "TP2": "🎯 {symbol} 止盈2触达 {price}\n已平剩余50%，{total}",
        "STOP": "🛑 {symbol} 止损触发 {price}\n{Total}",
        "DYNAMIC_EXIT": "🔄 {symbol} 动态退出 {price}\n已平仓，{total}",
        "FLATTEN": "⏹ {symbol} 一键平仓 {price}\n已平仓，{total}",
        "BREAKEVEN": "🛡 {symbol} 止损移至保本 {new_stop}",
        "DYNAMIC_TIGHTEN": "🔧 {symbol} 止损收紧至 {new_stop}",
        "DYNAMIC_TRAIL": "🔧 {symbol} 跟踪止损上移至 {new_stop}",
        "STOP_REARMED": "🛡 {symbol} 止损已重新挂出 {new_stop}",
        "profit": "总盈利 {pct}",
        "loss": "总亏损 {pct}",
        "closed": (
            "🏁 {symbol} {direction} 交易结束\n盈亏: {pnl} USDT ({pct})\n"
            "入场 {entry} → 出场 {exit}\n持仓时长: {duration}\n原因: {reason}"
        ),
        "DAILY_LOSS_LIMIT": "⛔ 已达每日亏损上限\n今日盈亏: {value} USDT / 上限 {limit} USDT\n今日不再开新仓",
        "DAILY_LIMIT_RESET": "🔓 每日亏损限制已重置，恢复开新仓",
        "PAUSED": "⏸ 已暂停开新仓",
        "RESUMED": "▶️ 已恢复开新仓",
        "SIGNAL_REFUSED": "🚫 {symbol} 信号被拒绝: {message}",
        "STARTED": "🚀 节点已启动 ({mode})",
        "STOPPED": "⏹ 节点已停止 ({mode})",
        "RECONNECTED": "🔌 已重新连接 ({mode})",
        "RECONCILED": "🔄 已与交易所核对 ({mode})\n{message}",
        "ERROR": "❌ 节点错误 ({mode}): {message}",
        "UNPROTECTED": "🚨 持仓无止损保护 ({mode})\n{message}",
        "dropped": "⚠️ Telegram 中断期间有 {count} 条消息被丢弃",
    },
    "en": {
        "manual": " (manual)",
        "strength": "📊 Strength: {strength}/100",
        "leverage": "⚡ Leverage: {leverage}x",
        "entry": "💰 Entry: {entry}",
        "stop": "🛑 Stop: {stop} ({stop_pct})",
        "tp1": "🎯 TP1: {tp1} ({tp1_pct}) - closes 50%",
        "tp2": "🎯 TP2: {tp2} ({tp2_pct}) - closes 50%",
        "factors": "🔍 Top factors: {factors}",
        "managed": "✅ The system executes and manages this trade\n📢 You will hear about key events",
        "entry_filled": "✅ {symbol} {direction} entry filled\nPrice: {price}\nQuantity: {quantity}",
        "TP1": "🎯 {symbol} TP1 hit at {price}\nClosed 50%, stop moved to break-even{new_stop}",
        "TP2": "🎯 {symbol} TP2 hit at {price}\nClosed the remaining 50%, {total}",
        "STOP": "🛑 {symbol} stop hit at {price}\n{Total}",
        "DYNAMIC_EXIT": "🔄 {symbol} dynamic exit at {price}\nPosition closed, {total}",
        "FLATTEN": "⏹ {symbol} flattened at {price}\nPosition closed, {total}",
        "BREAKEVEN": "🛡 {symbol} stop moved to break-even {new_stop}",
        "DYNAMIC_TIGHTEN": "🔧 {symbol} stop tightened to {new_stop}",
        "DYNAMIC_TRAIL": "🔧 {symbol} stop trailed to {new_stop}",
        "STOP_REARMED": "🛡 {symbol} stop re-armed at {new_stop}",
        "profit": "total profit {pct}",
        "loss": "total loss {pct}",
        "closed": (
            "🏁 {symbol} {direction} trade closed\nPnL: {pnl} USDT ({pct})\n"
            "Entry {entry} → exit {exit}\nDuration: {duration}\nReason: {reason}"
        ),
        "DAILY_LOSS_LIMIT": (
            "⛔ Daily loss limit reached\nToday: {value} USDT / limit {limit} USDT\nNo new entries today"
        ),
        "DAILY_LIMIT_RESET": "🔓 Daily loss limit reset, new entries allowed again",
        "PAUSED": "⏸ New entries paused",
        "RESUMED": "▶️ New entries resumed",
        "SIGNAL_REFUSED": "🚫 {symbol} signal refused: {message}",
        "STARTED": "🚀 Node started ({mode})",
        "STOPPED": "⏹ Node stopped ({mode})",
        "RECONNECTED": "🔌 Reconnected ({mode})",
        "RECONCILED": "🔄 Checked against the exchange ({mode})\n{message}",
        "ERROR": "❌ Node error ({mode}): {message}",
        "UNPROTECTED": "🚨 Position without a stop ({mode})\n{message}",
        "dropped": "⚠️ {count} messages were dropped during a Telegram outage",
    },
}

EXIT_REASONS: dict[str, dict[str, str]] = {
    "zh": {
        "TP1+TP2": "止盈1+止盈2", "TP1+BREAKEVEN": "止盈1+保本止损", "STOP": "止损", "DYNAMIC": "动态退出",
        "FLATTEN": "一键平仓", "END_OF_DATA": "数据结束",
    },
    "en": {
        "TP1+TP2": "TP1 + TP2", "TP1+BREAKEVEN": "TP1 + break-even stop", "STOP": "stop",
        "DYNAMIC": "dynamic exit", "FLATTEN": "flatten", "END_OF_DATA": "end of data",
    },
}

MODES: dict[str, dict[str, str]] = {
    "zh": {"backtest": "回测", "live": "实盘", "testnet": "测试网", "paper": "模拟盘"},
    "en": {},  # English prints the mode word as it is
}


class Renderer:
    """Renders events and notices in one language."""

    def __init__(self, language: str) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"Telegram language must be one of {', '.join(LANGUAGES)}, not {language!r}")
        self.language = language
        self._p = PHRASES[language]

    def render(self, event: object) -> str | None:
        """The message for an event, or None when the event has no message (unknown kind)."""
        if isinstance(event, SignalEvent):
            return self.signal(event)
        if isinstance(event, EntryFilledEvent):
            return self.entry_filled(event)
        if isinstance(event, ExitEvent):
            return self.exit(event)
        if isinstance(event, PositionClosedEvent):
            return self.closed(event)
        if isinstance(event, RiskEvent):
            return self.risk(event)
        if isinstance(event, NodeEvent):
            return self.node(event)
        return None

    def dropped(self, count: int) -> str:
        return self._p["dropped"].format(count=count)

    def mode(self, mode: str) -> str:
        return MODES[self.language].get(mode, mode)

    def signal(self, e: SignalEvent) -> str:
        p, prec = self._p, e.price_precision
        color = "🟢" if e.direction.upper() == "LONG" else "🔴"
        head = f"{color} {fmt.symbol(e.instrument)} {e.direction.upper()}" + (p["manual"] if e.manual else "")
        blocks = [
            head,
            p["strength"].format(strength=f"{e.strength:.0f}")
            + "\n"
            + p["leverage"].format(leverage=e.leverage),
            p["entry"].format(entry=fmt.price(e.entry, prec))
            + "\n"
            + p["stop"].format(stop=fmt.price(e.stop, prec), stop_pct=fmt.distance_pct(e.stop, e.entry)),
            p["tp1"].format(tp1=fmt.price(e.tp1, prec), tp1_pct=fmt.distance_pct(e.tp1, e.entry))
            + "\n"
            + p["tp2"].format(tp2=fmt.price(e.tp2, prec), tp2_pct=fmt.distance_pct(e.tp2, e.entry)),
        ]
        factors = fmt.top_factors(e.factors_json, self.language)
        if factors:
            blocks.append(p["factors"].format(factors=factors))
        blocks.append(p["managed"])
        return "\n\n".join(blocks)

    def entry_filled(self, e: EntryFilledEvent) -> str:
        return self._p["entry_filled"].format(
            symbol=fmt.symbol(e.instrument),
            direction=e.direction.upper(),
            price=fmt.price(e.price, e.price_precision),
            quantity=fmt.plain(e.quantity, e.size_precision),
        )

    def _total(self, pnl_pct: float) -> str:
        return self._p["profit" if pnl_pct >= 0 else "loss"].format(pct=fmt.signed(pnl_pct) + "%")

    def exit(self, e: ExitEvent) -> str | None:
        template = self._p.get(e.kind)
        if template is None or e.kind not in _EXIT_KINDS:
            return None
        new_stop = fmt.price(e.new_stop, e.price_precision) if e.new_stop else ""
        if e.kind == "TP1" and new_stop:
            new_stop = " " + new_stop
        total = self._total(e.pnl_pct)
        return template.format(
            symbol=fmt.symbol(e.instrument),
            price=fmt.price(e.price, e.price_precision),
            new_stop=new_stop,
            total=total,
            Total=total[:1].upper() + total[1:],  # where it starts a line
        )

    def closed(self, e: PositionClosedEvent) -> str:
        return self._p["closed"].format(
            symbol=fmt.symbol(e.instrument),
            direction=e.direction.upper(),
            pnl=fmt.signed(e.realized_pnl),
            pct=fmt.signed(e.pnl_pct) + "%",
            entry=fmt.price(e.entry_price, e.price_precision),
            exit=fmt.price(e.exit_price, e.price_precision),
            duration=fmt.duration(e.duration_s, self.language),
            reason=EXIT_REASONS[self.language].get(e.exit_reason, e.exit_reason),
        )

    def risk(self, e: RiskEvent) -> str | None:
        template = self._p.get(e.kind)
        if template is None or e.kind not in _RISK_KINDS:
            return None
        return template.format(
            symbol=fmt.symbol(e.instrument),
            message=e.message,
            value=fmt.signed(e.value),
            limit=f"{e.limit:.2f}",
        )

    def node(self, e: NodeEvent) -> str | None:
        template = self._p.get(e.kind)
        if template is None or e.kind not in _NODE_KINDS:
            return None
        return template.format(mode=self.mode(e.mode), message=e.message)


_EXIT_KINDS = frozenset(
    {"TP1", "TP2", "STOP", "DYNAMIC_EXIT", "FLATTEN", "BREAKEVEN", "DYNAMIC_TIGHTEN", "DYNAMIC_TRAIL"}
    | {"STOP_REARMED"}
)
_RISK_KINDS = frozenset({"DAILY_LOSS_LIMIT", "DAILY_LIMIT_RESET", "PAUSED", "RESUMED", "SIGNAL_REFUSED"})
_NODE_KINDS = frozenset({"STARTED", "STOPPED", "RECONNECTED", "RECONCILED", "ERROR", "UNPROTECTED"})
