"""``ats plot`` on a real backtest report: every trade's entry, exits and exit levels, and the factor panes."""

from pathlib import Path

import pandas as pd
import pytest

from nodes.backtest.report import build_report
from nodes.backtest.report_files import save_report
from nodes.backtest.runner import run_backtest
from nodes.cli import main
from nodes.research.plot_trades import load_run, symbol_figure, trade_levels
from nodes.settings import load_backtest_settings

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT"]  # ADA's catalogued bars start after the period


@pytest.fixture(scope="module")
def report_dir(research_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plot")
    config = folder / "bt.toml"
    config.write_text(
        f"""
[backtest]
catalog = "{research_catalog}"
symbols = {SYMBOLS!r}
bar = "1-MINUTE"
start = "2025-05-09T13:00"
end = "2025-05-11T12:00"
report_dir = "{folder / "reports"}"

[venue]
starting_balance = 10000

[strategy]
path = "strategies.ats:AtsStrategy"
config_path = "strategies.config:AtsStrategyConfig"

[strategy.config]
min_score = 25.0

[strategy.config.scan]
interval_minutes = 15

[strategy.config.exits]
stop_pct = 0.006
tp1_pct = 0.004
tp2_pct = 0.012
"""
    )
    outcome = run_backtest(load_backtest_settings(config))
    return save_report(outcome, build_report(outcome))


def test_report_saves_every_order_and_the_run_inputs(report_dir: Path) -> None:
    orders = pd.read_parquet(report_dir / "orders.parquet")
    assert {"ATS:SL", "ATS:TP1", "ATS:ENTRY"} <= {tag for tags in orders["tags"] for tag in tags}
    assert (orders["status"] == "CANCELED").any()  # the replaced / cancelled stops and targets are kept
    run = load_run(report_dir)
    assert run.every_order and run.symbols == SYMBOLS and run.bar_spec == "1-MINUTE" and run.min_score == 25.0


def test_levels_and_exits_follow_each_trade(report_dir: Path) -> None:
    run = load_run(report_dir)
    trades = run.trades
    assert len(trades) >= 5 and trades["tp1_hit"].any()  # tight targets: some trades reach TP1
    for instrument, mine in trades.groupby("instrument"):
        levels, exits = trade_levels(run, instrument)
        for k, trade in enumerate(mine.itertuples()):
            own = levels[levels["trade"] == k]
            first_stop = own[own["role"] == "stop"].iloc[0]
            assert first_stop["start_ns"] == trade.entry_time_ns  # armed at the entry fill
            assert (first_stop["price"] - trade.entry_price) * (1 if trade.direction == "LONG" else -1) < 0
            assert len(own[own["role"] == "TP1"]) == 1
            # the break-even stop is drawn from the TP1 fill on, for the half that stays open
            has_tp2 = (own["role"] == "TP2").any()
            assert (own["role"] == "break-even stop").any() == (trade.tp1_hit and has_tp2)
            labels = set(exits[exits["trade"] == k]["label"])
            expected = {
                "STOP": {"STOP", "STOP (at market)"},
                "TP1+BREAKEVEN": {"BREAK-EVEN STOP", "BREAK-EVEN STOP (at market)"},
                "TP1+TP2": {"TP2", "TP1"},
                "DYNAMIC": {"DYNAMIC EXIT", "DYNAMIC STOP"},
                "END_OF_DATA": {"END_OF_DATA (still open)"},
            }[trade.exit_reason]
            assert labels & expected, (instrument, k, trade.exit_reason, labels)
            if trade.tp1_hit:
                assert "TP1" in labels


def test_plot_command_writes_one_page_per_symbol(report_dir: Path, capsys: pytest.CaptureFixture) -> None:
    out = report_dir / "pages"
    assert main(["plot", str(report_dir), "--symbols", "SOLUSDT", "BTCUSDT", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"SOLUSDT.html", "BTCUSDT.html", "index.html", "plotly.min.js"}
    assert "2 pages" in capsys.readouterr().out
    html = (out / "SOLUSDT.html").read_text()
    for name in ("factor T", "factor B", "signal (+-strength)", "LONG entry", "exits", "stop"):
        assert f'"name":"{name}"' in html or f'"name": "{name}"' in html, name
    assert main(["plot", str(report_dir), "--symbols", "DOGEUSDT"]) == 2
    assert "were not in this run" in capsys.readouterr().err
    assert main(["plot", str(report_dir.parent)]) == 2


def test_symbol_figure_has_candles_levels_and_panes(report_dir: Path) -> None:
    run = load_run(report_dir)
    symbol = run.trades["instrument"].iloc[0].split("-")[0]
    frame = pd.DataFrame({"ts": run.trades["entry_time_ns"].head(3), "open": 1.0, "high": 2.0, "low": 0.5,
                          "close": 1.5, "score": 10.0, "signal": 0.0, "T": 5.0})  # fmt: skip
    fig = symbol_figure(run, symbol, frame)
    names = [t.name for t in fig.data]
    assert names[0] == "bars" and "stop" in names and "TP1" in names and "factor T" in names
