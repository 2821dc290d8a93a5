"""What the research commands read from a backtest config: the strategy and factor settings, the period."""

import pandas as pd

from factors.config import FactorConfig
from nodes.settings import BacktestSettings, ConfigError
from strategies.config import AtsStrategyConfig, StrategyConfigError, parse_strategy_config

_UNITS = {"m": "MINUTE", "h": "HOUR", "d": "DAY"}


def strategy_settings(settings: BacktestSettings) -> tuple[FactorConfig, AtsStrategyConfig]:
    """The config's [strategy.config] as the strategy would read it (unknown keys and bad values named)."""
    try:
        strategy = parse_strategy_config(settings.strategy_config)
    except StrategyConfigError as exc:
        raise ConfigError(settings.config_path, f"[strategy.config] {exc}") from None
    return strategy.factors, strategy


def resolve_period(
    settings: BacktestSettings, start: str | None, end: str | None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The config's period, with either end replaced when given ("" or "all" = no limit)."""

    def parse(value: str | None, default: pd.Timestamp | None, name: str) -> pd.Timestamp | None:
        if value is None:
            return default
        if value.strip().lower() in ("", "all", "none"):
            return None
        try:
            stamp = pd.Timestamp(value)
        except ValueError as exc:
            raise ConfigError(settings.config_path, f"--{name} {value!r} is not a time (e.g. 2025-05-09)") from exc
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")

    first, last = parse(start, settings.start, "start"), parse(end, settings.end, "end")
    if first is not None and last is not None and first >= last:
        raise ConfigError(settings.config_path, f"start {first} is not before end {last}")
    return first, last


def bar_spec_of(text: str) -> str:
    """ "5m" -> "5-MINUTE", "1h" -> "1-HOUR"; a spec like "15-MINUTE" is kept."""
    text = text.strip()
    if "-" in text:
        return text.upper()
    step, unit = text[:-1], text[-1:].lower()
    if not step.isdigit() or unit not in _UNITS:
        raise ValueError(f"bar size {text!r}: write it like 1m, 5m, 15m, 1h")
    return f"{int(step)}-{_UNITS[unit]}"
