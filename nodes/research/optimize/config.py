"""The ``[optimize]`` table of a backtest config: objective, walk-forward scheme, trials, sampler, space.

Everything is checked here, before Ray or Optuna start: a mistake is a ConfigError naming the key.
"""

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nodes.research.optimize.folds import SCHEMES, Fold, walk_forward
from nodes.research.optimize.objective import OBJECTIVES
from nodes.research.optimize.space import Param, check_corners, parse_space
from nodes.settings import (
    DEFAULT_BACKTEST_CONFIG,
    BacktestSettings,
    ConfigError,
    backtest_settings_from,
    read_config_file,
)

SAMPLERS = ("tpe", "random", "qmc", "cmaes", "gp", "bruteforce")

# key: (what it is, default); a key whose default is None must be given
_KEYS: dict[str, tuple[str, Any]] = {
    "objective": (f"what the search maximises in sample: {', '.join(OBJECTIVES)}", "sharpe"),
    "min_trades": ("fewest closed trades a trial needs in a fold's in-sample window to count", 5),
    "scheme": ("rolling (fixed in-sample length) or anchored (in sample grows from the start)", "rolling"),
    "in_sample_days": ("length of each in-sample window, days", None),
    "out_of_sample_days": ("length of each out-of-sample window, days", None),
    "folds": ("number of folds (0: as many as fit between [backtest] start and end)", 0),
    "trials": ("trials per fold (--trials overrides)", 50),
    "sampler": (f"Optuna sampler: {', '.join(SAMPLERS)}", "tpe"),
    "seed": ("sampler seed, for a repeatable search (0: none)", 0),
    "pbo_blocks": ("blocks the in-sample hours are cut into for CSCV (even, 4 to 16)", 8),
    "space": ("the settings to search: [optimize.space]", None),
}


@dataclass(frozen=True)
class OptimizeSettings:
    config_path: Path
    raw: dict[str, Any]  # the parsed config file: every trial's config is this with its values set
    base: BacktestSettings
    objective: str
    min_trades: int
    scheme: str
    in_sample: pd.Timedelta
    out_of_sample: pd.Timedelta
    folds: tuple[Fold, ...]
    trials: int  # per fold
    sampler: str
    seed: int | None
    pbo_blocks: int
    space: tuple[Param, ...]
    warmup: pd.Timedelta  # the longest warm-up over the space's extremes

    @property
    def span(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """From the first in-sample start to the last out-of-sample end: the data every worker loads."""
        return self.folds[0].in_sample.start, self.folds[-1].out_of_sample.end


def _positive(path: Path, key: str, value: Any, kind: type = float) -> Any:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    if not ok or (kind is int and not isinstance(value, int)):
        whole = "a whole number" if kind is int else "a number"
        raise ConfigError(path, f"[optimize] {key} = {value!r}: {whole} above 0")
    return value


def load_optimize_settings(
    path: Path, trials: int | None = None, raw: dict[str, Any] | None = None
) -> OptimizeSettings:
    """The checked settings of the config file at ``path``; ``raw``: its table read elsewhere (a resumed run's
    saved copy), with relative paths still resolved from ``path``. ``trials`` overrides [optimize] trials."""
    if raw is None:
        path, raw = read_config_file(path, DEFAULT_BACKTEST_CONFIG)
    else:
        path = Path(path).resolve()
    base = backtest_settings_from(path, raw)
    table = raw.get("optimize")
    if not isinstance(table, dict):
        raise ConfigError(path, "no [optimize] table: add one with the walk-forward scheme and [optimize.space]")
    unknown = set(table) - set(_KEYS)
    for key in sorted(unknown):
        near = difflib.get_close_matches(key, list(_KEYS), n=1)
        hint = f"did you mean {near[0]}?" if near else f"known: {', '.join(_KEYS)}"
        raise ConfigError(path, f"[optimize] unknown key {key!r}; {hint}")
    for key, (what, default) in _KEYS.items():
        if default is None and key not in table:
            raise ConfigError(path, f"[optimize] needs {key}: {what}")
    get = {key: table.get(key, default) for key, (_, default) in _KEYS.items()}

    objective = get["objective"]
    if objective not in OBJECTIVES:
        raise ConfigError(path, f"[optimize] objective = {objective!r}: one of {', '.join(OBJECTIVES)}")
    min_trades = get["min_trades"]
    if not isinstance(min_trades, int) or isinstance(min_trades, bool) or min_trades < 0:
        raise ConfigError(path, f"[optimize] min_trades = {min_trades!r}: a whole number, 0 or more")
    scheme = get["scheme"]
    if scheme not in SCHEMES:
        raise ConfigError(path, f"[optimize] scheme = {scheme!r}: {' or '.join(SCHEMES)}")
    in_sample = pd.Timedelta(days=_positive(path, "in_sample_days", get["in_sample_days"]))
    out_of_sample = pd.Timedelta(days=_positive(path, "out_of_sample_days", get["out_of_sample_days"]))
    fold_count = get["folds"]
    if not isinstance(fold_count, int) or isinstance(fold_count, bool) or fold_count < 0:
        raise ConfigError(path, f"[optimize] folds = {fold_count!r}: a whole number (0: as many as fit)")
    trial_count = _positive(path, "trials", get["trials"] if trials is None else trials, int)
    sampler = get["sampler"]
    if sampler not in SAMPLERS:
        raise ConfigError(path, f"[optimize] sampler = {sampler!r}: one of {', '.join(SAMPLERS)}")
    seed = get["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(path, f"[optimize] seed = {seed!r}: a whole number (0: no seed)")
    blocks = get["pbo_blocks"]
    if not isinstance(blocks, int) or isinstance(blocks, bool) or blocks % 2 or not 4 <= blocks <= 16:
        raise ConfigError(path, f"[optimize] pbo_blocks = {blocks!r}: an even whole number from 4 to 16")

    if base.start is None or base.end is None:
        raise ConfigError(path, "[backtest] start and end are needed: the folds are laid out between them")
    try:
        folds = walk_forward(base.start, base.end, scheme, in_sample, out_of_sample, fold_count or None)
    except ValueError as exc:
        raise ConfigError(path, f"[optimize] {exc}") from exc
    space = parse_space(path, table["space"], base)
    windows = [w for f in folds for w in (f.in_sample, f.out_of_sample)]
    longest_warmup = check_corners(path, raw, space, windows)
    return OptimizeSettings(
        config_path=path,
        raw=raw,
        base=base,
        objective=objective,
        min_trades=min_trades,
        scheme=scheme,
        in_sample=in_sample,
        out_of_sample=out_of_sample,
        folds=tuple(folds),
        trials=trial_count,
        sampler=sampler,
        seed=seed or None,
        pbo_blocks=blocks,
        space=space,
        warmup=longest_warmup,
    )
