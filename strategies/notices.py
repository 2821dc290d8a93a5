"""The strategy's events (``strategies/events.py``) built from its trades and published on the message bus."""

from collections.abc import Callable

from nautilus_trader.core.data import Data
from nautilus_trader.model.instruments import Instrument

from factors.scoring import ScoreResult
from strategies.events import EntryFilledEvent, ExitEvent, NodeEvent, PositionClosedEvent, RiskEvent, SignalEvent
from strategies.exits import ExitLevels
from strategies.trade import Trade


class Notices:
    """One method per event; ``publish`` puts an event on the bus, ``now`` reads the strategy's clock."""

    def __init__(self, publish: Callable[[Data], None], now: Callable[[], int]) -> None:
        self.publish = publish
        self.now = now

    def node(self, kind: str, mode: str, message: str) -> None:
        now = self.now()
        self.publish(NodeEvent(kind=kind, mode=mode, message=message, ts_event=now, ts_init=now))

    def risk(
        self,
        kind: str,
        message: str,
        value: float = 0.0,
        limit: float = 0.0,
        ts: int | None = None,
        instrument: str = "",
    ) -> None:
        ts = self.now() if ts is None else ts
        self.publish(
            RiskEvent(
                kind=kind, instrument=instrument, message=message, value=value, limit=limit, ts_event=ts, ts_init=ts
            )
        )

    def signal(
        self, trade: Trade, instrument: Instrument, price: float, levels: ExitLevels, result: ScoreResult | None
    ) -> None:
        now = self.now()
        self.publish(
            SignalEvent(
                instrument=str(trade.instrument_id),
                direction=trade.direction,
                strength=trade.strength,
                score=trade.score,
                leverage=trade.leverage,
                entry=price,
                stop=instrument.make_price(levels.stop).as_double(),
                tp1=instrument.make_price(levels.tp1).as_double(),
                tp2=instrument.make_price(levels.tp2).as_double(),
                price_precision=instrument.price_precision,
                factors_json=result.to_json() if result is not None else "{}",
                manual=trade.manual,
                ts_event=now,
                ts_init=now,
            )
        )

    def entry_filled(self, trade: Trade, instrument: Instrument) -> None:
        now = self.now()
        self.publish(
            EntryFilledEvent(
                instrument=str(trade.instrument_id),
                direction=trade.direction,
                price=trade.entry,
                quantity=float(trade.quantity),
                price_precision=instrument.price_precision,
                size_precision=instrument.size_precision,
                ts_event=now,
                ts_init=now,
            )
        )

    def exit(
        self,
        trade: Trade,
        instrument: Instrument,
        kind: str,
        price: float,
        quantity: float,
        new_stop: float,
        pnl_pct: float,
    ) -> None:
        now = self.now()
        self.publish(
            ExitEvent(
                instrument=str(trade.instrument_id),
                kind=kind,
                direction=trade.direction,
                price=price,
                quantity=quantity,
                new_stop=new_stop,
                pnl_pct=pnl_pct,
                price_precision=instrument.price_precision,
                size_precision=instrument.size_precision,
                ts_event=now,
                ts_init=now,
            )
        )

    def closed(
        self, trade: Trade, instrument: Instrument, ts: int, exit_price: float, quantity: float, pnl: float, reason: str
    ) -> None:
        notional = trade.entry * quantity
        self.publish(
            PositionClosedEvent(
                instrument=str(trade.instrument_id),
                direction=trade.direction,
                entry_price=trade.entry,
                exit_price=exit_price,
                quantity=quantity,
                realized_pnl=pnl,
                pnl_pct=100.0 * pnl / notional if notional else 0.0,
                duration_s=(ts - trade.opened_ns) / 1e9,
                exit_reason=reason,
                price_precision=instrument.price_precision,
                ts_event=ts,
                ts_init=ts,
            )
        )
