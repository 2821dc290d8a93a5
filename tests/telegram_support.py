"""Shared parts of the Telegram tests: real Binance bars from the shared data, a real BacktestEngine, and a
small scripted strategy that trades those bars and publishes the real event objects of strategies/events.py
and answers ControlRequests on CONTROL_ENDPOINT (the contract the real strategy implements).
"""

import gzip
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import LoggingConfig, StrategyConfig
from nautilus_trader.core.data import Data
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import Bar, DataType
from nautilus_trader.model.enums import AccountType, OmsType, OrderSide, PositionSide
from nautilus_trader.model.events import OrderFilled, PositionClosed
from nautilus_trader.model.identifiers import InstrumentId, Venue
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.model.objects import Money
from nautilus_trader.trading.strategy import Strategy

from catalog.instruments import binance_perpetual
from factors.inputs import bar_type_for
from strategies.control import CONTROL_ENDPOINT, ControlRequest
from strategies.events import (
    EntryFilledEvent,
    ExitEvent,
    NodeEvent,
    PositionClosedEvent,
    RiskEvent,
    SignalEvent,
)

SYMBOL = "NEARUSDT"
KLINES = "klines_1m_vision/NEARUSDT-1m-2024-02.csv.gz"
FACTORS = {"T": {"value": 0.62, "contribution": 21.4}, "M": {"value": 0.4, "contribution": 12.25},
           "V": {"value": -0.2, "contribution": -6.5}, "L": {"value": 0.1, "contribution": 2.0}}


def load_bars(shared_data: Path, rows: int) -> tuple[CryptoPerpetual, list[Bar]]:
    """The first ``rows`` 1-minute bars of a real Binance Vision file, stamped at bar close."""
    instrument = binance_perpetual(SYMBOL)
    with gzip.open(shared_data / KLINES, "rt") as handle:
        frame = pd.read_csv(handle, nrows=rows)
    bar_type = bar_type_for(instrument.id)
    arrays = [np.array(frame[k], dtype=np.float64) for k in ("open", "high", "low", "close", "volume")]
    ts = (np.array(frame["open_time"], dtype=np.uint64) + 60_000) * 1_000_000
    bars = Bar.from_raw_arrays_to_list(
        bar_type, instrument.price_precision, instrument.size_precision, *arrays, ts, ts.copy()
    )
    return instrument, bars


def make_engine(instrument: CryptoPerpetual, bars: list[Bar]) -> BacktestEngine:
    engine = BacktestEngine(
        BacktestEngineConfig(trader_id="TESTER-001", logging=LoggingConfig(log_level="WARNING"))
    )
    engine.add_venue(
        Venue("BINANCE"),
        oms_type=OmsType.NETTING,
        account_type=AccountType.MARGIN,
        base_currency=USDT,
        starting_balances=[Money(10_000, USDT)],
        default_leverage=Decimal(5),
    )
    engine.add_instrument(instrument)
    engine.add_data(bars)
    return engine


class ScriptedConfig(StrategyConfig, frozen=True):
    instrument_id: str
    signal_every: int = 30  # bars between entry attempts while flat
    quantity: float = 1000.0
    stop_pct: float = 0.4
    tp1_pct: float = 0.4
    tp2_pct: float = 0.8
    max_hold_bars: int = 90  # then a dynamic exit
    quick_exit_trade: int = -1  # this trade (1-based) exits dynamically after one bar
    daily_loss_limit: float = 1e9
    flatten_at_bar: int = -1  # the strategy's own flatten entry point, as /flatten would call it
    reconnect_at_bar: int = -1
    error_at_bar: int = -1


@dataclass
class _Trade:
    direction: str
    entry: float = 0.0
    stop: float = 0.0
    tp1: float = 0.0
    tp2: float = 0.0
    opened_bar: int = 0
    tp1_done: bool = False
    closing: str = ""  # kind of the exit order in flight
    reason: str = ""
    realized: float = 0.0
    steps: list[str] = field(default_factory=list)


