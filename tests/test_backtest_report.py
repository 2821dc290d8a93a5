"""The report says what the run had and lacked, reconciles to the cent with the account, and the tearsheet shows
the same numbers. The multi-factor strategy on real 1m OHLCV, funding and mark prices (3 symbols, 3 days)."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from nodes.backtest.report import build_report, equity_curve, unrealised_at_end
from nodes.backtest.report_files import save_report, trade_statistics
from nodes.backtest.runner import BacktestOutcome, run_backtest
from nodes.settings import load_backtest_settings

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture(scope="module")
def outcome(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> BacktestOutcome:
    tmp = tmp_path_factory.mktemp("report")
    config = tmp / "backtest.toml"
    config.write_text(f"""
[backtest]
catalog = "{tmp / "catalog"}"
sources = ["{shared_data / "ohlcv_2025-03_2025-06"}"]
symbols = ["BTCUSDT", "ETHUSDT", "LAYERUSDT"]
start = "2025-05-10"
end = "2025-05-13"
report_dir = "{tmp / "reports"}"

[venue]
starting_balance = 10000

[strategy]
path = "strategies.ats:AtsStrategy"
config_path = "strategies.config:AtsStrategyConfig"

[strategy.config]
min_score = 60.0
""")
    return run_backtest(load_backtest_settings(config))


def test_trades_funding_and_balance_reconcile_to_the_cent(outcome: BacktestOutcome) -> None:
    report = build_report(outcome)
    assert report.summary.trades > 0 and outcome.funding is not None and outcome.funding.settlements > 0
    final_equity = float(outcome.account["total"].astype(float).iloc[-1]) + unrealised_at_end(outcome)
    total = sum(t["realized_pnl"] for t in report.trades)
    assert total == pytest.approx(final_equity - 10_000, abs=0.005)
    assert report.summary.total_pnl == pytest.approx(total)
    funding = sum(t["funding"] for t in report.trades)
    assert funding == pytest.approx(-sum(outcome.funding.totals.values()), abs=1e-9)
    assert f"total PnL              {total:+,.2f} USDT" in report.text


def test_the_tearsheet_counts_the_first_day_and_shows_the_reports_numbers(
    outcome: BacktestOutcome, tmp_path: Path
) -> None:
    report = build_report(outcome)
    first_day = pd.Timestamp("2025-05-10", tz="UTC")
    # Nautilus's analyzer starts its daily returns at the end of the first day: that day's result is lost
    assert outcome.engine.portfolio.analyzer.portfolio_returns().index[0] > first_day
    assert report.returns.index[0] == first_day
    compounded = float((1 + report.returns).prod() - 1) * 100
    assert compounded == pytest.approx(report.summary.total_return_pct, abs=1e-9)
    equity = equity_curve(outcome)
    assert equity.iloc[0] == 10_000 and equity.iloc[-1] == pytest.approx(10_000 + report.summary.total_pnl, abs=0.005)
    folder = save_report(outcome, report)
    html = (folder / "tearsheet.html").read_text()
    pnl = trade_statistics(report.trades, 10_000)["PnL (total)"]
    assert pnl == round(report.summary.total_pnl, 2) and str(pnl) in html
    assert f"{outcome.engine.kernel.cache.orders_total_count():_}" in html  # "Total orders": the cache's count


def test_the_runs_objects_stay_out_of_collections_while_the_report_is_written(
    outcome: BacktestOutcome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the writer's start to its end the run's objects are frozen (``gc.freeze``: a full collection would
    visit all of them) and the collector is off (no collection at all), in one process as with a second one; thawed
    and on again after, also when a step fails."""
    import gc

    import nodes.backtest.report_files as report_files

    report = build_report(outcome)
    gc.unfreeze()
    assert gc.isenabled()
    seen: list[tuple[int, bool, int]] = []
    steps = report_files.report_steps

    def collections() -> int:
        return sum(generation["collections"] for generation in gc.get_stats())

    def watched(*args: object, **kwargs: object) -> list:
        return [
            (name, lambda write=write: (seen.append((gc.get_freeze_count(), gc.isenabled(), collections())), write()))
            for name, write in steps(*args, **kwargs)
        ]

    monkeypatch.setattr(report_files, "report_steps", watched)
    save_report(outcome, report)
    assert seen and min(count for count, _, _ in seen) > 10_000 and gc.get_freeze_count() == 0
    assert not any(enabled for _, enabled, _ in seen) and gc.isenabled()
    assert seen[0][2] == seen[-1][2]  # the steps before the last allocated plenty: not one collection

    def failing(*args: object, **kwargs: object) -> list:
        return [("report.txt", lambda: 1 / 0)]

    monkeypatch.setattr(report_files, "report_steps", failing)
    with pytest.raises(ZeroDivisionError):
        save_report(outcome, report)
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_report_and_summary_json_say_what_the_run_had_and_lacked(outcome: BacktestOutcome) -> None:
    report = build_report(outcome)
    assert "bars replayed         12,963 (per symbol below)" in report.text  # 3 x (3 days + 1) bars
    assert "funding               settled " in report.text
    assert re.search(r"Q\s+100% of the run: no liquidation stream", report.text)
    assert re.search(r"C\s+100% of the run: bars carry no taker-buy volume", report.text)
    folder = save_report(outcome, report)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["run"]["bars_replayed"] == 3 * (3 * 1440 + 1)
    assert summary["data"]["LAYERUSDT"]["bars"] == 3 * 1440 + 1
    assert summary["data"]["LAYERUSDT"]["taker_buy_volume"] is False
    assert summary["data"]["LAYERUSDT"]["funding_rates"] > summary["data"]["BTCUSDT"]["funding_rates"]  # 1h vs 8h
    assert summary["funding"]["settled"] is True and isinstance(summary["funding"]["total"], float)
    assert summary["factors_unavailable"]["Q"]["share"] == 1.0
    for key in ("trades", "win_rate", "total_pnl", "max_drawdown_pct", "sharpe"):
        assert isinstance(summary["summary"][key], int | float), key
    assert ISO.match(summary["run"]["start"]) and ISO.match(summary["data"]["BTCUSDT"]["first_bar"])
    assert all(ISO.match(day) for day in summary["daily_returns"])
    trades = pd.read_csv(folder / "trades.csv")
    assert trades.entry_time.map(lambda t: bool(ISO.match(t))).all()
    assert trades.exit_time.map(lambda t: bool(ISO.match(t))).all()


