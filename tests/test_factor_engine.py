"""The factor indicators inside a real Nautilus BacktestEngine: registered for bars, updated before on_bar."""

from pathlib import Path

from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.trading.config import StrategyConfig
from nautilus_trader.trading.strategy import Strategy

from factors.book import make_factors
from factors.config import FactorConfig
from tests.factors_data import load_bars
from tests.strategy_support import make_engine, perp

KEYS = ("T", "M", "C", "S", "V", "F")


class FactorProbeConfig(StrategyConfig, frozen=True):
    bar_type: str


class FactorProbe(Strategy):
    """Registers the bar factors with Nautilus and records what they read in on_bar."""

    def __init__(self, config: FactorProbeConfig) -> None:
        super().__init__(config)
        self.bar_type = BarType.from_str(config.bar_type)
        factors = make_factors(FactorConfig())
        self.factors = {k: factors[k] for k in KEYS}
        self.seen: list[dict[str, float | None]] = []

    def on_start(self) -> None:
        for ind in self.factors.values():
            self.register_indicator_for_bars(self.bar_type, ind)
        self.subscribe_bars(self.bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.seen.append({k: ind.value for k, ind in self.factors.items()})


def test_factors_update_through_a_backtest_engine(shared_data: Path) -> None:
    bars = load_bars(shared_data / "klines_1m_vision/LINKUSDT-1m-2023-02.csv.gz", slice(0, 300))
    assert type(bars[0]).__name__ == "BinanceBar"
    engine = make_engine([perp("LINKUSDT")])
    engine.add_data(bars)
    probe = FactorProbe(FactorProbeConfig(bar_type=str(bars[0].bar_type)))
    engine.add_strategy(probe)
    engine.run()
    try:
        expected = make_factors(FactorConfig())
        want = []
        for b in bars:
            for k in KEYS:
                expected[k].handle_bar(b)
            want.append({k: expected[k].value for k in KEYS})
        assert len(probe.seen) == len(bars)
        assert probe.seen == want  # the engine delivered BinanceBars (C is live) in order, before on_bar
        assert all(v is not None for v in probe.seen[-1].values())
        assert all(probe.factors[k].initialized for k in KEYS)
    finally:
        engine.dispose()
