"""``ats backtest`` as a trader types it: command-line overrides, refusals that show what the catalog holds,
progress on stderr, report folders that never collide. Real Binance Vision klines (FILUSDT, September 2024)."""

import re
from pathlib import Path

import pandas as pd
import pytest

from catalog.ingest import ingest
from nodes.backtest.report_files import new_report_folder
from nodes.cli import main


@pytest.fixture(scope="module")
def catalog(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("catalog")
    ingest([shared_data / "klines_1m_vision" / "FILUSDT-1m-2024-09.csv.gz"], folder)
    return folder


def config(tmp_path: Path, catalog: Path) -> Path:
    path = tmp_path / "ema.toml"
    path.write_text(
        f"""
[backtest]
catalog = "{catalog}"
symbols = ["NEARUSDT"]
bar = "1-MINUTE"
start = "2023-01-01"
end = "2023-02-01"
report_dir = "{tmp_path / "reports"}"

[venue]
starting_balance = 10000

[strategy]
path = "benchmarks.ema_cross:EMACrossNotional"
config_path = "benchmarks.ema_cross:EMACrossNotionalConfig"
per_instrument = true
"""
    )
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse refuses a malformed option itself
        code = int(exit_.code)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_period_symbols_and_bar_size_come_from_the_command_line(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        [
            "backtest",
            str(config(tmp_path, catalog)),
            "--timerange",
            "20240910-20240912",
            "--pairs",
            "FIL/USDT:USDT",
            "--bar",
            "5m",
            "--csv-tables",
        ],
        capsys,
    )
    assert code == 0, err
    assert "2024-09-10 00:00:00+00:00 -> 2024-09-12 00:00:00+00:00" in out
    assert "1 (5-MINUTE bars)" in out
    # the progress of the replay (a line per tenth when stderr is not a terminal) and of the report writing
    assert "100%" in err and "bars/s" in err and "ETA" in err
    # the report's own files, and the raw tables (and their CSVs): shared with a second process on an idle core
    assert re.search(r"\[4/(6|11)\] tearsheet.html", err) and "fills.csv" in err and "positions.csv" in err
    (folder,) = (tmp_path / "reports").iterdir()
    assert (folder / "tearsheet.html").is_file()
    assert (folder / "fills.parquet").is_file() and (folder / "fills.csv").is_file()  # --csv-tables: both


def test_start_and_end_override_the_file_and_symbols_take_commas(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        [
            "backtest",
            str(config(tmp_path, catalog)),
            "--start",
            "2024-09-10",
            "--end",
            "2024-09-11T12:00",
            "--symbols",
            "filusdt,",
        ],
        capsys,
    )
    assert code == 0, err
    assert "2024-09-10 00:00:00+00:00 -> 2024-09-11 12:00:00+00:00" in out and "1 (1-MINUTE bars)" in out


def test_a_period_the_catalog_does_not_cover_is_refused_with_what_it_holds(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        ["backtest", str(config(tmp_path, catalog)), "--symbols", "FILUSDT", "ETHUSDT", "--timerange", "20230101-"],
        capsys,
    )
    assert code == 2
    assert out == ""
    assert "has no 1-MINUTE bars (nor finer bars to build them from) for FILUSDT, ETHUSDT" in err
    assert "FILUSDT: 1-MINUTE-LAST bars (Binance klines) 2024-09-01 00:01 -> 2024-10-01 00:00 (43,200)" in err
    assert "ETHUSDT: nothing" in err
    assert "Traceback" not in err
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--timerange", "2024-09-10"], "is not a time range like 20250501-20250601"),
        (["--timerange", "20240910-", "--start", "2024-09-10"], "give --timerange or --start/--end, not both"),
        (["--bar", "7m"], "--bar: '7m' is not a bar size"),
        (["--start", "yesterday"], "--start = 'yesterday' is not a date/time"),
        (["--symbols", "BTC-USDT"], "--symbols: 'BTC-USDT' is not a USDT-M perpetual symbol"),
        (["--symbols", "DOGEUSDT"], "--symbols: DOGEUSDT is not an instrument of the catalog"),
    ],
)
def test_bad_overrides_are_one_clear_line(
    tmp_path: Path, catalog: Path, argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["backtest", str(config(tmp_path, catalog)), *argv], capsys)
    assert code == 2
    assert problem in err and "Traceback" not in err


def test_two_runs_in_the_same_second_get_two_report_folders(tmp_path: Path) -> None:
    now = pd.Timestamp("2026-12-01 07:00:00", tz="UTC")
    first, second, third = (new_report_folder(tmp_path, now) for _ in range(3))
    assert [p.name for p in (first, second, third)] == ["20261201-070000", "20261201-070000-2", "20261201-070000-3"]


def test_a_period_the_bars_cover_only_in_part_runs_with_a_warning(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        ["backtest", str(config(tmp_path, catalog)), "--symbols", "FILUSDT", "--timerange", "20240929-20241003"],
        capsys,
    )
    assert code == 0, err
    assert (
        "warning: FILUSDT has 1-MINUTE bars for 2024-09-29 00:00 -> 2024-10-01 00:00 only, "
        "of the period 2024-09-29 00:00 -> 2024-10-03 00:00"
    ) in err


def test_source_files_the_catalog_holds_are_not_ingested_again(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "xrp.toml"
    path.write_text(
        f"""
[backtest]
catalog = "{tmp_path / "catalog"}"
sources = ["{shared_data / "ohlcv_2021-11_xrp"}"]
symbols = ["XRPUSDT"]
bar = "5m"
start = "2021-11-16"
end = "2021-11-18"
report_dir = "{tmp_path / "reports"}"

[venue]
starting_balance = 10000

[strategy]
path = "benchmarks.ema_cross:EMACrossNotional"
config_path = "benchmarks.ema_cross:EMACrossNotionalConfig"
per_instrument = true
"""
    )
    code, _, err = run(["backtest", str(path)], capsys)
    assert code == 0, err
    assert "catalog" in err and "ingesting 4 files" in err
    code, _, err = run(["backtest", str(path), "--timerange", "20220101-20220102"], capsys)
    assert code == 2
    assert "ingesting" not in err  # the sources hold nothing the catalog lacks: no second read of the files
    assert "XRPUSDT: 5-MINUTE-LAST bars 2021-11-15 00:05 -> 2021-11-21 22:35 (1,999)" in err


def test_the_ats_script_ends_the_process_once_the_output_is_flushed() -> None:
    """``end_process`` (run by the installed ``ats`` script after ``ats backtest``): buffered stdout and stderr
    reach the pipe and the exit code is the command's, though the interpreter is not torn down."""
    import os
    import subprocess
    import sys

    code = "import sys; from nodes.cli import end_process; print('report saved'); print('warn', file=sys.stderr); "
    code += "end_process(3); print('never')"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout a buffered pipe
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (3, "report saved\n", "warn\n")
