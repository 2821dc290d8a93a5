"""The search space of ``[optimize.space]`` and the backtest configs of its trials.

A key is a dotted path into ``[strategy.config]`` (``min_score``, ``factors.trend_w_dist``,
``factors.weights.T``), or ``backtest.bar`` for the bar size. Keys are resolved by walking the strategy's own
config class (a ``msgspec`` struct, nested structs and dicts included), so every setting the class has can be
searched and a misspelt one is refused with the nearest names. A trial's config is the config file's table
with the trial's values set, read by the same loader as ``ats backtest`` (``nodes.settings``), which decodes
it with the config class: what a trial runs is exactly what ``ats backtest`` of that table would run.
"""

import copy
import difflib
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec
import pandas as pd
from nautilus_trader.common.config import resolve_config_path
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from catalog.convert import interval_of_spec
from catalog.files import INTERVALS_MS
from factors.book import warmup_bars
from factors.config import FactorConfig
from nodes.research.optimize.folds import Window
from nodes.settings import BacktestSettings, ConfigError, backtest_settings_from

BAR_KEY = "backtest.bar"
_RANGE_KEYS = {"low", "high", "step", "log"}


@dataclass(frozen=True)
class Param:
    key: str
    distribution: BaseDistribution

    def extremes(self) -> list[Any]:
        """The values that bound the parameter: both ends of a range, every choice of a list."""
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return list(d.choices)
        assert isinstance(d, IntDistribution | FloatDistribution)
        return [d.low, d.high]

    def describe(self) -> str:
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return f"one of {list(d.choices)}"
        assert isinstance(d, IntDistribution | FloatDistribution)
        step = f" step {d.step}" if d.step not in (None, 1) else ""
        return f"{d.low} .. {d.high}{step}{' (log)' if d.log else ''}"


def _unwrap(kind: Any) -> Any:
    """The type under ``Optional[...]`` and ``Annotated[...]`` (``PositiveInt`` is an annotated ``int``)."""
    if get_origin(kind) is Annotated:
        return _unwrap(get_args(kind)[0])
    if get_origin(kind) in (Union, types.UnionType):
        rest = [a for a in get_args(kind) if a is not type(None)]
        if len(rest) == 1:
            return _unwrap(rest[0])
    return kind


def _is_struct(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, msgspec.Struct)


def setting_type(config_class: type, key: str) -> Any:
    """The declared type of the setting at the dotted ``key`` of ``config_class``; ValueError if it has none."""
    parts = key.split(".")
    current: Any = config_class
    for depth, part in enumerate(parts):
        kind = _unwrap(current)
        where = ".".join(parts[:depth])
        if _is_struct(kind):
            fields = {f.name: f.type for f in msgspec.structs.fields(kind)}
            if part not in fields:
                near = difflib.get_close_matches(part, list(fields), n=3)
                hint = f"; did you mean {' or '.join(near)}?" if near else f"; it has {', '.join(sorted(fields))}"
                place = f"{where} ({kind.__name__})" if where else kind.__name__
                raise ValueError(f"no setting {part!r} in {place}{hint}")
            current = fields[part]
        elif get_origin(kind) is dict:
            current = get_args(kind)[1] if get_args(kind) else Any
        else:
            raise ValueError(f"{where} is a single value ({getattr(kind, '__name__', kind)}), it has no {part!r}")
    return _unwrap(current)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _range(key: str, spec: dict[str, Any], kind: Any) -> BaseDistribution:
    unknown = set(spec) - _RANGE_KEYS
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(unknown)} in a range; use low, high and optionally step, log")
    if "low" not in spec or "high" not in spec:
        raise ValueError("a range needs low and high, e.g. { low = 40, high = 80 }")
    low, high, step, log = spec["low"], spec["high"], spec.get("step"), spec.get("log", False)
    if not (_number(low) and _number(high)) or (step is not None and not _number(step)):
        raise ValueError("low, high and step of a range must be numbers")
    if not isinstance(log, bool):
        raise ValueError("log must be true or false")
    if low > high:
        raise ValueError(f"empty range: low {low} is above high {high}")
    if low == high:
        raise ValueError(f"a range from {low} to {high} holds one value: set it in [strategy.config] instead")
    if step is not None and step <= 0:
        raise ValueError(f"step {step} must be positive")
    if log and (low <= 0 or step is not None):
        raise ValueError("a log range needs low > 0 and no step")
    if kind is bool or (isinstance(kind, type) and not issubclass(kind, int | float) and kind is not Any):
        raise ValueError(f"a range needs a number setting, this one is {getattr(kind, '__name__', kind)}: list choices")
    integer = kind is int or (
        kind is Any and isinstance(low, int) and isinstance(high, int) and isinstance(step, int | None)
    )
    if integer:
        if not all(isinstance(v, int) for v in (low, high, step or 1)):
            raise ValueError("this setting is a whole number: low, high and step must be whole numbers")
        return IntDistribution(low, high, log=log, step=step or 1)
    return FloatDistribution(float(low), float(high), log=log, step=None if step is None else float(step))


def _choices(spec: list[Any]) -> BaseDistribution:
    if not spec:
        raise ValueError("empty list of choices")
    if not all(isinstance(v, str | int | float | bool) for v in spec):
        raise ValueError("choices must be numbers, strings or true/false")
    if len(set(map(repr, spec))) != len(spec):
        raise ValueError(f"a choice is listed twice in {spec}")
    if len(spec) == 1:
        raise ValueError(f"one choice {spec}: set it in [strategy.config] instead")
    return CategoricalDistribution(spec)


