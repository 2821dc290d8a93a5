"""The answers to traders' control commands (listed in ``strategies/control.py``).

``answer`` reads and acts through a ``Desk``, the narrow face the strategy shows its traders: the same entry
points (``manual_signal``, ``flatten``) and the same risk checks as the trading flow. ``serve`` answers one
``ControlRequest`` from the message bus and replies, whatever happens.
"""

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.position import Position

from strategies.control import ControlRequest
from strategies.market import Market
from strategies.risk import DailyLossGuard, utc_day
from strategies.trade import Trade


class Desk(Protocol):
    mode: str
    paused: bool
    daily: DailyLossGuard

    def equity(self) -> float: ...

    def wallet(self) -> float: ...

    def balance(self) -> dict[str, Any]: ...

    def positions(self) -> list[dict[str, Any]]: ...

    def observe_daily(self, ts: int) -> None: ...

    def set_paused(self, paused: bool) -> None: ...

    def flatten(self) -> dict[str, Any]: ...

    def manual_signal(self, symbol: str, side: str) -> dict[str, Any]: ...


def answer(desk: Desk, command: str, args: tuple[str, ...], now: int) -> dict[str, Any]:
    if command == "status":
        daily_pnl = desk.daily.pnl(desk.equity())
        return {
            "mode": desk.mode,
            "paused": desk.paused,
            "equity": desk.equity(),
            "daily_pnl": daily_pnl,
            "positions": desk.positions(),
        }
    if command == "positions":
        return {"positions": desk.positions()}
    if command == "balance":
        return desk.balance()
    if command == "daily":
        desk.observe_daily(now)
        total = desk.daily.pnl(desk.equity())
        unrealized = desk.equity() - desk.wallet()
        return {
            "date": dt.datetime.fromtimestamp(utc_day(now) * 86_400, tz=dt.UTC).date().isoformat(),
            "realized_pnl": total - unrealized,
            "unrealized_pnl": unrealized,
            "total": total,
            "limit": desk.daily.limit,
            "limit_hit": desk.daily.hit,
            "trades": desk.daily.trades,
        }
    if command in ("pause", "resume"):
        desk.set_paused(command == "pause")
        return {"paused": desk.paused}
    if command == "flatten":
        return desk.flatten()
    if command == "signal":
        if len(args) != 2:
            return {"error": "signal needs SYMBOL and long|short"}
        return desk.manual_signal(args[0], args[1])
    return {"error": f"unknown command {command!r}"}


def serve(desk: Desk, request: ControlRequest, now: int, log: Any) -> None:
    """Answer ``request`` and reply; a failing command answers with its error, a failing reply is logged."""
    try:
        reply = answer(desk, request.command, request.args, now)
    except Exception as e:
        log.exception(f"control {request.command} failed", e)
        reply = {"error": f"{request.command}: {e}"}
    try:
        request.reply(reply)
    except Exception as e:
        log.exception("control reply failed", e)


def position_rows(
    trades: Iterable[Trade], open_position: Callable[[Trade], Position | None], market: Market
) -> list[dict[str, Any]]:
    """The open trades as the "positions" answer lists them."""
    rows = []
    for trade in trades:
        position = open_position(trade)
        if position is not None:
            instrument = market.instruments[trade.instrument_id]
            rows.append(_position_row(trade, position, instrument, market.last_close.get(trade.instrument_id)))
    return rows


def _position_row(trade: Trade, position: Position, instrument: Instrument, price: float | None) -> dict[str, Any]:
    upnl = position.unrealized_pnl(instrument.make_price(price)).as_double() if price else 0.0
    return {
        "instrument": str(trade.instrument_id),
        "direction": trade.direction,
        "quantity": position.quantity.as_double(),
        "entry": trade.entry,
        "stop": trade.stop_price,
        "tp1": trade.tp1_price,
        "tp2": trade.tp2_price,
        "tp1_done": trade.tp1_done,
        "unrealized_pnl": upnl,
        "price_precision": instrument.price_precision,
        "size_precision": instrument.size_precision,
    }
