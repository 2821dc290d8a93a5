"""Strict config tables: an unknown key or a wrong value in [backtest], [venue], [strategy], [live] or an actor's
table is one line naming it (with "did you mean"), exit code 2, before any data loads or any connection."""

from pathlib import Path

import pytest

from nodes.cli import main

BACKTEST = """
[backtest]
catalog = "{catalog}"
symbols = ["BTCUSDT"]
bar = "1-MINUTE"
start = "2025-05-10"
end = "2025-05-11"

[venue]
starting_balance = 10000

[strategy]
path = "benchmarks.ema_cross:EMACrossNotional"
config_path = "benchmarks.ema_cross:EMACrossNotionalConfig"
per_instrument = true
"""
TELEGRAM = """
[[actors]]
actor_path = "nodes.telegram:TelegramNotifier"
config_path = "nodes.telegram:TelegramNotifierConfig"
config.mode = "backtest"
"""
LIVE = """
[live]
strategy_from = "backtest.toml"
mode = "paper"
"""


def _write(tmp_path: Path, text: str, name: str = "backtest.toml") -> Path:
    path = tmp_path / name
    path.write_text(text.replace("{catalog}", str(tmp_path / "catalog")))
    return path


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (("bar = ", 'bars = "5-MINUTE"\nbar = '), "unknown key 'bars' in [backtest] (did you mean 'bar'?)"),
        (("starting_balance", "starting_balanse"), "unknown key 'starting_balanse' in [venue] (did you mean"),
        (("per_instrument", "per_instrumnet"), "unknown key 'per_instrumnet' in [strategy] (did you mean"),
        (("[venue]", "[venu]"), "unknown section(s) ['venu'] (did you mean 'venue'?)"),
        (('start = "2025-05-10"', 'start = "2025-05-32"'), "[backtest] start = '2025-05-32' is not a date/time"),
        (("starting_balance = 10000", "starting_balance = -5"), "[venue] starting_balance must be positive"),
        (("per_instrument = true", 'per_instrument = "yes"'), "[strategy] per_instrument = 'yes': true or false"),
        (("bar = ", "csv_table = true\nbar = "), "unknown key 'csv_table' in [backtest] (did you mean 'csv_tables'?)"),
        (("bar = ", 'csv_tables = "yes"\nbar = '), "[backtest] csv_tables = 'yes': true or false"),
        (('symbols = ["BTCUSDT"]', 'symbols = ["BTCUSDT", "BTCUSDT"]'), "a symbol is listed twice"),
        (TELEGRAM + 'config.langauge = "en"', "unknown key 'langauge' in [[actors]] config of TelegramNotifierConfig "),
        (TELEGRAM + 'config.language = "fr"', "TelegramNotifierConfig: language = 'fr': one of zh, en"),
        (TELEGRAM + 'config.events = { tp3 = "on" }', "unknown Telegram event setting 'tp3' (did you mean 'tp2'?)"),
        (TELEGRAM + "config.queue_size = -1", "queue_size = -1: must be positive"),
        (TELEGRAM + 'config.base_url = "api.telegram.org"', "base_url = 'api.telegram.org': an http(s) URL"),
        (TELEGRAM.replace('TelegramNotifier"', 'TelegramNotifer"'), "cannot be imported"),
        (TELEGRAM + "colour = 1", "unknown key 'colour' in [[actors]]"),
    ],
)
def test_a_backtest_config_mistake_is_one_line_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: tuple[str, str] | str, problem: str
) -> None:
    text = BACKTEST + edit if isinstance(edit, str) else BACKTEST.replace(*edit, 1)
    err = _error(["backtest", str(_write(tmp_path, text))], capsys)
    assert problem in err
    assert not (tmp_path / "catalog").exists()  # no data was looked for, let alone ingested


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("levrage = 5", "unknown key 'levrage' in [live] (did you mean 'leverage'?)"),
        (
            'base_url = "http://127.0.0.1:8900"',
            "unknown key 'base_url' in [live] (did you mean one of 'base_url_http', 'base_url_ws', "
            "'base_url_ws_stream'?)",
        ),
        ('base_url_http = "127.0.0.1:8900"', "[live] base_url_http = '127.0.0.1:8900': a URL starting with http://"),
        ('base_url_ws = "http://127.0.0.1:8900"', "[live] base_url_ws = 'http://127.0.0.1:8900': a URL starting"),
        ('paper_balance = "lots"', "[live] paper_balance = 'lots': a positive number of USDT"),
        ("leverage = 200", "[live] leverage = 200: a whole number from 1 to max_leverage 125"),
        ('log_level = "LOUD"', "[live] log_level = 'LOUD': one of DEBUG, INFO, WARNING, ERROR"),
        ('symbols = "BTCUSDT"', "[live] symbols = 'BTCUSDT': a list of symbols"),
        ("scan_once = 1", "[live] scan_once = 1: true or false"),
        ("[telegram]\nlanguage = 'en'", "unknown section(s) ['telegram']"),
        (
            TELEGRAM + 'config.evnts = { tp1 = "off" }',
            "unknown key 'evnts' in [[actors]] config of TelegramNotifierConfig",
        ),
    ],
)
def test_a_live_config_mistake_is_one_line_before_anything_connects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, problem: str
) -> None:
    _write(tmp_path, BACKTEST)
    live = _write(tmp_path, LIVE + line + "\n", "live.toml")
    err = _error(["live", str(live), "--paper"], capsys)
    assert problem in err
