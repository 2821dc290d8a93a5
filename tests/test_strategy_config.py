"""The strategy's nested config: the shipped file parses, mistakes are refused with the dotted key, and the
command line says so in one line before anything loads."""

from pathlib import Path

import pytest
from nautilus_trader.model.identifiers import InstrumentId

from nodes.cli import main
from nodes.settings import DEFAULT_BACKTEST_CONFIG, load_backtest_settings
from strategies.config import AtsStrategyConfig, StrategyConfigError, parse_strategy_config, with_overrides
from strategies.exits import ExitMode
from strategies.scan import ScanEntries


def test_the_shipped_table_is_the_defaults() -> None:
    table = load_backtest_settings(DEFAULT_BACKTEST_CONFIG).strategy_config
    assert parse_strategy_config(table) == AtsStrategyConfig()
    config = parse_strategy_config(
        {"instrument_ids": ["BTCUSDT-PERP.BINANCE"], "exits": {"mode": "ATR"}, "scan": {"entries": "NONE"}}
    )
    assert config.instrument_ids == (InstrumentId.from_str("BTCUSDT-PERP.BINANCE"),)
    assert config.exits.mode == ExitMode.ATR and config.scan.entries == ScanEntries.NONE


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({"stop_pct": 0.02}, "stop_pct", "did you mean exits.stop_pct?"),  # a flat key of the old layout
        ({"exits": {"stop_pcct": 0.02}}, "exits.stop_pcct", "did you mean exits.stop_pct?"),
        ({"factors": {"trend_w_dsit": 0.4}}, "factors.trend_w_dsit", "did you mean factors.trend_w_dist?"),
        ({"dynamic_exit_below": -50}, "dynamic_exit_below", "did you mean dynamic.exit_below?"),
        ({"exits": 0.02}, "exits", "must be a table"),
        ({"sizing": {"risk_fraction": "1%"}}, "sizing.risk_fraction", "Expected `float`, got `str`"),
        ({"sizing": {"risk_fraction": 0}}, "sizing.risk_fraction", "> 0.0"),
        ({"sizing": {"risk_fraction": -0.01}}, "sizing.risk_fraction", "> 0.0"),
        ({"sizing": {"risk_fraction": 1}}, "sizing.risk_fraction", "at most 0.2"),
        ({"min_score": 101}, "min_score", "from 0 to 100"),
        ({"min_score": -1}, "min_score", "from 0 to 100"),
        ({"exits": {"stop_pct": 0.1}}, "exits.stop_pct", "below tp2_pct"),
        ({"exits": {"tp1_pct": 0.09}}, "exits.tp1_pct", "below tp2_pct"),
        ({"exits": {"atr_stop_mult": 0}}, "exits.atr_stop_mult", "> 0.0"),
        ({"exits": {"atr_target_mult": -2.5}}, "exits.atr_target_mult", "> 0.0"),
        ({"exits": {"mode": "atr"}}, "exits.mode", "one of 'PERCENT', 'ATR'"),
        ({"risk": {"max_positions": 0}}, "risk.max_positions", ">= 1"),
        ({"scan": {"interval_minutes": 7}, "bar_spec": "5-MINUTE"}, "scan.interval_minutes", "5-MINUTE bars"),
        ({"scan": {"entries": "ONCE"}}, "scan.entries", "'FIRST_SCAN'"),
        ({"instrument_ids": ["BTCUSDT"]}, "instrument_ids.0", "invalid `InstrumentId`"),
        ({"bar_spec": "1-FORTNIGHT"}, "bar_spec", "not a bar spec"),
        ({"factors": {"long_threshold": -5}}, "factors", "thresholds"),
    ],
)
def test_mistakes_are_refused_with_the_dotted_key(table: dict, key: str, words: str) -> None:
    with pytest.raises(StrategyConfigError) as caught:
        parse_strategy_config(table)
    assert caught.value.key == key
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_dotted_overrides_map_onto_the_nested_table() -> None:
    table = {"min_score": 60.0, "exits": {"stop_pct": 0.02}}
    out = with_overrides(table, {"exits.stop_pct": 0.03, "factors.trend_w_dist": 0.5, "scan.interval_minutes": 15})
    assert out == {
        "min_score": 60.0,
        "exits": {"stop_pct": 0.03},
        "factors": {"trend_w_dist": 0.5},
        "scan": {"interval_minutes": 15},
    }
    assert table["exits"]["stop_pct"] == 0.02  # the table itself is left alone
    config = parse_strategy_config(out)
    assert (config.exits.stop_pct, config.factors.trend_w_dist, config.scan.interval_minutes) == (0.03, 0.5, 15)
    with pytest.raises(StrategyConfigError, match="did you mean exits.stop_pct"):
        with_overrides(table, {"exits.stop": 0.03})


@pytest.mark.parametrize("command", ["backtest", "scan", "live"])
def test_commands_refuse_a_bad_strategy_table_in_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DEFAULT_BACKTEST_CONFIG.read_text().replace("stop_pct = 0.02", "stop_pct = 0.2")
    text = text.replace('catalog = "data/catalog"', f'catalog = "{tmp_path / "no-catalog"}"')
    (tmp_path / "backtest.toml").write_text(text)
    (tmp_path / "live.toml").write_text('[live]\nstrategy_from = "backtest.toml"\nmode = "paper"\n')
    config = tmp_path / ("live.toml" if command == "live" else "backtest.toml")
    assert main([command, str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "[strategy.config] exits.stop_pct: 0.2 must be below tp2_pct 0.08" in err
    assert not (tmp_path / "no-catalog").exists()  # refused before any data was looked at