def test_counters_are_named_for_what_they_count(outcome: BacktestOutcome) -> None:
    text = build_report(outcome).text
    assert "closed by a stop" in text and "dynamic stop moves/exits" in text and "signals refused" in text
    assert "Counters count events, the exit table counts trades" in text


def test_large_tables_are_parquet_and_csv_tables_adds_nautilus_csvs(outcome: BacktestOutcome) -> None:
    """By default fills, orders and account are Parquet only; ``csv_tables`` also writes the CSVs of Nautilus's
    frames, byte for byte what pandas writes for them, and the report's other files do not change."""
    import dataclasses

    from nautilus_trader.model.identifiers import Venue

    report = build_report(outcome)
    plain = save_report(outcome, report)
    names = {p.name for p in plain.iterdir()}
    assert {"fills.parquet", "orders.parquet", "account.parquet", "trades.csv", "positions.csv"} <= names
    assert not names & {"fills.csv", "orders.csv", "account.csv"}
    assert len(pd.read_parquet(plain / "fills.parquet")) == outcome.orders_filled > 0
    with_csv = dataclasses.replace(outcome, settings=dataclasses.replace(outcome.settings, csv_tables=True))
    both = save_report(with_csv, report)
    assert {p.name for p in both.iterdir()} == names | {"fills.csv", "orders.csv", "account.csv"}
    trader = outcome.engine.trader
    for name, frame in (
        ("fills.csv", trader.generate_order_fills_report()),
        ("orders.csv", trader.generate_orders_report()),
        ("account.csv", trader.generate_account_report(Venue("BINANCE"))),
    ):
        frame.to_csv(both / f"nautilus-{name}")
        assert (both / name).read_bytes() == (both / f"nautilus-{name}").read_bytes(), name
        table = pd.read_parquet(both / name.replace(".csv", ".parquet"))  # stops, limits and markets: same columns
        assert list(table.columns)[1:] == list(frame.columns) and len(table) == len(frame), name
    for name in ("trades.csv", "positions.csv", "report.txt", "fills.parquet", "account.parquet"):
        assert (both / name).read_bytes() == (plain / name).read_bytes(), name


