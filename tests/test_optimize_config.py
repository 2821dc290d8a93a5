"""``[optimize]`` and its space: walk-forward folds, dotted keys, and every bad input refused before anything runs."""

from pathlib import Path

import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from nodes.cli import main
from nodes.research.optimize.config import load_optimize_settings
from nodes.research.optimize.folds import walk_forward
from nodes.research.optimize.space import setting_type, trial_settings, with_values
from nodes.settings import ConfigError
from strategies.config import AtsStrategyConfig

BASE = """
[backtest]
catalog = "{catalog}"
symbols = ["BTCUSDT", "ETHUSDT"]
bar = "1-HOUR"
start = "2024-01-01"
end = "2024-03-01"
report_dir = "{reports}"

[venue]
starting_balance = 10000

[strategy]
path = "strategies.ats:AtsStrategy"
config_path = "strategies.config:AtsStrategyConfig"

[strategy.config]
min_score = 50.0

[strategy.config.scan]
interval_minutes = 60
"""

OPTIMIZE = """
[optimize]
objective = "sharpe"
min_trades = 3
scheme = "{scheme}"
in_sample_days = {in_sample}
out_of_sample_days = 10
folds = {folds}
trials = 6

[optimize.space]
{space}
"""

SPACE = """min_score = { low = 30, high = 70 }
scan.interval_minutes = [60, 120]
risk.max_positions = { low = 2, high = 6 }
factors.trend_w_dist = { low = 0.2, high = 0.6, step = 0.1 }
factors.weights.T = { low = 10, high = 40 }
backtest.bar = ["1-HOUR", "15-MINUTE"]"""


def _config(
    tmp_path: Path,
    space: str = SPACE,
    scheme: str = "rolling",
    in_sample: float = 20,
    folds: int = 3,
    extra: str = "",
) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "study.toml"
    text = BASE.format(catalog=tmp_path / "catalog", reports=tmp_path / "reports")
    text += OPTIMIZE.format(scheme=scheme, in_sample=in_sample, folds=folds, space=space) + extra
    path.write_text(text)
    return path


def _day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_rolling_and_anchored_folds_end_at_the_last_day() -> None:
    start, end = _day("2024-01-01"), _day("2024-03-01")  # 60 days
    rolling = walk_forward(start, end, "rolling", pd.Timedelta(days=20), pd.Timedelta(days=10), 3)
    # laid back from the end: 20 + 3 x 10 = 50 days, so the first in-sample window starts on day 10
    assert [(str(f.in_sample), str(f.out_of_sample)) for f in rolling] == [
        ("2024-01-11 -> 2024-01-31", "2024-01-31 -> 2024-02-10"),
        ("2024-01-21 -> 2024-02-10", "2024-02-10 -> 2024-02-20"),
        ("2024-01-31 -> 2024-02-20", "2024-02-20 -> 2024-03-01"),
    ]
    anchored = walk_forward(start, end, "anchored", pd.Timedelta(days=20), pd.Timedelta(days=10), 3)
    assert [f.in_sample.start for f in anchored] == [_day("2024-01-11")] * 3
    assert [f.in_sample.end for f in anchored] == [f.in_sample.end for f in rolling]
    assert [f.out_of_sample for f in anchored] == [f.out_of_sample for f in rolling]
    # folds = None: as many as fit (20 + 4 x 10 = 60 days)
    assert len(walk_forward(start, end, "rolling", pd.Timedelta(days=20), pd.Timedelta(days=10), None)) == 4
    # a window ends one nanosecond before the next begins, so no bar is in two windows
    assert rolling[0].in_sample.last == _day("2024-01-31") - pd.Timedelta(1, "ns")


