"""nodes/configs/original.toml: the original design's numbers, every one written out."""

import tomllib

from nodes.research.study_config import strategy_settings
from nodes.settings import PACKAGE_DIR, load_backtest_settings
from strategies.config import AtsStrategyConfig

ORIGINAL = PACKAGE_DIR / "configs" / "original.toml"
# set by the universe and bar of [backtest], left to follow where the strategy runs, or live-only plumbing (sync)
NOT_IN_PROFILE = {"instrument_ids", "bar_spec", "sync"}
SUB_CONFIGS = ("factors", "scan", "exits", "dynamic", "sizing", "risk")


def test_original_profile_sets_every_number_explicitly() -> None:
    raw = tomllib.loads(ORIGINAL.read_text())["strategy"]["config"]
    own_fields = set(AtsStrategyConfig.__annotations__)  # the strategy's own settings, not Nautilus's base ones
    assert own_fields - NOT_IN_PROFILE - set(raw) == set()
    defaults = AtsStrategyConfig()
    for name in SUB_CONFIGS:
        assert set(type(getattr(defaults, name)).__struct_fields__) - set(raw[name]) == set(), name
    assert set(raw["factors"]["weights"]) == {"T", "M", "C", "S", "V", "O", "B", "Q"}


def test_original_profile_loads_as_the_strategy_reads_it() -> None:
    settings = load_backtest_settings(ORIGINAL)
    factors, strategy = strategy_settings(settings)
    assert "ORIGINAL DESIGN" in ORIGINAL.read_text().splitlines()[0]
    assert settings.bar_spec == "1-MINUTE" and len(settings.symbols) == 16
    assert strategy.min_score == 70.0 and strategy.scan.interval_minutes == 60 and strategy.exits.stop_pct == 0.02
    assert factors.weight("T") == 25.0 and factors.trend_ema_slow == 50 and factors.long_threshold == 10.0
