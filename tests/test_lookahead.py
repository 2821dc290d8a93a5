"""Lookahead and recursive checks on real data: clean on our pipelines, and able to catch a leak."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from factors.config import FactorConfig
from nodes.cli import main
from nodes.research.lookahead import (
    AGREEMENT,
    BOOK,
    REFERENCE,
    LookaheadReport,
    check_reference,
    reference_compute,
    run_lookahead,
)
from nodes.research.lookahead_backtest import check_backtest_cuts
from nodes.research.lookahead_recursive import run_recursive
from nodes.settings import load_backtest_settings

MINUTE = 60_000_000_000
START = pd.Timestamp("2025-05-10 00:00", tz="UTC")
END = pd.Timestamp("2025-05-10 16:00", tz="UTC")


def test_factors_score_and_signal_have_no_lookahead(research_catalog: Path) -> None:
    report = run_lookahead(
        str(research_catalog), ["SOLUSDT", "BTCUSDT", "ETHUSDT"], "1-MINUTE", START, END, FactorConfig(), 4
    )
    assert report.ok, [d.describe() for d in report.differences]
    assert len(report.cuts) == 4
    for check in (REFERENCE, BOOK, AGREEMENT):
        assert report.compared[check] > 10_000, check
    # every bar factor and B (SOL's real funding) were compared, in both pipelines, and the score
    for check in (REFERENCE, BOOK):
        assert {"T", "M", "S", "V", "F", "B", "score", "signal"} <= {c for k, c in report.max_abs if k == check}
    assert report.max_abs[(AGREEMENT, "B")] <= 1e-9 and report.max_abs[(AGREEMENT, "score")] <= 1e-9


def test_a_leaking_factor_is_caught_and_named(research_catalog: Path) -> None:
    config = FactorConfig()
    honest = reference_compute(config, MINUTE)

    def leaky(bars: pd.DataFrame, funding: pd.DataFrame | None, marks: pd.DataFrame | None) -> pd.DataFrame:
        frame = honest(bars, funding, marks)
        frame["V"] = frame["V"].shift(-1)  # the next bar's volume factor: uses the future
        return frame

    catalog = ParquetDataCatalog(str(research_catalog))
    cut = int(pd.Timestamp("2025-05-10 08:00", tz="UTC").value)
    report = LookaheadReport(cuts=[cut])
    check_reference(report, catalog, "SOLUSDT", "1-MINUTE", START, END, config, [cut], leaky)
    assert not report.ok
    leak = report.differences[0]
    assert (leak.column, leak.symbol, leak.cut_ts) == ("V", "SOLUSDT", cut)
    assert leak.bar_ts == cut and np.isnan(leak.cut)  # the last bar before the cut had no next bar to peek at
    assert "SOLUSDT V at bar 2025-05-10 08:00" in leak.describe()
    # the other factors stayed clean; the score, built on V, inherits the leak at that bar
    assert {d.column for d in report.differences} <= {"V", "score", "strength", "signal"}


def _backtest_config(tmp_path: Path, catalog: Path) -> Path:
    path = tmp_path / "bt.toml"
    path.write_text(
        f"""
[backtest]
catalog = "{catalog}"
symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]
bar = "1-MINUTE"
start = "2025-05-09T13:00"
end = "2025-05-11T12:00"

[venue]
starting_balance = 10000

[strategy]
path = "strategies.ats:AtsStrategy"
config_path = "strategies.config:AtsStrategyConfig"

[strategy.config]
min_score = 25.0

[strategy.config.scan]
interval_minutes = 15
"""
    )
    return path


def test_backtest_cut_at_t_makes_the_same_orders_before_t(research_catalog: Path, tmp_path: Path) -> None:
    settings = load_backtest_settings(_backtest_config(tmp_path, research_catalog))
    cut = pd.Timestamp("2025-05-10 15:07", tz="UTC")
    report = check_backtest_cuts(settings, [cut])
    assert report.ok, report.differences
    ((_, entries, others),) = report.compared
    assert entries >= 3 and others >= 3  # real decisions were compared: entries and their exits


def test_recursive_check_measures_the_memory_of_each_factor(research_catalog: Path) -> None:
    start = pd.Timestamp("2023-02-02 12:00", tz="UTC")  # LINK Vision klines: C is live
    table = run_recursive(
        str(research_catalog), ["LINKUSDT"], "1-MINUTE", start, start + pd.Timedelta(hours=8), FactorConfig(),
        (50, 400, 1200),
    )  # fmt: skip
    worst = table.set_index(["column", "history"])["max_abs"]
    assert worst[("T", 50)] > 1.0 and worst[("T", 400)] < 0.01  # EMAs forget slowly, but they forget
    assert worst[("V", 50)] < 1e-9 and worst[("C", 50)] < 1e-9  # pure windows forget exactly
    assert set(table["history_had"]) == {50, 400}


def test_check_commands(research_catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = str(_backtest_config(tmp_path, research_catalog))
    period = ["--start", "2025-05-10T00:00", "--end", "2025-05-10T06:00", "--symbols", "SOLUSDT", "BTCUSDT"]
    assert main(["check", "lookahead", config, *period, "--cuts", "2", "--backtest-cuts", "0", "--no-book"]) == 0
    assert "no lookahead" in capsys.readouterr().out
    assert main(["check", "recursive", config, *period, "--history", "50,300"]) == 0
    assert "history for < 0.01" in capsys.readouterr().out
    assert main(["check", "recursive", config, "--history", "lots"]) == 2
    assert "--history" in capsys.readouterr().err
