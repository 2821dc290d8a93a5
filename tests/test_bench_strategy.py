"""The default-strategy benchmark's ratio: alternated process pairs, their median, every pair printed."""

import sys
from pathlib import Path

from benchmarks.bench_strategy import alternated_pairs, ratio_summary


def test_pairs_alternate_which_command_runs_first(tmp_path: Path) -> None:
    log = tmp_path / "order.txt"

    def command(name: str) -> list[str]:
        return [sys.executable, "-c", f"open({str(log)!r}, 'a').write({name!r})"]

    pairs = alternated_pairs(command("A"), command("B"), 4)
    assert log.read_text() == "ABBAABBA"
    assert len(pairs) == 4 and all(len(a) == 3 and len(b) == 3 and a[0] > 0 and b[0] > 0 for a, b in pairs)


def test_ratio_is_the_median_of_the_pairs_and_the_note_lists_them() -> None:
    pairs = [((6.0, 7.0, 1.0), (4.0, 5.0, 1.0)), ((9.0, 9.0, 1.0), (4.5, 5.0, 1.0)), ((5.0, 6.0, 1.0), (4.0, 4.0, 1))]
    ratio, note = ratio_summary(pairs)
    assert ratio == 1.5  # the ratios are 1.5, 2.0 and 1.25: one slow run does not move the median
    assert "1.50, 2.00, 1.25" in note and "spread 0.75" in note
    assert "best cpu over best cpu 1.25" in note  # 5.0 / 4.0
    assert ratio_summary(pairs[:1]) == (1.5, "one pair, cpu s")


def test_both_runs_write_their_report_in_one_process(tmp_path: Path) -> None:
    """A forked table writer (only when the load leaves a core idle) adds its cpu to a run's: the ratio would move
    with the machine's load. The benchmark runs both commands with ``--one-process``."""
    from benchmarks.bench_strategy import backtest_command

    command = backtest_command(tmp_path / "default.toml", ["--bar", "1m"])
    assert command[1:] == ["backtest", str(tmp_path / "default.toml"), "--one-process", "--bar", "1m"]
