"""Restart safety: a new strategy instance adopts an open position from the cache and re-arms a lost stop.

The restart happens inside one BacktestEngine through Nautilus's ``Controller``: the running instance is stopped
and removed (its stop order is lost with it), a fresh instance with the same id is created and started, and
from then on only the cache and the orders' tags tell it what the trade is.
"""

from typing import Any

from nautilus_trader.common.config import ActorConfig
from nautilus_trader.model.enums import OrderStatus, OrderType
from nautilus_trader.trading.controller import Controller

from strategies.ats import AtsStrategy
from strategies.events import ExitEvent
from strategies.trade import TAG_SL
from tests.strategy_support import (
    MINUTE_NS,
    Commander,
    CommanderConfig,
    EventRecorder,
    ats_config,
    make_engine,
    path_bars,
    perp,
)

T0 = 1_700_006_400_000_000_000
BTC = perp("BTCUSDT")
CONFIG = ats_config([BTC], {"scan.entries": "NONE", "scan.interval_minutes": 1440})


class Restarter(Controller):
    """At ``at_ns``: drop the working stop, stop and remove the strategy, start a fresh instance."""

    def __init__(self, trader: Any, old: AtsStrategy, at_ns: int) -> None:
        super().__init__(trader, ActorConfig())
        self.old = old
        self.at_ns = at_ns
        self.new: AtsStrategy | None = None

    def on_start(self) -> None:
        self.clock.set_time_alert_ns(name="restart", alert_time_ns=self.at_ns, callback=self._restart)

    def _restart(self, event: Any) -> None:
        self.stop_strategy(self.old)
        for order in self.cache.orders_open():
            if TAG_SL in order.tags:
                self.old.cancel_order(order)  # the crash lost the stop
        self.remove_strategy(self.old)
        self.new = AtsStrategy(CONFIG)
        self.create_strategy(self.new, start=True)


def test_restart_adopts_position_after_tp1_and_rearms_stop_at_entry() -> None:
    engine = make_engine([BTC])
    engine.trader._has_controller = True  # what BacktestEngineConfig(controller=...) sets
    closes = [50_000.0] * 5 + [50_000 + 300 * i for i in range(1, 9)] + [51_500.0] * 5
    closes += [51_500 - 300 * i for i in range(1, 10)]
    engine.add_data(path_bars(BTC, closes, T0))
    old = AtsStrategy(CONFIG)
    recorder = EventRecorder()
    restart_at = T0 + 15 * MINUTE_NS + 10**9  # after TP1 and the break-even move, before the fall
    restarter = Restarter(engine.trader, old, restart_at)
    engine.add_actor(recorder)
    engine.add_actor(Commander(CommanderConfig(schedule=((T0 + 2 * MINUTE_NS + 10**9, "signal", ("BTC", "long")),))))
    engine.add_actor(restarter)
    engine.add_strategy(old)
    engine.run()

    new = restarter.new
    assert new is not None and new.errors == 0
    kinds = [e.kind for e in recorder.of(ExitEvent)]
    assert kinds == ["TP1", "BREAKEVEN", "STOP_REARMED", "STOP"], kinds
    rearmed = recorder.of(ExitEvent, kind="STOP_REARMED")[0]
    assert rearmed.new_stop == 50_000.0  # TP1 was done: the re-armed stop is at break-even
    (rec,) = new.ledger()
    assert rec["exit_reason"] == "TP1+BREAKEVEN" and rec["tp1_hit"]
    stops = [o for o in engine.cache.orders() if o.order_type == OrderType.STOP_MARKET]
    filled = [o for o in stops if o.status == OrderStatus.FILLED]
    assert len(stops) == 3 and len(filled) == 1  # initial and break-even stops cancelled, the re-armed one hit
    assert filled[0].trigger_price.as_double() == 50_000.0 and filled[0].is_reduce_only
    assert engine.cache.orders_open() == [] and engine.cache.positions_open() == []


def test_untagged_exit_orders_are_known_by_type() -> None:
    # After a restart the venue's orders come back without our tags: reduce-only type tells the exit role.
    from nautilus_trader.common.component import TestClock
    from nautilus_trader.common.factories import OrderFactory
    from nautilus_trader.model.enums import OrderSide
    from nautilus_trader.model.identifiers import StrategyId, TraderId

    from strategies.adoption import _limit_price, _untagged_exit_kind

    factory = OrderFactory(TraderId("T-1"), StrategyId("S-1"), TestClock())
    qty = BTC.make_qty(0.1)
    stop = factory.stop_market(BTC.id, OrderSide.SELL, qty, BTC.make_price(49_000), reduce_only=True)
    tp = factory.limit(BTC.id, OrderSide.SELL, qty, BTC.make_price(52_000), reduce_only=True)
    mit = factory.market_if_touched(BTC.id, OrderSide.SELL, qty, BTC.make_price(54_000), reduce_only=True)
    entry = factory.limit(BTC.id, OrderSide.BUY, qty, BTC.make_price(48_000))
    assert [_untagged_exit_kind(o) for o in (stop, tp, mit, entry)] == [TAG_SL, "TP", "TP", ""]
    assert (_limit_price(tp), _limit_price(mit)) == (52_000.0, 54_000.0)
