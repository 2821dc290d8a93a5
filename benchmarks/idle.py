"""An actor that keeps the CPU busy for a fixed time on each bar and touches almost no memory.

It lengthens the time between a strategy's trades without adding Nautilus work: the per-instrument diagnosis
of ``benchmarks.bench_backtest --per-instrument`` uses it to show that a trade costs more the longer the
machine has been doing something else since the last one.
"""

import time

from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.data import Bar, BarType


class IdlePerBarConfig(ActorConfig, frozen=True):
    bar_type: str
    microseconds: int = 300


class IdlePerBar(Actor):
    def __init__(self, config: IdlePerBarConfig) -> None:
        super().__init__(config)
        self._spin_ns = config.microseconds * 1000

    def on_start(self) -> None:
        self.subscribe_bars(BarType.from_str(self.config.bar_type))

    def on_bar(self, bar: Bar) -> None:
        until = time.perf_counter_ns() + self._spin_ns
        while time.perf_counter_ns() < until:
            pass
