"""The backtest config file a trader edits (TOML), read into checked settings.

Every mistake is reported with the file, the key and what is expected, before anything runs.
"""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from catalog.convert import interval_of_spec
from catalog.instruments import UnknownSymbolError, instrument_id_for, known_filters
from strategies.config import AtsStrategyConfig, StrategyConfigError, parse_strategy_config

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_BACKTEST_CONFIG = PACKAGE_DIR / "configs" / "backtest.toml"


class ConfigError(ValueError):
    """A config file that cannot be used: names the file, the key and what to write instead."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


@dataclass(frozen=True)
class BacktestSettings:
    config_path: Path
    catalog: Path
    symbols: tuple[str, ...]
    bar_spec: str  # "1-MINUTE"
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    sources: tuple[Path, ...]  # folders ingested when the catalog lacks the configured data
    starting_balance: float
    default_leverage: float
    oms_type: str
    strategy_path: str
    strategy_config_path: str
    strategy_config: dict[str, Any]
    report_dir: Path
    log_level: str
    per_instrument_strategy: bool  # one strategy instance per symbol (e.g. Nautilus's EMACross)
    actors: tuple[dict[str, Any], ...] = field(default=())


def _require(table: dict[str, Any], key: str, kind: type | tuple[type, ...], path: Path, section: str) -> Any:
    if key not in table:
        raise ConfigError(path, f"[{section}] needs '{key}'")
    value = table[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(path, f"[{section}] {key} = {value!r}: expected {names}")
    return value


def _timestamp(value: Any, path: Path, key: str) -> pd.Timestamp | None:
    if value in (None, ""):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(path, f"[backtest] {key} = {value!r} is not a date/time (e.g. 2025-05-05)") from exc
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _resolve(base: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else (base / candidate).resolve()


def read_config_file(path: Path | None, default: Path) -> tuple[Path, dict[str, Any]]:
    """The resolved path and parsed TOML of a config file; a missing or malformed file is a ConfigError."""
    path = Path(path or default).resolve()
    if not path.is_file():
        raise ConfigError(path, f"config file not found; the default one is {default}")
    try:
        return path, tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, f"not valid TOML: {exc}") from exc


def load_backtest_settings(path: Path | None = None) -> BacktestSettings:
    path, raw = read_config_file(path, DEFAULT_BACKTEST_CONFIG)
    for section in ("backtest", "venue", "strategy"):
        if not isinstance(raw.get(section), dict):
            raise ConfigError(path, f"missing section [{section}]")
    unknown = set(raw) - {"backtest", "venue", "strategy", "actors"}
    if unknown:
        raise ConfigError(
            path, f"unknown section(s) {sorted(unknown)}; known: backtest, venue, strategy, actors"
        )
    bt, venue, strategy = raw["backtest"], raw["venue"], raw["strategy"]
    # Relative paths in the file are relative to the project folder when the file lives in the package,
    # else to the file's own folder: a trader's copy of the config can sit anywhere.
    base = PACKAGE_DIR.parent if path.is_relative_to(PACKAGE_DIR) else path.parent

    symbols = _require(bt, "symbols", list, path, "backtest")
    if not symbols or not all(isinstance(s, str) for s in symbols):
        raise ConfigError(path, '[backtest] symbols must be a non-empty list of names like "BTCUSDT"')
    for symbol in symbols:
        try:
            known_filters(symbol)
        except UnknownSymbolError as exc:
            raise ConfigError(path, f"[backtest] symbols: {exc}") from exc
    bar_spec = bt.get("bar", "1-MINUTE")
    try:
        interval_of_spec(bar_spec)
    except ValueError as exc:
        raise ConfigError(path, f"[backtest] bar: {exc}") from exc
    start, end = _timestamp(bt.get("start"), path, "start"), _timestamp(bt.get("end"), path, "end")
    if start is not None and end is not None and start >= end:
        raise ConfigError(path, f"[backtest] start {start} is not before end {end}")
    sources = bt.get("sources", [])
    if not isinstance(sources, list):
        raise ConfigError(path, "[backtest] sources must be a list of folders")

    balance = _require(venue, "starting_balance", (int, float), path, "venue")
    if balance <= 0:
        raise ConfigError(path, "[venue] starting_balance must be positive (USDT)")
    oms_type = venue.get("oms_type", "NETTING")
    if oms_type not in ("NETTING", "HEDGING"):
        raise ConfigError(path, f"[venue] oms_type = {oms_type!r}: use NETTING (Binance one-way mode)")
    leverage = venue.get("default_leverage", 1)
    if not isinstance(leverage, (int, float)) or not 1 <= leverage <= 125:
        raise ConfigError(path, f"[venue] default_leverage = {leverage!r}: a number from 1 to 125")
    log_level = bt.get("log_level", "ERROR")
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(path, f"[backtest] log_level = {log_level!r}: DEBUG, INFO, WARNING or ERROR")

    strategy_path = _require(strategy, "path", str, path, "strategy")
    config_path = _require(strategy, "config_path", str, path, "strategy")
    for key, value in (("path", strategy_path), ("config_path", config_path)):
        if ":" not in value:
            raise ConfigError(path, f"[strategy] {key} = {value!r}: write it as 'package.module:ClassName'")
    strategy_config = strategy.get("config", {})
    if not isinstance(strategy_config, dict):
        raise ConfigError(path, "[strategy.config] must be a table")
    if config_path == AtsStrategyConfig.fully_qualified_name():
        # The table as the node will pass it, universe and bars included: refused here, before any data loads.
        universe = {"instrument_ids": [instrument_id_for(s).value for s in symbols], "bar_spec": bar_spec}
        try:
            parse_strategy_config({**universe, **strategy_config})
        except StrategyConfigError as exc:
            raise ConfigError(path, f"[strategy.config] {exc}") from None
    actors = raw.get("actors", [])
    if not isinstance(actors, list):
        raise ConfigError(path, "[[actors]] must be an array of tables")

    return BacktestSettings(
        config_path=path,
        catalog=_resolve(base, bt.get("catalog", "data/catalog")),
        symbols=tuple(s.upper() for s in symbols),
        bar_spec=bar_spec,
        start=start,
        end=end,
        sources=tuple(_resolve(base, s) for s in sources),
        starting_balance=float(balance),
        default_leverage=float(leverage),
        oms_type=oms_type,
        strategy_path=strategy_path,
        strategy_config_path=config_path,
        strategy_config=strategy_config,
        report_dir=_resolve(base, bt.get("report_dir", "reports")),
        log_level=log_level,
        per_instrument_strategy=bool(strategy.get("per_instrument", False)),
        actors=tuple(actors),
    )