def test_space_keys_resolve_through_the_strategy_config_class(tmp_path: Path) -> None:
    settings = load_optimize_settings(_config(tmp_path))
    kinds = {p.key: p.distribution for p in settings.space}
    assert kinds["min_score"] == FloatDistribution(30.0, 70.0)
    assert kinds["scan.interval_minutes"] == CategoricalDistribution([60, 120])
    assert kinds["risk.max_positions"] == IntDistribution(2, 6)  # PositiveInt: an annotated int
    assert kinds["factors.trend_w_dist"] == FloatDistribution(0.2, 0.6, step=0.1)
    assert kinds["factors.weights.T"] == FloatDistribution(10.0, 40.0)  # weights: dict[str, float]
    assert len(settings.folds) == 3 and settings.trials == 6
    # the warm-up at the space's extremes: 50-bar trend EMA (+1) on 1h bars, plus a 120-minute scan
    assert settings.warmup == pd.Timedelta(hours=51 + 2)
    assert setting_type(AtsStrategyConfig, "factors.trend_ema_slow") is int

    values = {"factors.trend_w_dist": 0.3, "factors.weights.T": 12.5, "backtest.bar": "15-MINUTE", "min_score": 41.0}
    table = with_values(settings.raw, values)
    assert table["strategy"]["config"]["factors"] == {"trend_w_dist": 0.3, "weights": {"T": 12.5}}
    assert table["backtest"]["bar"] == "15-MINUTE" and table["strategy"]["config"]["min_score"] == 41.0
    assert settings.raw["strategy"]["config"] == {"min_score": 50.0, "scan": {"interval_minutes": 60}}  # untouched
    trial = trial_settings(settings.config_path, settings.raw, values, settings.folds[0].in_sample)
    assert trial.bar_spec == "15-MINUTE" and trial.strategy_config["factors"]["weights"] == {"T": 12.5}
    assert trial.start == settings.folds[0].in_sample.start
    assert trial.end == settings.folds[0].in_sample.end - pd.Timedelta(1, "ns")


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ("min_scor = { low = 30, high = 70 }", "no setting 'min_scor' in AtsStrategyConfig; did you mean min_score?"),
        (
            "factors.trend_w_dst = { low = 0.1, high = 0.5 }",
            "no setting 'trend_w_dst' in factors (FactorConfig); did you mean trend_w_dist or",
        ),
        ("min_score.x = [1, 2]", "min_score is a single value (float), it has no 'x'"),
        ("min_score = { low = 70, high = 30 }", "empty range: low 70 is above high 30"),
        ("min_score = { low = 50, high = 50 }", "holds one value"),
        ("scan.interval_minutes = []", "empty list of choices"),
        ("risk.max_positions = { low = 1.5, high = 4 }", "whole number"),
        ("min_score = { low = 30, hgh = 70 }", "unknown key(s) ['hgh']"),
        ("backtest.start = ['2024-01-01', '2024-01-05']", "only backtest.bar can be searched"),
        ("instrument_ids = [['BTCUSDT-PERP.BINANCE'], ['ETHUSDT-PERP.BINANCE']]", "set from [backtest]"),
        ("backtest.bar = ['1-HOUR', '7-MINUTE']", "'7-MINUTE' is not a bar size"),
        ("exits.mode = ['PERCENT', 'SOMETIMES']", "exits.mode = 'SOMETIMES': [strategy.config] exits.mode"),
        # each end of a range is checked by the strategy's own rules: a stop beyond TP2 at the high end
        ("exits.stop_pct = { low = 0.01, high = 0.09 }", "exits.stop_pct = 0.09: [strategy.config] exits.stop_pct"),
        ("scan.interval_minutes = [60, 90]", "scan.interval_minutes = 90: [strategy.config]"),
    ],
)
def test_bad_space_is_refused_with_the_key_named(tmp_path: Path, space: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_optimize_settings(_config(tmp_path, space=space))
    assert message in str(info.value)
    assert "[optimize.space]" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # 2 days in sample on 1h bars: shorter than 51 hours of trend warm-up plus a scan
        (dict(in_sample=2, folds=2), "not longer than the strategy's warm-up"),
        (dict(in_sample=40, folds=3), "3 fold(s) of 40 days in sample + 10 days out of sample need 70 days"),
        (dict(scheme="expanding"), "scheme = 'expanding': rolling or anchored"),
        # an [optimize] key written below [optimize.space] is a setting to search: there is none by that name
        (dict(extra="trials = 5\n"), "[optimize.space] trials: no setting 'trials' in AtsStrategyConfig"),
    ],
)
def test_bad_folds_are_refused(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_optimize_settings(_config(tmp_path, **kwargs))
    assert message in str(info.value)


def test_a_misspelt_optimize_key_is_named(tmp_path: Path) -> None:
    path = _config(tmp_path)
    path.write_text(path.read_text().replace('objective = "sharpe"', 'objectve = "sharpe"'))
    with pytest.raises(ConfigError, match="unknown key 'objectve'; did you mean objective"):
        load_optimize_settings(path)
    path.write_text(path.read_text().replace('objectve = "sharpe"', 'objective = "sharp"'))
    with pytest.raises(ConfigError, match="objective = 'sharp': one of sharpe, sortino, calmar"):
        load_optimize_settings(path)


def test_a_typo_in_strategy_config_fails_ats_backtest_too(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _config(tmp_path)
    path.write_text(path.read_text().replace("min_score = 50.0", "min_scor = 50.0"))
    assert main(["backtest", str(path)]) == 2
    assert "min_scor: unknown key; did you mean min_score?" in capsys.readouterr().err


def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = _config(tmp_path, space="min_score = { low = 70, high = 30 }")
    assert main(["optimize", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("ats optimize: error:") and "empty range" in err

    good = _config(tmp_path / "good")
    assert main(["optimize", str(good), "--ray-address", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ats optimize: error: no Ray cluster reachable at 127.0.0.1:1")
    assert "ray start --head" in err and err.count("\n") == 0
    assert not (tmp_path / "good" / "reports").exists()  # no run folder made for nothing

    assert main(["optimize", str(good), "--ray-address", "not an address"]) == 2
    assert "write it as HOST:PORT" in capsys.readouterr().err
    assert main(["optimize", str(good), "--trials", "0"]) == 2
    assert "--trials 0: at least 1" in capsys.readouterr().err
    assert main(["optimize", "--resume", str(tmp_path)]) == 2
    assert "is not an ats optimize run folder" in capsys.readouterr().err
    assert main(["optimize"]) == 2
    assert "give a CONFIG" in capsys.readouterr().err


def test_progress_line_shows_done_best_and_eta() -> None:
    from nodes.research.optimize.progress import ProgressState, format_progress

    state = ProgressState(
        done=6, total=24, fold=2, folds=3, best=1.234567, objective="sharpe", failed=1, pruned=2,
        done_this_session=4, elapsed_s=120.0,
    )  # fmt: skip
    # 4 jobs took 120 s this session: 18 left take 540 s
    assert format_progress(state, width=8) == (
        "[##......] 6/24  fold 2/3  best sharpe 1.235  failed 1  too few trades 2  ETA 9m00s"
    )
    assert format_progress(ProgressState(0, 10, 1, 1, None, "calmar", 0, 0, 0, 0.0), width=4).endswith("ETA --")