def test_a_second_process_writes_the_same_tables_and_a_failed_one_loses_nothing(
    outcome: BacktestOutcome, capfd: pytest.CaptureFixture[str]
) -> None:
    """``ats backtest`` has a forked child write the raw tables while it builds the report (then both take the
    tables left): every file is byte for byte the one-process report's (the tearsheet's random chart id aside). A
    child that fails (an error, killed, or hung: stopped after a time without word) is reported, and the parent
    writes what it did not."""
    import dataclasses
    import os
    import signal
    import time

    from nodes.backtest.report_files import ReportWriter, SharedSteps

    with_csv = dataclasses.replace(outcome, settings=dataclasses.replace(outcome.settings, csv_tables=True))
    report = build_report(with_csv)
    here = save_report(with_csv, report)
    writer = ReportWriter(with_csv, second_process=True)
    assert writer.shared is not None and writer.shared.pid != os.getpid()
    there = writer.finish(report)
    assert writer.child_failure is None and writer.shared.done == set(range(len(writer.tables)))
    names = sorted(p.name for p in here.iterdir())
    assert names == sorted(p.name for p in there.iterdir()) and "account.parquet" in names
    names.remove("tearsheet.html")  # plotly names its chart with a random id
    for name in names:
        assert (there / name).read_bytes() == (here / name).read_bytes(), name

    parent = os.getpid()

    def fail_in_child() -> None:
        if os.getpid() != parent:
            raise OSError("disk full (in the child only)")

    def killed_in_child() -> None:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    def hung_in_child() -> None:
        if os.getpid() != parent:
            time.sleep(3600)

    for failing, why in (
        (fail_in_child, "OSError: disk full (in the child only)"),
        (killed_in_child, "signal 9"),
        (hung_in_child, "no word from it for 2 s: stopped"),
    ):
        writer = ReportWriter(with_csv)
        writer.tables = [("first", failing), *writer.tables]
        writer.shared = SharedSteps.start(writer.tables)
        writer.shared.stall_s = 2.0
        folder = writer.finish(report)
        assert writer.child_failure is not None and why in writer.child_failure
        assert "the second process writing the report's tables failed" in capfd.readouterr().err
        for name in names:
            assert (folder / name).read_bytes() == (here / name).read_bytes(), name


def test_funding_is_booked_to_the_first_trade_whose_span_holds_it() -> None:
    """``with_venue_funding`` books each payment to the first trade (by entry) open at its time; payments in time
    order are found by bisection, out of order by a pass over them all: both as one pass over every payment per
    trade books them (the reference below), to the last bit."""
    import random

    from nodes.backtest.report import with_venue_funding

    def reference(trades: list[dict], payments: list[tuple[str, int, float]]) -> list[dict]:
        queues: dict[str, list[tuple[int, float]]] = {}
        for instrument, ts, paid in payments:
            queues.setdefault(instrument, []).append((ts, paid))
        out = []
        for trade in sorted(trades, key=lambda t: (t["instrument"], t["entry_time_ns"])):
            booked, kept = 0.0, []
            for ts, paid in queues.get(trade["instrument"], []):
                if trade["entry_time_ns"] <= ts <= trade["exit_time_ns"]:
                    booked -= paid
                else:
                    kept.append((ts, paid))
            queues[trade["instrument"]] = kept
            out.append({**trade, "realized_pnl": trade["realized_pnl"] - trade["funding"] + booked, "funding": booked})
        return sorted(out, key=lambda t: (t["exit_time_ns"], t["instrument"]))

    rng = random.Random(5)
    for shuffled in (False, True):
        trades = []
        for instrument in ("A", "B"):
            t = 0
            for _ in range(300):
                entry = t + rng.randint(0, 5)
                t = entry + rng.randint(0, 20)  # touching and (below) overlapping spans too
                trades.append(
                    {
                        "instrument": instrument,
                        "entry_time_ns": entry - rng.choice((0, 0, 3)),
                        "exit_time_ns": t,
                        "realized_pnl": rng.uniform(-5, 5),
                        "funding": rng.uniform(-1, 1),
                    }
                )
        payments = sorted(
            ((rng.choice("AB"), rng.randint(0, 4000), rng.uniform(-1, 1)) for _ in range(500)), key=lambda p: p[1]
        )
        if shuffled:
            rng.shuffle(payments)
        assert with_venue_funding(trades, payments) == reference(trades, payments)
    # No payment at all (no funding rates replayed): the strategies' estimates taken out, the same order, ties in
    # exit time and instrument included (then by entry), and -0.0 booked as 0.0 as the passes do.
    trades[0] |= {"realized_pnl": -0.0, "funding": 0.0}
    trades[1] |= {"exit_time_ns": trades[2]["exit_time_ns"], "instrument": trades[2]["instrument"]}
    for payments in ([], [("C", 10, 1.0)]):  # the second: payments of an instrument nobody traded
        got, expected = with_venue_funding(trades, payments), reference(trades, payments)
        assert got == expected and [str(t["realized_pnl"]) for t in got] == [str(t["realized_pnl"]) for t in expected]
        assert [list(t) for t in got] == [list(t) for t in expected]


