"""Which factors a backtest could not compute, and for what share of the run: sampled, not assumed.

``FactorCoverage`` is an actor with a clock timer in simulated time. At each tick it asks the strategy's factor
book (a strategy's ``book`` offering ``instrument_ids`` and ``missing_factors``, as ``factors.book.FactorBook``
does) which factor values are missing for each warm symbol, and why. The runner hands
it the strategy once the node is built (the book itself is made in the strategy's ``on_start``); a strategy
without a book leaves it idle. It subscribes to no data.
"""

from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig


class FactorCoverageConfig(ActorConfig, frozen=True):
    interval_minutes: int = 60


class FactorCoverage(Actor):
    def __init__(self, config: FactorCoverageConfig | None = None) -> None:
        super().__init__(config or FactorCoverageConfig())
        self.strategy: Any = None  # set by the runner: the strategy whose factor book is sampled
        self.samples = 0  # (symbol, time) samples of warm symbols
        self.cold = 0  # samples of symbols still warming up
        self.missing: Counter[str] = Counter()  # factor -> samples without a value
        self.reasons: dict[str, Counter[str]] = defaultdict(Counter)  # factor -> reason -> samples

    def on_start(self) -> None:
        if self.strategy is None:
            return
        interval = timedelta(minutes=self.config.interval_minutes)
        self.clock.set_timer("factor-coverage", interval, callback=self._sample, fire_immediately=False)

    def _sample(self, event: object) -> None:
        book = getattr(self.strategy, "book", None)
        if not hasattr(book, "missing_factors"):
            return
        for instrument_id in book.instrument_ids:
            missing = book.missing_factors(instrument_id)
            if missing is None:
                self.cold += 1
                continue
            self.samples += 1
            for key, reason in missing.items():
                self.missing[key] += 1
                self.reasons[key][reason] += 1

    def unavailable(self) -> dict[str, dict[str, Any]]:
        """Per factor missing at least once: the share of warm samples without a value, and the main reason."""
        if not self.samples:
            return {}
        return {
            key: {
                "share": count / self.samples,
                "reason": self.reasons[key].most_common(1)[0][0],
            }
            for key, count in sorted(self.missing.items(), key=lambda kv: (-kv[1], kv[0]))
        }


FACTOR_COVERAGE = {
    "actor_path": "nodes.backtest.factor_coverage:FactorCoverage",
    "config_path": "nodes.backtest.factor_coverage:FactorCoverageConfig",
    "config": {},
}


def attach_strategy(engine) -> FactorCoverage | None:  # noqa: ANN001 (a built BacktestEngine)
    """Give the run's FactorCoverage actor its strategy (when the run has exactly one)."""
    actors = [a for a in engine.trader.actors() if isinstance(a, FactorCoverage)]
    strategies = engine.trader.strategies()
    if not actors:
        return None
    if len(strategies) == 1:
        actors[0].strategy = strategies[0]
    return actors[0]
