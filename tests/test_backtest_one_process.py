"""``ats backtest --one-process``: every report file written by the process itself, even with an idle core, so a
benchmark's cpu time is the run's own whatever the machine's load (a forked writer's copied pages are cpu too)."""

from pathlib import Path

import pytest

import nodes.backtest.report_files as report_files
from benchmarks.bench_process import SECOND_PROCESS_STEP
from tests.test_backtest_cli import catalog, config, run  # noqa: F401 (catalog: the module's fixture)


def test_one_process_writes_the_tables_itself_even_with_an_idle_core(
    tmp_path: Path,
    catalog: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(report_files, "core_to_spare", lambda: True)  # as on a quiet machine, whatever the load now
    argv = ["backtest", str(config(tmp_path, catalog)), "--timerange", "20240910-20240911", "--symbols", "FILUSDT"]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert SECOND_PROCESS_STEP in err  # an idle core: the tables go to a second process
    code, _, err = run([*argv, "--one-process"], capsys)
    assert code == 0, err
    assert SECOND_PROCESS_STEP not in err
    assert "positions.csv" in err and "account.parquet" in err
    first, second = sorted((tmp_path / "reports").iterdir())
    for name in ("trades.csv", "positions.csv"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert (second / "fills.parquet").is_file() and (second / "account.parquet").is_file()