def parse_space(path: Path, table: Any, base: BacktestSettings) -> tuple[Param, ...]:
    """The parameters of ``[optimize.space]``, each checked against the strategy's config class."""
    if not isinstance(table, dict) or not table:
        raise ConfigError(
            path, "[optimize.space] must list at least one setting, e.g. min_score = { low = 40, high = 80 }"
        )
    config_class = resolve_config_path(base.strategy_config_path)
    filled_by_runner = set(base.strategy_instance_configs()[0]) - set(base.strategy_config)
    params = []
    for key, spec in _flatten(table):
        try:
            if key == BAR_KEY:
                if not isinstance(spec, list):
                    raise ValueError('list the bar sizes, e.g. ["15-MINUTE", "1-HOUR"]')
                params.append(Param(key, _choices(spec)))
                continue
            if key.startswith("backtest.") or key.startswith("venue."):
                raise ValueError(f"only {BAR_KEY} can be searched outside [strategy.config]")
            if key.split(".")[0] in filled_by_runner:
                raise ValueError("set from [backtest] symbols and bar; search bar sizes with backtest.bar")
            kind = setting_type(config_class, key)
            if isinstance(spec, dict):
                params.append(Param(key, _range(key, spec, kind)))
            elif isinstance(spec, list):
                params.append(Param(key, _choices(spec)))
            else:
                raise ValueError("give a range { low = ..., high = ... } or a list of choices [ ... ]")
        except ValueError as exc:
            raise ConfigError(path, f"[optimize.space] {key}: {exc}") from exc
    return tuple(params)


def _flatten(table: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Dotted keys: a TOML key ``factors.trend_w_dist = {...}`` nests as tables; a range is a table too."""
    items = []
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and value and not (set(value) & _RANGE_KEYS):
            items.extend(_flatten(value, f"{key}."))
        else:
            items.append((key, value))
    return items


def with_values(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of the config file's table with each dotted key set (``backtest.bar`` or a strategy setting)."""
    table = copy.deepcopy(raw)
    for key, value in values.items():
        if key == BAR_KEY:
            table["backtest"]["bar"] = value
            continue
        node = table["strategy"].setdefault("config", {})
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"[strategy.config] {'.'.join(parents)} is not a table")
            node = child
        node[leaf] = value
    return table


def trial_settings(
    path: Path, raw: dict[str, Any], values: dict[str, Any], window: Window | None = None
) -> BacktestSettings:
    """The backtest settings of one trial over ``window`` (None: the config's own start and end)."""
    table = with_values(raw, values)
    if window is not None:
        table["backtest"]["start"] = window.start.isoformat()
        table["backtest"]["end"] = window.last.isoformat()
    return backtest_settings_from(path, table)


def bar_duration(bar_spec: str) -> pd.Timedelta:
    return pd.Timedelta(INTERVALS_MS[interval_of_spec(bar_spec)], "ms")


def warmup(settings: BacktestSettings) -> pd.Timedelta:
    """How long the strategy watches before it can trade: the factors' warm-up plus one scan interval.

    Read from the decoded strategy config: a ``factors`` sub-config (``FactorConfig``) has a warm-up in bars,
    a ``scan.interval_minutes`` adds the wait for the first scan. A strategy with neither has none.
    """
    config_class = resolve_config_path(settings.strategy_config_path)
    config = config_class.parse(msgspec.json.encode(settings.strategy_instance_configs()[0]))
    total = pd.Timedelta(0)
    factors = getattr(config, "factors", None)
    if isinstance(factors, FactorConfig):
        total += warmup_bars(factors) * bar_duration(settings.bar_spec)
    scan = getattr(getattr(config, "scan", None), "interval_minutes", None)  # scans every so many minutes
    if isinstance(scan, int | float):
        total += pd.Timedelta(minutes=scan)
    return total


def corner_values(params: tuple[Param, ...]) -> list[dict[str, Any]]:
    """Each parameter at each of its extremes alone, then all at their low and all at their high ends."""
    corners: list[dict[str, Any]] = [{}]
    for param in params:
        corners.extend({param.key: value} for value in param.extremes())
    ranges = [p for p in params if not isinstance(p.distribution, CategoricalDistribution)]
    choices = [p for p in params if isinstance(p.distribution, CategoricalDistribution)]
    for end in (0, 1):
        together = {p.key: p.extremes()[end] for p in ranges}
        for choice in choices:  # each choice of each list, with every range at this end
            for value in choice.extremes():
                corners.append({**together, choice.key: value})
        corners.append(together)
    return corners


def check_corners(path: Path, raw: dict[str, Any], params: tuple[Param, ...], windows: list[Window]) -> pd.Timedelta:
    """Refuse a space whose extremes the config class rejects, or whose warm-up outlasts the shortest window.

    Returns the longest warm-up found.
    """
    longest = pd.Timedelta(0)
    for values in corner_values(params):
        try:
            settings = trial_settings(path, raw, values)
        except ConfigError as exc:
            setting = ", ".join(f"{k} = {v!r}" for k, v in values.items()) or "the base config"
            problem = str(exc).removeprefix(f"{path}: ")
            raise ConfigError(path, f"[optimize.space] {setting}: {problem}") from exc
        longest = max(longest, warmup(settings))
    shortest = min(windows, key=lambda w: w.end - w.start)
    if shortest.end - shortest.start <= longest:
        raise ConfigError(
            path,
            f"[optimize] a window of {shortest.days:g} days is not longer than the strategy's warm-up"
            f" ({longest / pd.Timedelta(days=1):.2f} days: factors plus one scan, at the space's largest"
            " windows and bar size): lengthen in_sample_days / out_of_sample_days or narrow the space",
        )
    return longest