def test_the_account_table_is_left_for_the_first_process(outcome: BacktestOutcome, tmp_path: Path) -> None:
    """The second process takes the table steps from the first, this process (its own files written) from the last:
    the account last, so this process writes it (it has read the states for the equity curve already) while the
    child writes the positions and the orders, which cost it about as much."""
    import dataclasses

    from nodes.backtest.report_files import table_steps

    assert [name for name, _ in table_steps(outcome, tmp_path)] == [
        "positions.csv",
        "fills.parquet, orders.parquet",
        "account.parquet",
    ]
    with_csv = dataclasses.replace(outcome, settings=dataclasses.replace(outcome.settings, csv_tables=True))
    assert [name for name, _ in table_steps(with_csv, tmp_path)][-1] == "account.parquet"


def test_positions_csv_does_not_keep_the_positions_frame(outcome: BacktestOutcome, tmp_path: Path) -> None:
    """positions.csv is written from a frame made for it and dropped after (the outcome does not keep it for the
    later steps, where the process peaks), the same bytes as from ``outcome.positions``; a frame the outcome
    already holds is used as it is."""
    import dataclasses

    from nodes.backtest.frames import write_csv

    fresh = dataclasses.replace(outcome)
    assert "positions" not in fresh.__dict__
    folder = save_report(fresh, build_report(fresh))
    assert "positions" not in fresh.__dict__
    write_csv(outcome.positions, tmp_path / "positions.csv")
    assert (folder / "positions.csv").read_bytes() == (tmp_path / "positions.csv").read_bytes()
    from nodes.backtest.report_files import positions_report

    assert positions_report(fresh) is not positions_report(fresh)  # made for each file, not kept
    held = fresh.positions
    assert positions_report(fresh) is held  # once the outcome holds one, that one


def test_a_writer_given_up_before_its_end_waits_for_its_child(outcome: BacktestOutcome) -> None:
    """When the report fails after the second process started (``ats backtest``'s ``build_report``), the writer is
    given up: the child is waited for (no file is written once the command has returned), the run's objects thawed
    and the collector on again."""
    import gc

    from nodes.backtest.report_files import ReportWriter

    writer = ReportWriter(outcome, second_process=True)
    assert writer.shared is not None and writer.shared.running() and not gc.isenabled()
    writer.discard()
    assert not writer.shared.running() and writer.child_failure is None
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert {"positions.csv", "orders.parquet", "account.parquet"} <= {p.name for p in writer.folder.iterdir()}


def test_a_second_process_only_when_a_core_is_idle() -> None:
    from nodes.backtest.report_files import core_to_spare

    assert core_to_spare(load=1.0, cores=2)  # this process alone on two cores
    assert core_to_spare(load=1.5, cores=2)
    assert not core_to_spare(load=2.3, cores=2)  # another engineer's job on the other core
    assert not core_to_spare(load=0.2, cores=1)
    assert core_to_spare(load=6.0, cores=8)


def test_a_table_step_hands_the_memory_arrow_freed_back_to_the_system() -> None:
    """Arrow's allocator keeps the pages of freed arrays for reuse: a step that built and dropped 90 MB of Arrow
    strings left the process that much larger. Each table step hands them back (``returning_memory``)."""
    import numpy as np
    import pyarrow as pa

    from nodes.backtest.report_files import returning_memory

    def resident_mb() -> float:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))

    def build_and_drop() -> None:
        parts = [pa.array(np.arange(i, i + 12_000)).cast(pa.string()) for i in range(0, 3_000_000, 12_000)]
        whole = pa.concat_arrays(parts)
        del parts, whole

    pa.default_memory_pool().release_unused()  # no pages kept from earlier tests to reuse
    before = resident_mb()
    returning_memory(build_and_drop)()
    assert resident_mb() - before < 30


