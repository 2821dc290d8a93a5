"""The backtest config file a trader edits (TOML), read into checked settings.

Every mistake is reported with the file, the key and what is expected, before anything runs.
"""

import difflib
import importlib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd
from nautilus_trader.common.config import resolve_config_path

from catalog.convert import spec_of_bar
from catalog.instruments import instrument_id_for, offline_symbols
from catalog.inventory import catalog_symbols
from factors.inputs import bar_type_for
from nodes.paths import DEFAULT_BACKTEST_CONFIG, PACKAGE_DIR
from strategies.config import AtsStrategyConfig, StrategyConfigError, parse_strategy_config


class ConfigError(ValueError):
    """A config file that cannot be used: names the file, the key and what to write instead."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


# The keys each table of a backtest config accepts; anything else is a typo that would be silently ignored.
BACKTEST_KEYS = ("catalog", "sources", "symbols", "bar", "start", "end", "report_dir", "csv_tables", "log_level")
VENUE_KEYS = ("starting_balance", "default_leverage", "oms_type")
STRATEGY_KEYS = ("path", "config_path", "per_instrument", "config")
ACTOR_KEYS = ("actor_path", "config_path", "config")
_SYMBOL = re.compile(r"^[0-9A-Z]{1,30}USDT$")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'bar'?)' for a near miss (every key it begins, when it is the start of several), else ''."""
    choices = list(choices)
    starts = [c for c in choices if c.startswith(word) and c != word] if len(word) >= 3 else []
    if len(starts) > 1:
        return f" (did you mean one of {', '.join(repr(c) for c in starts)}?)"
    close = starts or difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(path: Path, table: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    """A key the table does not know is an error naming it, the nearest known key, and the known keys.
    ``where``: the table as the file names it, e.g. ``[backtest]``."""
    known = tuple(known)
    for key in table:
        if key not in known:
            raise ConfigError(
                path, f"unknown key {key!r} in {where}{did_you_mean(key, known)}; known keys: {', '.join(known)}"
            )


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
    csv_tables: bool = False  # fills, orders and account also as CSV beside their Parquet tables

    def strategy_instance_configs(self) -> list[dict[str, Any]]:
        """The complete config of each strategy instance the backtest runs: the universe and bars filled in."""
        if self.per_instrument_strategy:
            return [
                {
                    "instrument_id": instrument_id_for(symbol).value,
                    "bar_type": str(bar_type_for(instrument_id_for(symbol), self.bar_spec)),
                    **self.strategy_config,
                }
                for symbol in self.symbols
            ]
        instrument_ids = [instrument_id_for(s).value for s in self.symbols]
        return [{"instrument_ids": instrument_ids, "bar_spec": self.bar_spec, **self.strategy_config}]


def _require(table: dict[str, Any], key: str, kind: type | tuple[type, ...], path: Path, section: str) -> Any:
    if key not in table:
        raise ConfigError(path, f"[{section}] needs '{key}'")
    value = table[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(path, f"[{section}] {key} = {value!r}: expected {names}")
    return value


def _require_optional(table: dict[str, Any], key: str, kind: type, path: Path, section: str, default: Any) -> Any:
    value = table.get(key, default)
    if not isinstance(value, kind):
        raise ConfigError(path, f"[{section}] {key} = {value!r}: expected {kind.__name__}")
    return value


def _timestamp(value: Any, path: Path, where: str) -> pd.Timestamp | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, pd.Timestamp)) and not hasattr(value, "isoformat"):
        raise ConfigError(path, f"{where} = {value!r} is not a date/time (e.g. 2025-05-05)")
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(path, f"{where} = {value!r} is not a date/time (e.g. 2025-05-05)") from exc
    if pd.isna(stamp):
        raise ConfigError(path, f"{where} = {value!r} is not a date/time (e.g. 2025-05-05)")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def check_symbols_known(path: Path, catalog: Path, symbols: Iterable[str], where: str = "[backtest] symbols") -> None:
    """Every symbol must have an instrument in the catalog (from an ingested exchangeInfo) or in the offline
    table the shared data uses; else say how to get its exchangeInfo."""
    known = catalog_symbols(catalog) | offline_symbols()
    for symbol in symbols:
        if symbol not in known:
            raise ConfigError(
                path,
                f"{where}: {symbol} is not an instrument of the catalog {catalog} nor of the offline table"
                f"{did_you_mean(symbol, known)}; fetch its Binance exchangeInfo and data with "
                f"`uv run ats data download {symbol} --start YYYY-MM-DD --catalog {catalog}`, or ingest a saved "
                f"exchangeInfo: `uv run ats data ingest exchangeInfo.json --catalog {catalog}`",
            )


