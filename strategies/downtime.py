"""What happened to a remembered trade while the node was down, from the exchange's fills, as plain data.

The live node gathers the facts before it starts (``nodes/live/recovery.py``: the account's trades since each
remembered entry, each classified by the order that made it, and today's realised PnL) and hands them to the
strategy in its config (``RestartFacts``); ``downtime_outcome`` reads one trade's fills: did its position close,
at what price, for what PnL, by which exit, and had TP1 filled.
"""

from dataclasses import dataclass

from nautilus_trader.common.config import NautilusConfig

# What made a fill, from the order behind it.
FILL_ENTRY = "ENTRY"
FILL_STOP = "STOP"  # a stop (a triggered conditional order)
FILL_TARGET = "TARGET"  # a take-profit (reduce-only limit, or a triggered take-profit order)
FILL_MARKET = "MARKET"  # a market order closing (ours, or a trader's by hand)
FILL_LIQUIDATION = "LIQUIDATION"


class ExchangeFill(NautilusConfig, frozen=True):
    """One of the account's trades on the exchange (``GET /fapi/v1/userTrades``), with what made it."""

    instrument: str  # e.g. BTCUSDT-PERP.BINANCE
    order_id: str
    side: str  # BUY | SELL
    quantity: float
    price: float
    realized_pnl: float
    commission: float
    time_ms: int
    kind: str  # FILL_*


class RestartFacts(NautilusConfig, frozen=True):
    """What the live node found on the exchange before it started (never set by hand).

    fills: the account's trades since the entry of each trade the strategy remembered; day_start_equity: the
    wallet at 00:00 UTC of ``utc_day`` (the wallet now minus today's realised PnL, fees and funding included),
    so the daily loss limit goes on counting from there.
    """

    fills: tuple[ExchangeFill, ...] = ()
    utc_day: int | None = None
    day_start_equity: float | None = None


@dataclass(frozen=True)
class DowntimeOutcome:
    closed: bool
    tp1_filled: bool  # a take-profit filled before the end (or the position is open and smaller)
    exit_price: float = 0.0
    exit_time_ns: int = 0
    realized_pnl: float = 0.0  # the trade's realised PnL after fees (funding apart)
    commissions: float = 0.0
    reason: str = ""  # the ledger's exit reason
    last_kind: str = ""  # what made the last closing fill (FILL_*)


def downtime_outcome(direction: str, quantity: float, opened_ms: int, fills: list[ExchangeFill]) -> DowntimeOutcome:
    """The fate of a trade of ``quantity`` opened at ``opened_ms``, from the fills of its symbol since then."""
    closing_side = "SELL" if direction == "LONG" else "BUY"
    left, tp1, pnl, fees = quantity, False, 0.0, 0.0
    closed_qty, closed_value = 0.0, 0.0
    for fill in sorted(fills, key=lambda f: f.time_ms):
        if fill.time_ms < opened_ms:
            continue
        fees += fill.commission
        if fill.side != closing_side:
            continue  # the entry itself (its fee counts)
        size = min(fill.quantity, left)
        left -= size
        pnl += fill.realized_pnl
        closed_qty += size
        closed_value += size * fill.price
        if fill.kind == FILL_TARGET and left > 1e-12:
            tp1 = True
        if left <= 1e-9 * max(1.0, quantity):
            reason = _reason(fill.kind, tp1)
            return DowntimeOutcome(
                closed=True,
                tp1_filled=tp1 or fill.kind == FILL_TARGET,
                exit_price=closed_value / closed_qty,
                exit_time_ns=fill.time_ms * 1_000_000,
                realized_pnl=pnl - fees,
                commissions=fees,
                reason=reason,
                last_kind=fill.kind,
            )
    return DowntimeOutcome(closed=False, tp1_filled=tp1)


def _reason(kind: str, tp1: bool) -> str:
    if kind == FILL_TARGET:
        return "TP1+TP2"
    if kind == FILL_STOP and tp1:
        return "TP1+BREAKEVEN"
    if kind == FILL_MARKET:
        return "FLATTEN"  # closed at market: ``ats flatten`` or the trader by hand
    return "STOP"  # a stop, or a liquidation