def test_every_kind_of_order_and_the_positions_equal_nautilus_reports(
    outcome: BacktestOutcome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The strategy's market, stop and take-profit orders, read a column at a time per kind of order, give
    Nautilus's orders and fills reports cell for cell, and the positions its positions report. A key no getter
    knows (a field a later Nautilus adds) sends that kind of object through ``to_dict()``: the same tables."""
    from nodes.backtest import frames
    from tests.test_backtest_speed import _parquet_matches

    orders = outcome.record.orders
    assert {"MarketOrder", "StopMarketOrder", "LimitOrder"} <= {type(o).__name__ for o in orders}
    trader = outcome.engine.trader
    every, fills = frames.order_tables(orders)
    frames.write_parquet(every, tmp_path / "orders.parquet")
    frames.write_parquet(fills, tmp_path / "fills.parquet")
    _parquet_matches(tmp_path / "orders.parquet", trader.generate_orders_report(), "client_order_id")
    _parquet_matches(tmp_path / "fills.parquet", trader.generate_order_fills_report(), "client_order_id")
    positions = frames.positions_frame(outcome.record.positions)
    pd.testing.assert_frame_equal(positions, trader.generate_positions_report(), check_exact=True)

    monkeypatch.delitem(frames.ORDER_GETTERS, "trigger_price")  # stops only: the other kinds keep their getters
    monkeypatch.delitem(frames.POSITION_GETTERS, "realized_pnl")
    assert frames.getter_columns(orders, frames.ORDER_GETTERS, list(orders[0].to_dict())) is not None
    by_dicts = frames.order_tables(orders)
    assert by_dicts[0].equals(every) and by_dicts[1].equals(fills)
    pd.testing.assert_frame_equal(frames.positions_frame(outcome.record.positions), positions, check_exact=True)


def test_trades_csv_is_written_as_pandas_writes_the_trades_frame(
    outcome: BacktestOutcome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trades.csv is made from the trades without a frame, byte for byte what pandas writes for ``trades_frame``:
    the strategy's ledger (funding booked), and trades whose keys or values a frame would type otherwise
    (differing keys, text and None, a time as a float), which still go through the frame; ints among floats."""
    from nodes.backtest import report_files
    from nodes.backtest.frames import value_cells

    ledger = build_report(outcome).trades
    assert ledger and {"entry_time_ns", "exit_time_ns"} <= set(ledger[0])
    base = {"instrument": "BTCUSDT-PERP.BINANCE", "entry_time_ns": 1_746_835_200_123_456_789, "realized_pnl": 1.5}
    kinds = {
        "ledger": ledger,
        "quoted text, NaN, bools": [
            {**base, "exit_reason": 'a, "b"', "duration_s": float("nan"), "flag": True},
            {**base, "exit_reason": "c\nd", "duration_s": 60.0, "flag": False},
        ],
        "differing keys": [base, {**base, "extra": 1}],
        "text and None": [base, {**base, "instrument": None}],
        "an int among floats": [base, {**base, "realized_pnl": 2}],
        "a time as a float": [base, {**base, "entry_time_ns": 1.7e18}],
        "no trades": [],
    }
    for name, trades in kinds.items():
        report_files.trades_frame(trades).to_csv(tmp_path / f"{name}.pandas.csv", index=False)
        report_files.write_trades_csv(trades, tmp_path / f"{name}.csv")
        assert (tmp_path / f"{name}.csv").read_bytes() == (tmp_path / f"{name}.pandas.csv").read_bytes(), name
    assert value_cells(["x", None]) is None and value_cells([None, None]) is None  # left to the frame

    def no_frame(trades: list) -> pd.DataFrame:
        raise AssertionError("the ledger's trades.csv went through a frame")

    monkeypatch.setattr(report_files, "trades_frame", no_frame)
    for name in ("ledger", "quoted text, NaN, bools"):
        report_files.write_trades_csv(kinds[name], tmp_path / "direct.csv")
        assert (tmp_path / "direct.csv").read_bytes() == (tmp_path / f"{name}.pandas.csv").read_bytes(), name