def check_actors(path: Path, actors: Any) -> tuple[dict[str, Any], ...]:
    """[[actors]] tables: known keys only, and each actor's ``config`` checked against its config class."""
    if not isinstance(actors, list) or not all(isinstance(a, dict) for a in actors):
        raise ConfigError(path, "[[actors]] must be an array of tables")
    for actor in actors:
        check_keys(path, actor, ACTOR_KEYS, "[[actors]]")
        for key in ("actor_path", "config_path"):
            value = actor.get(key)
            if not isinstance(value, str) or ":" not in value:
                raise ConfigError(path, f"[[actors]] {key} = {value!r}: write it as 'package.module:ClassName'")
        config = actor.get("config", {})
        if not isinstance(config, dict):
            raise ConfigError(path, f"[[actors]] config of {actor['actor_path']} must be a table")
        _import(path, actor["actor_path"], "actor_path")
        check_component_config(path, _import(path, actor["config_path"], "config_path"), config, "[[actors]] config")
    return tuple(actors)


def _import(path: Path, dotted: str, key: str) -> Any:
    module_name, _, name = dotted.partition(":")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(path, f"{key} = {dotted!r} cannot be imported ({exc})") from None


def check_component_config(path: Path, config_class: type, values: Mapping[str, Any], where: str) -> None:
    """A Nautilus config table: known fields only (with "did you mean"), and values its class accepts, checked
    by parsing it as the node will; every problem is one line naming the key."""
    fields = [f.name for f in msgspec.structs.fields(config_class)]
    check_keys(path, values, fields, f"{where} of {config_class.__name__}")
    try:
        config_class.parse(msgspec.json.encode(dict(values)))
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError, TypeError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(path, f"{where} of {config_class.__name__}: {message}") from None


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


# [optimize] holds the search space and walk-forward scheme of ``ats optimize``; a backtest ignores it.
SECTIONS = ("backtest", "venue", "strategy", "actors", "optimize")


def load_backtest_settings(
    path: Path | None = None, overrides: Mapping[str, Any] | None = None, check_catalog: bool = True
) -> BacktestSettings:
    """The checked settings of a backtest config file.

    ``overrides``: values of the [backtest] table given on the command line (``start``, ``end``, ``symbols``,
    ``bar``), checked like the file's. ``check_catalog``: refuse symbols that neither the catalog nor the offline
    instrument table defines (a live node takes its instruments from Binance and skips this).
    """
    path, raw = read_config_file(path, DEFAULT_BACKTEST_CONFIG)
    return backtest_settings_from(path, raw, overrides, check_catalog)


def check_strategy_config(settings: BacktestSettings) -> None:
    """Every strategy instance's config as the node will pass it (universe and bars included), checked now:
    a misspelt key or a wrong value is a ConfigError before any data loads, not a traceback when the engine is
    built. The strategy's own parser where it has one (``parse_strategy_config``, dotted keys in the message),
    else its config class decodes it as Nautilus will."""
    path = settings.config_path
    if settings.strategy_config_path == AtsStrategyConfig.fully_qualified_name():
        try:
            parse_strategy_config(settings.strategy_instance_configs()[0])
        except StrategyConfigError as exc:
            raise ConfigError(path, f"[strategy.config] {exc}") from None
        return
    try:
        config_class = resolve_config_path(settings.strategy_config_path)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            path, f"[strategy] config_path = {settings.strategy_config_path!r} cannot be imported: {exc}"
        ) from exc
    for config in settings.strategy_instance_configs():
        try:
            config_class.parse(msgspec.json.encode(config))
        except (msgspec.ValidationError, msgspec.DecodeError, TypeError, ValueError) as exc:
            raise ConfigError(path, f"[strategy.config] {exc} (settings of {config_class.__name__})") from exc


