"""What the strategy answers: traders' control commands, and the runner's reads of its results.

``AtsStrategy`` inherits ``ControlAnswers``. ``_on_control`` is the handler ``on_start`` registers at
``CONTROL_ENDPOINT`` (the commands and their answers are listed in ``strategies/control.py``); ``control``
answers one command. ``ledger``, ``counters`` and ``open_trades`` are what the reports and the tests read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from catalog.instruments import VENUE
from strategies.control import ControlRequest
from strategies.events import RiskEvent
from strategies.ledger import TradeRecord
from strategies.risk import utc_day
from strategies.trade import TAG_FLATTEN, Trade

if TYPE_CHECKING:
    from strategies.ats import AtsStrategy


class ControlAnswers:
    """Part of ``AtsStrategy`` (a mixin ahead of Nautilus's ``Strategy``), with no state of its own: ``self`` is
    the strategy. Commands act through its own entry points (``manual_signal``, ``close_position``,
    ``_cancel_exits``), so they pass the same checks as the trading flow."""

    # --- control commands -----------------------------------------------------------------------------------

    def _on_control(self: AtsStrategy, request: ControlRequest) -> None:
        try:
            answer = self.control(request.command, request.args)
        except Exception as e:
            self.log.exception(f"control {request.command} failed", e)
            answer = {"error": f"{request.command}: {e}"}
        try:
            request.reply(answer)
        except Exception as e:
            self.log.exception("control reply failed", e)

    def control(self: AtsStrategy, command: str, args: tuple[str, ...] = ()) -> dict[str, Any]:
        now = self.clock.timestamp_ns()
        if command == "status":
            return {
                "mode": self.mode,
                "paused": self.paused,
                "equity": self._equity(),
                "daily_pnl": self._daily_pnl(),
                "positions": self.positions(),
            }
        if command == "positions":
            return {"positions": self.positions()}
        if command == "balance":
            account = self.portfolio.account(VENUE)
            currency = self._currency(account)
            return {
                "currency": str(currency),
                "total": account.balance_total(currency).as_double(),
                "free": account.balance_free(currency).as_double(),
                "locked": account.balance_locked(currency).as_double(),
            }
        if command == "daily":
            self._update_daily(now)
            unrealized = self._equity() - self._wallet()
            return {
                "date": _date(now),
                "realized_pnl": self._daily_pnl() - unrealized,
                "unrealized_pnl": unrealized,
                "total": self._daily_pnl(),
                "limit": self.config.risk.daily_loss_limit_usdt,
                "limit_hit": self.daily.hit,
                "trades": self._daily_trades,
            }
        if command in ("pause", "resume"):
            self.paused = command == "pause"
            self._publish(
                RiskEvent(
                    kind="PAUSED" if self.paused else "RESUMED",
                    message=f"{command}d",
                    ts_event=now,
                    ts_init=now,
                )
            )
            return {"paused": self.paused}
        if command == "flatten":
            return self.flatten()
        if command == "signal":
            if len(args) != 2:
                return {"error": "signal needs SYMBOL and long|short"}
            return self.manual_signal(args[0], args[1])
        return {"error": f"unknown command {command!r}"}

    def _daily_pnl(self: AtsStrategy) -> float:
        return self._equity() - self.daily.start_equity if self.daily.day >= 0 else 0.0

    def positions(self: AtsStrategy) -> list[dict[str, Any]]:
        out = []
        for trade in self._trades.values():
            position = self._position(trade)
            if position is None or position.is_closed:
                continue
            instrument = self._instruments[trade.instrument_id]
            price = self._last_close.get(trade.instrument_id)
            upnl = position.unrealized_pnl(instrument.make_price(price)).as_double() if price else 0.0
            out.append(
                {
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
            )
        return out

    def flatten(self: AtsStrategy) -> dict[str, Any]:
        """Emergency close-all: every position at market, then every open order cancelled."""
        closed = []
        # Every open position of the universe, adopted ones of another strategy id included.
        positions = [p for i in self._instruments for p in self.cache.positions_open(instrument_id=i)]
        for position in positions:
            trade = self._trades.get(position.instrument_id)
            if trade is not None:
                trade.exit_intent = "FLATTEN"
                self._exit_event(
                    trade,
                    "FLATTEN",
                    self._last_close.get(position.instrument_id, 0.0),
                    position.quantity.as_double(),
                    0.0,
                )
            self.close_position(position, tags=[TAG_FLATTEN])
            closed.append(str(position.instrument_id))
        cancelled = 0
        for instrument_id in self._instruments:
            cancelled += self._cancel_exits(instrument_id)
        self._pending.clear()
        return {"closed": closed, "cancelled_orders": cancelled}

    # --- results for the reports ----------------------------------------------------------------------------

    def ledger(self: AtsStrategy, include_open: bool = True) -> list[dict[str, Any]]:
        """Closed trades; with ``include_open`` the open ones too, marked at the last price (END_OF_DATA)."""
        rows = [r.to_dict() for r in self._records]
        if include_open:
            now = self.clock.timestamp_ns()
            for trade in self._trades.values():
                position = self._position(trade)
                price = self._last_close.get(trade.instrument_id)
                if position is None or position.is_closed or price is None:
                    continue
                instrument = self._instruments[trade.instrument_id]
                pnl = (
                    (position.realized_pnl.as_double() if position.realized_pnl is not None else 0.0)
                    + position.unrealized_pnl(instrument.make_price(price)).as_double()
                    + trade.funding
                )
                quantity = position.peak_qty.as_double()
                fees = self._commissions(position.id)
                record = TradeRecord.of_trade(trade, now, price, quantity, pnl, fees, "END_OF_DATA")
                rows.append(record.to_dict())
        return rows

    def counters(self: AtsStrategy) -> dict[str, Any]:
        return self.counters_.as_dict()

    def open_trades(self: AtsStrategy) -> dict[str, Trade]:
        return {str(k): v for k, v in self._trades.items()}


def _date(ts_ns: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(utc_day(ts_ns) * 86_400, tz=dt.UTC).date().isoformat()