class ScriptedStrategy(Strategy):
    """Enters every ``signal_every`` bars (alternating long/short) and manages exits with market orders on bar
    closes. Crude on purpose: it exists to produce every event kind from real fills on real bars."""

    def __init__(self, config: ScriptedConfig) -> None:
        super().__init__(config)
        self.cfg = config
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.paused = False
        self.limit_hit = False
        self.entries = 0
        self.bar_count = 0
        self.daily_realized = 0.0
        self.requests: list[ControlRequest] = []
        self.publish_seconds: list[float] = []
        self._trade: _Trade | None = None
        self._next_long = True

    # ---- life cycle ---------------------------------------------------------------------------------------

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.instrument_id)
        self.subscribe_bars(bar_type_for(self.instrument_id))
        self.msgbus.register(endpoint=CONTROL_ENDPOINT, handler=self._on_control)
        self._publish(NodeEvent(kind="STARTED", mode="backtest", message="1 symbol"))

    def on_stop(self) -> None:
        self.msgbus.deregister(endpoint=CONTROL_ENDPOINT, handler=self._on_control)
        self._publish(NodeEvent(kind="STOPPED", mode="backtest", message=""))

    def _publish(self, event: Data) -> None:
        now = self.clock.timestamp_ns()
        event._ts_event = now  # customdataclass keeps its timestamps here
        event._ts_init = now
        started = time.perf_counter()
        self.publish_data(DataType(type(event)), event)  # subscribers run inline: this is the loop's cost
        self.publish_seconds.append(time.perf_counter() - started)

    # ---- trading ------------------------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        self.bar_count += 1
        if self.bar_count == self.cfg.reconnect_at_bar:
            self._publish(NodeEvent(kind="RECONNECTED", mode="backtest", message="market data stream"))
        if self.bar_count == self.cfg.error_at_bar:
            self._publish(NodeEvent(kind="ERROR", mode="backtest", message="funding feed stale"))
        if self.bar_count == self.cfg.flatten_at_bar:
            self.flatten()
            return
        trade = self._trade
        if trade is None:
            if self.bar_count % self.cfg.signal_every == 0:
                self.enter("LONG" if self._next_long else "SHORT", float(bar.close))
            return
        if trade.closing or not trade.entry:
            return
        self._manage(trade, bar)

    def enter(self, direction: str, ref: float, manual: bool = False) -> dict[str, Any]:
        if self.paused or self.limit_hit or self._trade is not None:
            reason = "paused" if self.paused else "daily loss limit" if self.limit_hit else "position open"
            if manual:
                refused = RiskEvent(kind="SIGNAL_REFUSED", instrument=str(self.instrument_id), message=reason)
                self._publish(refused)
            return {"accepted": False, "reason": reason, "instrument": str(self.instrument_id)}
        sign = 1 if direction == "LONG" else -1
        prec = self.instrument.price_precision
        trade = _Trade(
            direction,
            stop=round(ref * (1 - sign * self.cfg.stop_pct / 100), prec),
            tp1=round(ref * (1 + sign * self.cfg.tp1_pct / 100), prec),
            tp2=round(ref * (1 + sign * self.cfg.tp2_pct / 100), prec),
            opened_bar=self.bar_count,
        )
        self._trade = trade
        self._next_long = not self._next_long
        self.entries += 1
        self._publish(SignalEvent(
            instrument=str(self.instrument_id), direction=direction, strength=82.6, score=sign * 82.6,
            leverage=5,
            entry=ref, stop=trade.stop, tp1=trade.tp1, tp2=trade.tp2, price_precision=prec,
            factors_json=json.dumps(FACTORS), manual=manual,
        ))
        self._market(OrderSide.BUY if sign > 0 else OrderSide.SELL, self.cfg.quantity, reduce_only=False)
        return {"accepted": True, "reason": "", "instrument": str(self.instrument_id)}

    def _manage(self, trade: _Trade, bar: Bar) -> None:
        long = trade.direction == "LONG"
        high, low = float(bar.high), float(bar.low)
        hit_stop = low <= trade.stop if long else high >= trade.stop
        hit_tp1 = high >= trade.tp1 if long else low <= trade.tp1
        hit_tp2 = high >= trade.tp2 if long else low <= trade.tp2
        if hit_stop:
            self._close("STOP")
        elif trade.tp1_done and hit_tp2:
            self._close("TP2")
        elif not trade.tp1_done and hit_tp1:
            self._close("TP1", half=True)
        elif self.bar_count - trade.opened_bar >= (
            1 if self.entries == self.cfg.quick_exit_trade else self.cfg.max_hold_bars
        ):
            self._close("DYNAMIC_EXIT")

    def _close(self, kind: str, half: bool = False) -> None:
        trade = self._trade
        position = self._position()
        if trade is None or position is None:
            return
        quantity = float(position.quantity) / 2 if half else float(position.quantity)
        trade.closing = kind
        side = OrderSide.SELL if position.side == PositionSide.LONG else OrderSide.BUY
        self._market(side, quantity, reduce_only=True)

    def _market(self, side: OrderSide, quantity: float, reduce_only: bool) -> None:
        order = self.order_factory.market(
            self.instrument_id, side, self.instrument.make_qty(quantity), reduce_only=reduce_only
        )
        self.submit_order(order)

    def _position(self):  # noqa: ANN202 - Nautilus Position
        positions = self.cache.positions_open(instrument_id=self.instrument_id)
        return positions[0] if positions else None

    def on_order_filled(self, fill: OrderFilled) -> None:
        trade = self._trade
        if trade is None:
            return
        price, qty = float(fill.last_px), float(fill.last_qty)
        prec, size_prec = self.instrument.price_precision, self.instrument.size_precision
        if not trade.entry:
            trade.entry = price
            self._publish(EntryFilledEvent(
                instrument=str(self.instrument_id), direction=trade.direction, price=price, quantity=qty,
                price_precision=prec, size_precision=size_prec,
            ))
            return
        sign = 1 if trade.direction == "LONG" else -1
        trade.realized += sign * (price - trade.entry) * qty
        pnl_pct = trade.realized / (trade.entry * self.cfg.quantity) * 100
        kind, trade.closing = trade.closing, ""
        trade.steps.append(kind)
        new_stop = 0.0
        if kind == "TP1":
            trade.tp1_done = True
            trade.stop = new_stop = trade.entry
        self._publish(ExitEvent(
            instrument=str(self.instrument_id), kind=kind, direction=trade.direction, price=price,
            quantity=qty,
            new_stop=new_stop, pnl_pct=pnl_pct, price_precision=prec, size_precision=size_prec,
        ))

    def on_position_closed(self, event: PositionClosed) -> None:
        trade, self._trade = self._trade, None
        if trade is None:
            return
        steps = trade.steps
        reason = {
            ("TP1", "TP2"): "TP1+TP2", ("TP1", "STOP"): "TP1+BREAKEVEN", ("STOP",): "STOP",
            ("FLATTEN",): "FLATTEN", ("TP1", "FLATTEN"): "FLATTEN",
        }.get(tuple(steps), "DYNAMIC")
        pnl = float(event.realized_pnl)
        self.daily_realized += pnl
        self._publish(PositionClosedEvent(
            instrument=str(self.instrument_id), direction=trade.direction, entry_price=trade.entry,
            exit_price=float(event.avg_px_close), quantity=float(event.peak_qty), realized_pnl=pnl,
            pnl_pct=pnl / (trade.entry * self.cfg.quantity) * 100,
            duration_s=event.duration_ns / 1e9, exit_reason=reason,
            price_precision=self.instrument.price_precision,
        ))
        if not self.limit_hit and self.daily_realized <= -self.cfg.daily_loss_limit:
            self.limit_hit = True
            self._publish(RiskEvent(kind="DAILY_LOSS_LIMIT", value=self.daily_realized,
                                    limit=self.cfg.daily_loss_limit, message="no new entries today"))

    def flatten(self) -> dict[str, Any]:
        closed = []
        if self._trade is not None and self._position() is not None:
            closed.append(str(self.instrument_id))
            self._close("FLATTEN")
        return {"closed": closed, "cancelled_orders": 0}

    # ---- the control entry points -------------------------------------------------------------------------

    def _on_control(self, request: ControlRequest) -> None:
        self.requests.append(request)
        request.reply(self._answer(request))

    def _answer(self, request: ControlRequest) -> dict[str, Any]:
        command = request.command
        if command == "pause":
            self.paused = True
            self._publish(RiskEvent(kind="PAUSED", message=request.source))
            return {"paused": True}
        if command == "resume":
            self.paused = False
            self._publish(RiskEvent(kind="RESUMED", message=request.source))
            return {"paused": False}
        if command == "flatten":
            return self.flatten()
        if command == "signal":
            symbol, direction = request.args
            if f"{symbol}-PERP.BINANCE" != str(self.instrument_id):
                return {"accepted": False, "reason": f"{symbol} is not traded", "instrument": ""}
            bar = self.cache.bar(bar_type_for(self.instrument_id))
            return self.enter(direction.upper(), float(bar.close), manual=True)
        if command in ("status", "positions"):
            positions = []
            position, trade = self._position(), self._trade
            if position is not None and trade is not None:
                positions.append({
                    "instrument": str(self.instrument_id), "direction": trade.direction,
                    "quantity": float(position.quantity), "entry": trade.entry, "stop": trade.stop,
                    "tp1": trade.tp1, "tp2": trade.tp2, "tp1_done": trade.tp1_done,
                    "unrealized_pnl": 0.0, "price_precision": self.instrument.price_precision,
                    "size_precision": self.instrument.size_precision,
                })
            if command == "positions":
                return {"positions": positions}
            account = self.portfolio.account(Venue("BINANCE"))
            return {"mode": "backtest", "paused": self.paused, "equity": float(account.balance_total(USDT)),
                    "daily_pnl": self.daily_realized, "positions": positions}
        if command == "balance":
            account = self.portfolio.account(Venue("BINANCE"))
            return {"currency": "USDT", "total": float(account.balance_total(USDT)),
                    "free": float(account.balance_free(USDT)), "locked": float(account.balance_locked(USDT))}
        if command == "daily":
            return {"date": "", "realized_pnl": self.daily_realized, "unrealized_pnl": 0.0,
                    "total": self.daily_realized, "limit": self.cfg.daily_loss_limit,
                    "limit_hit": self.limit_hit, "trades": self.entries}
        return {"error": f"unknown command {command}"}


def add(engine: BacktestEngine, *components: Actor) -> None:
    for component in components:
        if isinstance(component, Strategy):
            engine.add_strategy(component)
        else:
            engine.add_actor(component)