def backtest_settings_from(
    path: Path, raw: dict[str, Any], overrides: Mapping[str, Any] | None = None, check_catalog: bool = True
) -> BacktestSettings:
    """Checked settings from the parsed TOML of the config file at ``path`` (relative paths resolve from it)."""
    unknown = set(raw) - set(SECTIONS)
    if unknown:
        first = sorted(unknown)[0]
        raise ConfigError(
            path, f"unknown section(s) {sorted(unknown)}{did_you_mean(first, SECTIONS)}; known: {', '.join(SECTIONS)}"
        )
    for section in ("backtest", "venue", "strategy"):
        if not isinstance(raw.get(section), dict):
            raise ConfigError(path, f"missing section [{section}]")
    bt, venue, strategy = dict(raw["backtest"]), raw["venue"], raw["strategy"]
    check_keys(path, bt, BACKTEST_KEYS, "[backtest]")
    check_keys(path, venue, VENUE_KEYS, "[venue]")
    check_keys(path, strategy, STRATEGY_KEYS, "[strategy]")
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    check_keys(Path("command line"), given, ("start", "end", "symbols", "bar", "csv_tables"), "the overrides")
    bt.update(given)
    # Relative paths in the file are relative to the project folder when the file lives in the package,
    # else to the file's own folder: a trader's copy of the config can sit anywhere.
    base = PACKAGE_DIR.parent if path.is_relative_to(PACKAGE_DIR) else path.parent
    catalog = _resolve(base, _require_optional(bt, "catalog", str, path, "backtest", "data/catalog"))

    def where(key: str) -> str:
        return f"--{key}" if key in given else f"[backtest] {key}"

    symbols = _require(bt, "symbols", list, path, "backtest")
    if not symbols or not all(isinstance(s, str) for s in symbols):
        raise ConfigError(path, f'{where("symbols")} must be a non-empty list of names like "BTCUSDT"')
    symbols = [s.strip().upper() for s in symbols]
    for symbol in symbols:
        if not _SYMBOL.match(symbol):
            raise ConfigError(path, f"{where('symbols')}: {symbol!r} is not a USDT-M perpetual symbol like BTCUSDT")
    if len(set(symbols)) != len(symbols):
        raise ConfigError(path, f"{where('symbols')}: a symbol is listed twice ({', '.join(symbols)})")
    if check_catalog:
        check_symbols_known(path, catalog, symbols, where("symbols"))
    bar_value = bt.get("bar", "1-MINUTE")
    try:
        bar_spec = spec_of_bar(bar_value)
    except ValueError as exc:
        raise ConfigError(path, f"{where('bar')}: {exc}") from exc
    start, end = _timestamp(bt.get("start"), path, where("start")), _timestamp(bt.get("end"), path, where("end"))
    if start is not None and end is not None and start >= end:
        raise ConfigError(path, f"{where('start')} {start} is not before {where('end')} {end}")
    sources = bt.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise ConfigError(path, "[backtest] sources must be a list of folders")
    report_dir = _require_optional(bt, "report_dir", str, path, "backtest", "reports")
    csv_tables = bt.get("csv_tables", False)
    if not isinstance(csv_tables, bool):
        raise ConfigError(path, f"{where('csv_tables')} = {csv_tables!r}: true or false")

    balance = _require(venue, "starting_balance", (int, float), path, "venue")
    if isinstance(balance, bool) or balance <= 0:
        raise ConfigError(path, "[venue] starting_balance must be positive (USDT)")
    oms_type = venue.get("oms_type", "NETTING")
    if oms_type not in ("NETTING", "HEDGING"):
        raise ConfigError(path, f"[venue] oms_type = {oms_type!r}: use NETTING (Binance one-way mode)")
    leverage = venue.get("default_leverage", 1)
    if isinstance(leverage, bool) or not isinstance(leverage, (int, float)) or not 1 <= leverage <= 125:
        raise ConfigError(path, f"[venue] default_leverage = {leverage!r}: a number from 1 to 125")
    log_level = bt.get("log_level", "ERROR")
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(path, f"[backtest] log_level = {log_level!r}: DEBUG, INFO, WARNING or ERROR")
    per_instrument = strategy.get("per_instrument", False)
    if not isinstance(per_instrument, bool):
        raise ConfigError(path, f"[strategy] per_instrument = {per_instrument!r}: true or false")

    strategy_path = _require(strategy, "path", str, path, "strategy")
    config_path = _require(strategy, "config_path", str, path, "strategy")
    for key, value in (("path", strategy_path), ("config_path", config_path)):
        if ":" not in value:
            raise ConfigError(path, f"[strategy] {key} = {value!r}: write it as 'package.module:ClassName'")
    strategy_config = strategy.get("config", {})
    if not isinstance(strategy_config, dict):
        raise ConfigError(path, "[strategy.config] must be a table")
    actors = raw.get("actors", [])
    if not isinstance(actors, list):
        raise ConfigError(path, "[[actors]] must be an array of tables")

    settings = BacktestSettings(
        config_path=path,
        catalog=catalog,
        symbols=tuple(symbols),
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
        report_dir=_resolve(base, report_dir),
        log_level=log_level,
        per_instrument_strategy=per_instrument,
        actors=check_actors(path, actors),
        csv_tables=csv_tables,
    )
    check_strategy_config(settings)
    return settings
