"""The fast backtest path (nodes/backtest/speed.py) gives exactly the plain Nautilus run's results.

Real data: the EMA(10/20) cross on 1m bars, funding rates and mark prices of ohlcv_2025-03_2025-06, a two-day
window so the plain (quadratic) run stays quick; 1, 2 and 4 symbols. The full-month runs are in
benchmarks/bench_backtest.py.
"""

import dataclasses
import gc
import json
import math
import os
import platform
import weakref
from decimal import Decimal
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
import pytest
from nautilus_trader.analysis import AvgWinner, Expectancy, LongRatio, SharpeRatio, SortinoRatio, WinRate
from nautilus_trader.analysis.analyzer import PortfolioAnalyzer
from nautilus_trader.model.data import Bar
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.portfolio.config import PortfolioConfig

from benchmarks.ema_cross import EMACrossNotional
from catalog.ingest import ingest
from nodes.backtest.runner import BacktestOutcome, _run, build_run_config, run_backtest
from nodes.backtest.speed import (
    BufferedPortfolioAnalyzer,
    _freeze_after_full_collection,
    linear_run_config,
    netting_guard,
    survivors_frozen,
)
from nodes.settings import PACKAGE_DIR, BacktestSettings, load_backtest_settings

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT")
START, END = pd.Timestamp("2025-05-20", tz="UTC"), pd.Timestamp("2025-05-22", tz="UTC")


@pytest.fixture(scope="session")
def speed_catalog(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = shared_data / "ohlcv_2025-03_2025-06"
    files = [folder / f"{s}-{kind}.csv.gz" for s in SYMBOLS for kind in ("1m", "funding_rate", "mark-8h")]
    catalog = tmp_path_factory.mktemp("speed_catalog")
    ingest(files, catalog)
    return catalog


@pytest.fixture(scope="session")
def outcomes(speed_catalog: Path) -> dict[tuple[int, bool], BacktestOutcome]:
    base = load_backtest_settings(PACKAGE_DIR / "configs" / "ema_cross.toml")
    runs = {}
    for count in (1, 2, 4):
        settings = dataclasses.replace(
            base,
            catalog=speed_catalog,
            sources=(),
            symbols=SYMBOLS[:count],
            start=START,
            end=END,
        )
        for fast in (False, True):
            runs[count, fast] = run_backtest(settings, fast=fast)
    return runs


def _positions(outcome: BacktestOutcome) -> pd.DataFrame:
    # Position ids differ by construction (NETTING reuses one id per instrument and suffixes its snapshots);
    # every other field must match, position by position.
    frame = outcome.positions.reset_index(drop=True).drop(columns=["is_snapshot"])
    return frame.sort_values(["instrument_id", "ts_opened", "ts_closed"]).reset_index(drop=True)


def _fills(outcome: BacktestOutcome) -> pd.DataFrame:
    # init_id is a random UUID per order command; position ids differ as above
    return outcome.fills.drop(columns=["position_id", "init_id"]).sort_index()


def _same_stats(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        for x, y in ((a[k], b[k]) for k in a)
    )


def assert_same_results(plain: BacktestOutcome, fast: BacktestOutcome) -> None:
    """Positions, fills, fees, balances and statistics of the fast run are those of the plain NETTING run."""
    assert plain.positions["is_snapshot"].any()  # NETTING: one position id per instrument, cycles snapshotted
    assert not fast.positions["is_snapshot"].any()
    assert "fast_path_rejected" not in fast.extras
    assert fast.engine.trader.strategies()[0].oms_type.name == "HEDGING"

    pd.testing.assert_frame_equal(_positions(plain), _positions(fast), check_exact=True)
    pd.testing.assert_frame_equal(_fills(plain), _fills(fast), check_exact=True)
    # balances after fees and funding, and margins
    pd.testing.assert_frame_equal(plain.account, fast.account, check_exact=True)

    venue = Venue("BINANCE")
    plain_account = plain.engine.cache.account_for_venue(venue)
    fast_account = fast.engine.cache.account_for_venue(venue)
    assert plain_account.commissions() == fast_account.commissions()
    assert plain_account.balances_total() == fast_account.balances_total()

    assert plain.result.total_positions == fast.result.total_positions == len(fast.positions)
    assert plain.result.total_orders == fast.result.total_orders
    assert _same_stats(plain.result.stats_pnls["USDT"], fast.result.stats_pnls["USDT"])
    assert _same_stats(plain.result.stats_returns, fast.result.stats_returns)


@pytest.mark.parametrize("count", [1, 2, 4])
def test_fast_run_matches_plain_netting_run(outcomes: dict, count: int) -> None:
    plain, fast = outcomes[count, False], outcomes[count, True]
    assert len(plain.positions) > 40 * count  # the EMA cross trades all day: the comparison is not vacuous
    assert_same_results(plain, fast)


def test_buffered_analyzer_builds_the_same_series(outcomes: dict) -> None:
    """Same inputs, in the same order, into Nautilus's analyzer and the buffered one: identical series and stats.

    The four-symbol run closes positions of several instruments on the same bar, so position returns share
    timestamps and exercise the summation order.
    """
    engine = outcomes[4, True].engine
    account = engine.cache.account_for_venue(Venue("BINANCE"))
    positions = engine.cache.positions()
    closed = [p for p in positions if p.is_closed]
    assert len({p.ts_closed for p in closed}) < len(closed)

    original, buffered = PortfolioAnalyzer(), BufferedPortfolioAnalyzer()
    for analyzer in (original, buffered):
        for statistic in (Expectancy(), WinRate(), AvgWinner(), SharpeRatio(), SortinoRatio(), LongRatio()):
            analyzer.register_statistic(statistic)
        for position in closed:
            analyzer.record_trade(position.id, position.realized_pnl, position.ts_last)
        analyzer.calculate_statistics(account, positions)
    currency = account.base_currency

    pd.testing.assert_series_equal(original.realized_pnls(currency), buffered.realized_pnls(currency), check_exact=True)
    pd.testing.assert_series_equal(original.position_returns(), buffered.position_returns(), check_exact=True)
    pd.testing.assert_series_equal(original.returns(), buffered.returns(), check_exact=True)
    assert _same_stats(original.get_performance_stats_pnls(currency), buffered.get_performance_stats_pnls(currency))
    assert _same_stats(original.get_performance_stats_returns(), buffered.get_performance_stats_returns())

    original.reset()
    buffered.reset()
    assert original.realized_pnls(currency) is None and buffered.realized_pnls(currency) is None


class FlippingEMACross(EMACrossNotional):
    """The EMA cross reversing with one order of twice its size: under HEDGING that opens a second position."""

    def on_bar(self, bar: Bar) -> None:
        if not self.slow.initialized:
            return
        want = OrderSide.BUY if self.fast.value >= self.slow.value else OrderSide.SELL
        net = self.portfolio.net_position(self.config.instrument_id)
        if (want == OrderSide.BUY and net > 0) or (want == OrderSide.SELL and net < 0):
            return
        size = self.config.notional_usdt / Decimal(str(bar.close.as_double()))
        quantity = self.instrument.make_qty(size if net == 0 else 2 * size)
        self.submit_order(self.order_factory.market(self.config.instrument_id, want, quantity))


class ReduceOnlyWithoutPositionId(EMACrossNotional):
    """Buys on the 30th bar and sells it back reduce-only on the 60th, without naming the position."""

    bars = 0

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1
        if self.bars not in (30, 60):
            return
        quantity = self.instrument.make_qty(self.config.notional_usdt / Decimal(str(bar.close.as_double())))
        side, reduce_only = (OrderSide.BUY, False) if self.bars == 30 else (OrderSide.SELL, True)
        self.submit_order(self.order_factory.market(self.config.instrument_id, side, quantity, reduce_only=reduce_only))


def _strategy_settings(speed_catalog: Path, strategy: str) -> BacktestSettings:
    base = load_backtest_settings(PACKAGE_DIR / "configs" / "ema_cross.toml")
    return dataclasses.replace(
        base,
        catalog=speed_catalog,
        sources=(),
        symbols=SYMBOLS[:1],
        start=START,
        end=START + pd.Timedelta(hours=12),
        strategy_path=f"{__name__}:{strategy}",
    )


@pytest.mark.parametrize(
    ("strategy", "why"),
    [("FlippingEMACross", "opened a second"), ("ReduceOnlyWithoutPositionId", "refused beside an open position")],
)
def test_a_strategy_on_which_hedging_differs_falls_back_to_the_plain_run(
    speed_catalog: Path, strategy: str, why: str
) -> None:
    settings = _strategy_settings(speed_catalog, strategy)
    plain = run_backtest(settings, fast=False)
    hedging = _run(settings, fast=True)
    guard = netting_guard(hedging.engine)
    assert guard is not None and guard.mismatch is not None and why in guard.mismatch
    # HEDGING really differs here: positions stay open beside new ones, or the reduce-only sell is dropped
    assert not _positions(hedging).equals(_positions(plain))

    messages: list[str] = []
    fallback = run_backtest(settings, messages.append, fast=True)
    assert fallback.extras["fast_path_rejected"] == guard.mismatch
    assert any("running it again plain" in m for m in messages)
    pd.testing.assert_frame_equal(_positions(plain), _positions(fallback), check_exact=True)
    pd.testing.assert_frame_equal(plain.account, fallback.account, check_exact=True)


def test_fast_run_quiets_account_state_logging_only_when_info_is_dropped(speed_catalog: Path) -> None:
    base = load_backtest_settings(PACKAGE_DIR / "configs" / "ema_cross.toml")
    settings = dataclasses.replace(base, catalog=speed_catalog, sources=(), symbols=SYMBOLS[:1], start=START, end=END)

    def interval(log_level: str, log_level_file: str | None = None) -> int | None:
        config = build_run_config(dataclasses.replace(settings, log_level=log_level))
        logging = msgspec.structs.replace(config.engine.logging, log_level_file=log_level_file)
        config = msgspec.structs.replace(config, engine=msgspec.structs.replace(config.engine, logging=logging))
        portfolio = linear_run_config(config).engine.portfolio
        return None if portfolio is None else portfolio.min_account_state_logging_interval_ms

    assert interval("ERROR") is not None and interval("WARNING") is not None
    assert interval("INFO") is None  # the trader asked to see every account state
    assert interval("ERROR", log_level_file="DEBUG") is None  # ... or to have them in the log file
    # an interval the config chose is kept
    config = build_run_config(settings)
    chosen = msgspec.structs.replace(config.engine, portfolio=PortfolioConfig(min_account_state_logging_interval_ms=5))
    kept = linear_run_config(msgspec.structs.replace(config, engine=chosen))
    assert kept.engine.portfolio.min_account_state_logging_interval_ms == 5


def test_fast_run_quiets_strategy_event_logging_only_when_info_is_dropped(speed_catalog: Path) -> None:
    base = load_backtest_settings(PACKAGE_DIR / "configs" / "ema_cross.toml")
    settings = dataclasses.replace(base, catalog=speed_catalog, sources=(), symbols=SYMBOLS[:2], start=START, end=END)

    def flags(log_level: str, log_level_file: str | None = None, **chosen: bool) -> list[tuple]:
        settings_at = dataclasses.replace(
            settings, log_level=log_level, strategy_config={**base.strategy_config, **chosen}
        )
        config = build_run_config(settings_at)
        logging = msgspec.structs.replace(config.engine.logging, log_level_file=log_level_file)
        config = msgspec.structs.replace(config, engine=msgspec.structs.replace(config.engine, logging=logging))
        return [
            (s.config.get("log_events"), s.config.get("log_commands"))
            for s in linear_run_config(config).engine.strategies
        ]

    assert flags("ERROR") == flags("WARNING") == [(False, False)] * 2
    assert flags("INFO") == [(None, None)] * 2  # Nautilus's default (True): the trader asked to see them
    assert flags("ERROR", log_level_file="INFO") == [(None, None)] * 2
    assert flags("ERROR", log_events=True) == [(True, False)] * 2  # a value the config chose is kept

    # the strategies really run with them off, and the run's results are the plain run's
    quiet = run_backtest(settings, fast=True)
    assert all(not s.config.log_events and not s.config.log_commands for s in quiet.engine.trader.strategies())
    plain = run_backtest(settings, fast=False)
    assert all(s.config.log_events for s in plain.engine.trader.strategies())
    pd.testing.assert_frame_equal(_positions(plain), _positions(quiet), check_exact=True)


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_loading_the_engine_hands_the_c_heaps_freed_pages_back(speed_catalog: Path) -> None:
    """Memory freed in the C heap, as reading the catalog leaves it (about 20 MB at 16 symbols x 25 days), is handed
    back to the system once the data is loaded: the replay's objects come from Python's own arenas and would never
    reuse it."""
    import ctypes

    from nodes.backtest.runner import load_engine

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(64 * 1024) for _ in range(3200)]  # 200 MB in the heap (below glibc's mmap threshold)
    for block in blocks:
        ctypes.memset(block, 1, 64 * 1024)
    for block in blocks[:-1]:  # the last one pins the heap's top: nothing is handed back by free() itself
        libc.free(block)
    freed = _rss_mb()
    settings = dataclasses.replace(
        load_backtest_settings(PACKAGE_DIR / "configs" / "ema_cross.toml"),
        catalog=speed_catalog,
        sources=(),
        symbols=SYMBOLS[:1],
        start=START,
        end=START + pd.Timedelta(hours=6),
    )
    loaded = load_engine(settings)
    try:
        assert _rss_mb() < freed - 120
    finally:
        loaded.dispose()
        libc.free(blocks[-1])


def test_survivors_frozen_freezes_after_full_collections_and_thaws_after() -> None:
    gc.unfreeze()  # a live node started earlier in this process freezes its start-up objects for good
    assert gc.get_freeze_count() == 0
    with survivors_frozen():
        kept = [[i] for i in range(10_000)]  # tracked objects that survive
        gc.collect()
        assert gc.get_freeze_count() >= len(kept)
        # cyclic garbage made after the freeze is still collected by the next full collection
        cycle: list = []
        cycle.append(cycle)
        probe = weakref.ref(_Node(cycle))
        gc.collect()
        assert probe() is None
    assert gc.get_freeze_count() == 0
    assert _freeze_after_full_collection not in gc.callbacks


class _Node:
    def __init__(self, payload: list) -> None:
        self.payload = payload
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.mark.parametrize("fast", [False, True])
def test_report_frames_equal_nautilus_reports(outcomes: dict, fast: bool, tmp_path: Path) -> None:
    """The outcome's positions, fills and account frames (nodes/backtest/frames.py) are Nautilus's trader reports,
    the orders frame too, and account.csv is byte for byte what pandas writes for Nautilus's frame."""
    from nautilus_trader.analysis.reporter import ReportProvider

    from nodes.backtest.frames import orders_frame, positions_frame, write_account_csv

    outcome = outcomes[4, fast]
    trader, venue = outcome.engine.trader, Venue("BINANCE")
    assert outcome.positions["is_snapshot"].any() != fast  # NETTING snapshots (plain) go through the same path
    pd.testing.assert_frame_equal(outcome.positions, trader.generate_positions_report(), check_exact=True)
    pd.testing.assert_frame_equal(outcome.fills, trader.generate_order_fills_report(), check_exact=True)
    pd.testing.assert_frame_equal(outcome.account, trader.generate_account_report(venue), check_exact=True)
    closed = outcome.engine.cache.positions_closed()  # no open position: ts_closed converted in one call
    expected = ReportProvider.generate_positions_report(closed)
    pd.testing.assert_frame_equal(positions_frame(closed), expected, check_exact=True)
    orders = orders_frame(outcome.engine.cache.orders())
    pd.testing.assert_frame_equal(orders, trader.generate_orders_report(), check_exact=True)
    trader.generate_account_report(venue).to_csv(tmp_path / "nautilus.csv")
    write_account_csv(outcome.account, tmp_path / "ours.csv")
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "nautilus.csv").read_bytes()


def _cell(column: str, value: object) -> object:
    """A report cell as plain Python, the way the Parquet tables type it: decimal text as a float, times as
    epoch ns, lists as lists, dicts as JSON text, missing as None."""
    from nodes.backtest.frames import DECIMAL_COLUMNS, TIME_COLUMNS

    if isinstance(value, np.ndarray | list):
        return [_cell(column, v) for v in value]
    if isinstance(value, dict):
        return {k: float(v) if k in DECIMAL_COLUMNS else v for k, v in value.items()}
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    if column in TIME_COLUMNS:
        return pd.Timestamp(value, tz="UTC").value if isinstance(value, int | np.integer) else value.value
    if column in DECIMAL_COLUMNS:
        return float(value)
    if column in ("info", "exec_algorithm_params") and isinstance(value, str):
        return _cell(column, json.loads(value))
    return value.item() if isinstance(value, np.generic) else value


def _parquet_matches(path: Path, expected: pd.DataFrame, index: str) -> None:
    """The Parquet table holds the report's rows in its order and its columns, the index first (named ``index``),
    cell for cell."""
    got = pd.read_parquet(path)
    expected = expected.rename_axis(index).reset_index()
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected) > 0
    for column in expected.columns:
        assert [_cell(column, v) for v in got[column]] == [_cell(column, v) for v in expected[column]], column
    for column in DECIMAL_TYPED:
        if column in got:
            assert got[column].dtype == np.float64, column
    for column in ("ts_init", "ts_last", "ts_event"):
        if column in got:
            assert str(got[column].dtype) == "datetime64[ns, UTC]", column


DECIMAL_TYPED = ("quantity", "filled_qty", "avg_px", "total", "locked", "free")


@pytest.mark.parametrize("fast", [False, True])
def test_parquet_tables_equal_nautilus_reports(outcomes: dict, fast: bool, tmp_path: Path) -> None:
    """fills.parquet, orders.parquet and account.parquet (built from Nautilus's objects straight into Arrow) hold
    Nautilus's order fills, orders and account reports, typed."""
    import pyarrow.parquet as pq

    from nodes.backtest.frames import order_tables, write_account_parquet, write_parquet

    outcome = outcomes[4, fast]
    trader = outcome.engine.trader
    orders, fills = order_tables(outcome.record.orders)
    write_parquet(orders, tmp_path / "orders.parquet")
    write_parquet(fills, tmp_path / "fills.parquet")
    write_account_parquet(outcome.record.account_states, tmp_path / "account.parquet", rows_per_group=300)
    _parquet_matches(tmp_path / "fills.parquet", trader.generate_order_fills_report(), "client_order_id")
    _parquet_matches(tmp_path / "orders.parquet", trader.generate_orders_report(), "client_order_id")
    account = trader.generate_account_report(Venue("BINANCE"))
    assert account["margins"].map(len).max() == 4  # every instrument's margin, in every state
    assert pq.ParquetFile(tmp_path / "account.parquet").num_row_groups == math.ceil(len(account) / 300)
    _parquet_matches(tmp_path / "account.parquet", account, "ts_event")
    pd.testing.assert_series_equal(outcome.balances, account["total"].astype(float), check_exact=True)
    assert outcome.orders_filled == len(trader.generate_order_fills_report())


def test_orders_that_all_filled_are_encoded_once_for_both_files(outcomes: dict, tmp_path: Path) -> None:
    """The EMA cross sends market orders only: every order filled, so the fills report is the orders report and
    ``save_orders`` writes that one table and copies the file; both files still hold Nautilus's reports."""
    from nodes.backtest.frames import order_tables
    from nodes.backtest.report_files import save_orders

    outcome = outcomes[4, True]
    orders, fills = order_tables(outcome.record.orders)
    assert fills is orders
    save_orders(outcome, tmp_path)
    assert (tmp_path / "fills.parquet").read_bytes() == (tmp_path / "orders.parquet").read_bytes()
    trader = outcome.engine.trader
    _parquet_matches(tmp_path / "fills.parquet", trader.generate_order_fills_report(), "client_order_id")
    _parquet_matches(tmp_path / "orders.parquet", trader.generate_orders_report(), "client_order_id")


def _ledger_of_report(positions: pd.DataFrame) -> list[dict]:
    """The trade ledger as it was read from Nautilus's positions report, cell by cell: the reference for
    ``position_trades``, which reads the positions themselves."""
    trades = []
    for position_id, row in positions.iterrows():
        still_open = pd.isna(row["ts_closed"])
        trades.append(
            {
                "instrument": row["instrument_id"],
                "direction": "LONG" if row["entry"] == "BUY" else "SHORT",
                "entry_time_ns": pd.Timestamp(row["ts_opened"]).value,
                "exit_time_ns": int(row["ts_last"]) if still_open else pd.Timestamp(row["ts_closed"]).value,
                "realized_pnl": float(str(row["realized_pnl"]).split()[0]),
                "funding": 0.0,
                "duration_s": float(row["duration_ns"]) / 1e9,
                "exit_reason": "END_OF_DATA" if still_open else "CLOSED",
                "position_id": position_id,
            }
        )
    return trades


class EMACrossLeftOpen(EMACrossNotional):
    """The EMA cross leaving its position open when the data ends."""

    def on_stop(self) -> None:
        pass


@pytest.mark.parametrize(("case", "fast"), [("4 symbols", False), ("4 symbols", True), ("left open", False)])
def test_trades_and_positions_csv_equal_what_nautilus_positions_report_gives(
    outcomes: dict, speed_catalog: Path, case: str, fast: bool, tmp_path: Path
) -> None:
    """The EMA cross keeps no ledger: its trades are read from the positions (NETTING snapshots included), one per
    row of Nautilus's positions report and in its order; positions.csv is byte for byte the report's CSV, also
    when written straight from the positions (``positions_csv_cells``: closed positions without snapshots)."""
    from nautilus_trader.analysis.reporter import ReportProvider

    from nodes.backtest.frames import positions_csv_cells, write_cells, write_csv
    from nodes.backtest.report import position_trades
    from nodes.backtest.report_files import write_positions_csv

    if case == "left open":
        outcome = run_backtest(_strategy_settings(speed_catalog, "EMACrossLeftOpen"), fast=False)
    else:
        outcome = outcomes[4, fast]
    record = outcome.record
    report = outcome.engine.trader.generate_positions_report()
    # NETTING keeps snapshots of closed cycles; the open position's exit is its last event
    assert bool(report["is_snapshot"].any()) != fast
    assert report["ts_closed"].isna().any() == (case == "left open")
    expected = pd.DataFrame(_ledger_of_report(report)).drop(columns="position_id")
    got = pd.DataFrame(position_trades([*record.positions, *record.position_snapshots]))
    pd.testing.assert_frame_equal(got, expected, check_exact=True)

    closed = outcome.engine.cache.positions_closed()
    for name, frame in (("all", report), ("closed", ReportProvider.generate_positions_report(closed))):
        frame.to_csv(tmp_path / f"nautilus-{name}.csv")
        write_csv(frame, tmp_path / f"ours-{name}.csv")
        assert (tmp_path / f"ours-{name}.csv").read_bytes() == (tmp_path / f"nautilus-{name}.csv").read_bytes()
    assert "+00:00" in (tmp_path / "ours-all.csv").read_text()  # times were written, by utc_text
    # straight from the positions, without the frame: HEDGING's positions (no snapshots), all closed
    cells = positions_csv_cells(record.positions)
    assert (cells is None) == (case == "left open")
    if cells is not None and not record.position_snapshots:
        write_cells(tmp_path / "direct.csv", *cells)
        assert (tmp_path / "direct.csv").read_bytes() == (tmp_path / "nautilus-all.csv").read_bytes()
    if not fast:
        assert cells is None or record.position_snapshots  # NETTING: snapshots, or one left open
    fresh = dataclasses.replace(outcome)  # no positions frame cached on it
    write_positions_csv(fresh, tmp_path / "positions.csv")
    assert (tmp_path / "positions.csv").read_bytes() == (tmp_path / "nautilus-all.csv").read_bytes()
    assert "positions" not in fresh.__dict__


def test_utc_text_writes_times_as_pandas_does(tmp_path: Path) -> None:
    """Whole seconds, milliseconds, microseconds and nanoseconds (the column's finest sets every cell's digits),
    before 1970, and missing times."""
    from nodes.backtest.frames import write_csv

    rng = np.random.default_rng(7)
    day = 86_400 * 10**9
    for fraction in (0, 5 * 10**6, 5 * 10**3, 5):
        ns = rng.integers(-3 * day, 20_500 * day, 200)
        ns = ns - ns % 10**9 + fraction * rng.integers(0, 3, 200)
        times = pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")
        frame = pd.DataFrame({"t": times, "n": np.arange(200), "u": times[::-1]}, index=[f"P-{i}" for i in ns])
        frame.iloc[3, 0] = pd.NaT
        frame.to_csv(tmp_path / "pandas.csv")
        write_csv(frame, tmp_path / "ours.csv")
        assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes(), fraction


def test_account_table_margins_of_two_currencies_at_one_place(tmp_path: Path) -> None:
    """Consecutive states whose margins at one place are in two currencies (Money refuses to compare them): each
    row still holds its own state's margins, as Nautilus's account report does."""
    from nautilus_trader.core.uuid import UUID4
    from nautilus_trader.model.currencies import USDC, USDT
    from nautilus_trader.model.enums import AccountType
    from nautilus_trader.model.events import AccountState
    from nautilus_trader.model.identifiers import AccountId, InstrumentId
    from nautilus_trader.model.objects import AccountBalance, MarginBalance, Money

    from nodes.backtest.frames import account_frame, write_account_parquet

    def state(ts: int, currency: object, symbol: str, initial: str) -> AccountState:
        margin = MarginBalance(Money(initial, currency), Money("1", currency), InstrumentId.from_str(symbol))
        balance = AccountBalance(Money("100", currency), Money("0", currency), Money("100", currency))
        return AccountState(
            AccountId("BINANCE-001"), AccountType.MARGIN, None, False, [balance], [margin], {}, UUID4(), ts, ts
        )

    states = [
        state(1, USDT, "BTCUSDT-PERP.BINANCE", "5"),
        state(2, USDC, "BTCUSDC-PERP.BINANCE", "7"),
        state(3, USDC, "BTCUSDC-PERP.BINANCE", "7"),
        state(4, USDT, "BTCUSDT-PERP.BINANCE", "5"),
    ]
    write_account_parquet(states, tmp_path / "account.parquet")
    got = pd.read_parquet(tmp_path / "account.parquet")
    expected = account_frame(states)
    assert [[(m["instrument_id"], m["currency"], m["initial"]) for m in row] for row in got["margins"]] == [
        [(m["instrument_id"], m["currency"], float(m["initial"])) for m in row] for row in expected["margins"]
    ]


def test_account_table_margins_added_removed_and_changed_between_states(tmp_path: Path) -> None:
    """A state's margins compared with the previous row's: one added (a position opened) at the end or in the middle,
    one removed (closed), one changed, several changed, reordered, none: each row holds its own state's margins,
    as Nautilus's account report does."""
    from nautilus_trader.core.uuid import UUID4
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.enums import AccountType
    from nautilus_trader.model.events import AccountState
    from nautilus_trader.model.identifiers import AccountId, InstrumentId
    from nautilus_trader.model.objects import AccountBalance, MarginBalance, Money

    from nodes.backtest.frames import account_frame, write_account_parquet

    def margin(symbol: str, initial: str) -> MarginBalance:
        return MarginBalance(Money(initial, USDT), Money("1", USDT), InstrumentId.from_str(f"{symbol}-PERP.BINANCE"))

    a, b, c, d = margin("AUSDT", "5"), margin("BUSDT", "6"), margin("CUSDT", "7"), margin("DUSDT", "8")
    b2, c2 = margin("BUSDT", "9"), margin("CUSDT", "3")
    rows = [[], [a], [a, b], [a, b, c], [a, c], [a, d, c], [a, d, c], [a, b2, c], [a, b2, c2, d], [d, a, b2], [b2]]
    balance = AccountBalance(Money("100", USDT), Money("0", USDT), Money("100", USDT))
    states = [
        AccountState(AccountId("BINANCE-001"), AccountType.MARGIN, None, False, [balance], margins, {}, UUID4(), ts, ts)
        for ts, margins in enumerate(rows, start=1)
    ]
    write_account_parquet(states, tmp_path / "account.parquet")
    got = pd.read_parquet(tmp_path / "account.parquet")
    expected = account_frame(states)
    assert [[(m["instrument_id"], m["initial"]) for m in row] for row in got["margins"]] == [
        [(m["instrument_id"], float(m["initial"])) for m in row] for row in expected["margins"]
    ]
    assert [len(row) for row in got["margins"]] == [len(r) for r in rows]


def test_money_floats_of_several_columns_share_one_set_of_precisions() -> None:
    """The account's total, locked and free are converted with one set of their currencies' precisions: each call
    leaves it as it was (it once emptied it, and the later columns went through ``money_float`` one by one)."""
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.objects import Money

    from nodes.backtest import frames

    amounts = [Money("1.5", USDT), Money("-2.25", USDT), Money("0", USDT)]
    precisions = {USDT.precision}
    calls = []
    one_by_one = frames.money_float
    frames.money_float = lambda money: calls.append(money) or one_by_one(money)
    try:
        for _ in range(3):
            assert frames.money_floats(amounts, precisions) == [1.5, -2.25, 0.0]
    finally:
        frames.money_float = one_by_one
    assert precisions == {USDT.precision} and calls == []


def test_decimal_text_is_the_objects_own_text() -> None:
    """Quantities, prices and money made text (and floats) from their raw integers, as ``str()`` gives them through
    ``Decimal``: every precision, signs, zero, 15 and 16 digits, and raws with digits beyond the precision (left to
    the object)."""
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.objects import Money, Price, Quantity

    from nodes.backtest.frames import decimal_float, decimal_text, money_text, quantity_text

    rng = np.random.default_rng(11)
    for precision in range(0, 10):
        for digits in (1, 3, 8, 14, 15, 16):
            for _ in range(40):
                units = int(rng.integers(0, 10 ** min(digits, precision + 12)))  # prices stay below 10**12
                text = f"{units // 10**precision}.{units % 10**precision:0{precision}d}" if precision else str(units)
                price = Price.from_str(f"-{text}" if units % 2 else text)
                assert quantity_text(price) == str(price) and decimal_float(price) == float(str(price))
                if digits < 16:
                    quantity = Quantity.from_str(text)
                    assert quantity_text(quantity) == str(quantity)
                    assert decimal_float(quantity) == float(str(quantity))
        assert decimal_text(0, precision) == str(Price(0, precision))
    assert decimal_text(10**16 + 1, 8) is None  # a digit beyond the precision: the object's own text is used
    for amount in ("0.49952250", "-2.18672350", "0", "99854.68874640", "-0.00000001", "12345678.12345678"):
        money = Money.from_str(f"{amount} USDT")
        assert money_text(money) == str(money) == f"{Money(amount, USDT)}"


def test_value_cells_are_what_pandas_writes_for_a_column_of_these_values() -> None:
    """A column of Python values as a frame types it and ``to_csv`` writes it: floats (NaN, inf, -0.0), ints, bools,
    text to quote, lists, and ints with None or floats (a float column: ``1.0``, None empty); kinds a frame could
    type otherwise are refused."""
    import io

    from nodes.backtest.frames import value_cells

    columns = {
        "floats": [1e-05, float("nan"), -0.0, float("inf"), 1e16],
        "ints": [1, -2, 2**62],
        "bools": [True, False, True],
        "text": ["a,b", 'say "hi"', "x"],
        "lists": [["1 USDT", "2 USDT"], [], ["x"]],
        "ints and None": [120_000_000_000, None, 2**62 + 1],
        "ints and floats": [1, 2.5, None],
        "None and floats": [None, 1.5, float("nan")],
    }
    for name, values in columns.items():
        text = io.StringIO()
        pd.DataFrame({name: values, "other": 0}).to_csv(text, index=False)
        cells = value_cells(values)
        assert cells is not None, name
        assert text.getvalue() == "\n".join([name + ",other", *(f"{c},0" for c in cells)]) + "\n", name
    for refused in (["x", None], [None, None], [1, True], [2**64, None], [1.5, "x"], [{"a": 1}]):
        assert value_cells(refused) is None, refused


def test_csv_cells_of_every_kind_are_written_as_pandas_writes_them(tmp_path: Path) -> None:
    """write_csv builds each column's text itself: text that needs quoting (commas, quotes, line breaks), missing
    values of each kind, floats of every form, ints, bools, lists and dicts, times, with and without the index; a
    column of a kind it does not know (nullable ints, timestamps in an object column) goes through pandas."""
    from nodes.backtest.frames import csv_cells, write_csv

    times = pd.DatetimeIndex(np.array([0, 10**9, 1_746_749_940 * 10**9], dtype="datetime64[ns]")).tz_localize("UTC")
    frame = pd.DataFrame(
        {
            "text": pd.Series(["a,b", 'say "hi"', None], dtype="str"),
            "plain": pd.Series(["x", "", "line\nbreak"], dtype="str"),
            "float": [1e-05, float("nan"), -0.0],
            "big": [1e16, 123456789.123, float("inf")],
            "int": [1, -2, 3],
            "flag": [True, False, True],
            "lists": [["0.5 USDT"], ["1 USDT", "2 USDT"], None],
            "dicts": [{"a": 1}, None, {}],
            "mixed": pd.Series([None, 1.5, float("nan"), "x"], dtype=object)[:3],
            "when": times,
        },
        index=pd.Index(["P-1", "P,2", "P-3"], name="position_id"),
    )
    assert all(csv_cells(frame[name]) is not None for name in frame)  # written by write_csv itself
    assert frame["mixed"].dtype == object and csv_cells(frame.assign(mixed=[pd.Timestamp(0), None, 1])["mixed"]) is None
    kinds = {
        "all": frame,
        "unnamed index": frame.rename_axis(None),
        "nullable ints": frame.assign(int=pd.array([1, None, 3], dtype="Int64")),
        "timestamps as objects": frame.assign(mixed=[pd.Timestamp(0), None, 1]),
        "no rows": frame.iloc[:0],
        "no columns": pd.DataFrame(),
    }
    for name, kind in kinds.items():
        for index in (True, False):
            kind.to_csv(tmp_path / "pandas.csv", index=index)
            write_csv(kind, tmp_path / "ours.csv", index=index)
            assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes(), (name, index)


def _streaming_settings(speed_catalog: Path) -> BacktestSettings:
    return dataclasses.replace(
        load_backtest_settings(PACKAGE_DIR / "configs" / "ema_cross.toml"),
        catalog=speed_catalog,
        sources=(),
        symbols=SYMBOLS,
        start=START,
        end=END,
    )


def test_catalog_chunks_are_the_catalog_query_cut_in_pieces(speed_catalog: Path) -> None:
    """Bars and mark prices (the catalog's backend session) come 500 at a time, funding rates (pyarrow) whole;
    together they are the points, in the order, that loading the config at once gives."""
    from nautilus_trader.backtest.node import BacktestNode

    from nodes.backtest.streaming import data_chunks

    configs = build_run_config(_streaming_settings(speed_catalog)).data[:3]  # BTCUSDT's bars, funding, marks
    kinds = [config.data_type.__name__ for config in configs]
    assert kinds == ["Bar", "FundingRateUpdate", "MarkPriceUpdate"]
    for config in configs:
        whole = BacktestNode.load_data_config(config).data
        chunks = list(data_chunks(config, chunk_size=500))
        assert whole and all(chunks)
        if config.data_type.__name__ == "Bar":
            assert len(whole) > 2_000 and max(map(len, chunks)) == 500
        streamed = [point for chunk in chunks for point in chunk]
        assert [type(p).to_dict(p) for p in streamed] == [type(p).to_dict(p) for p in whole]


def test_a_stream_that_does_not_end_where_the_catalog_index_says_stops_the_run(speed_catalog: Path) -> None:
    """The run's end comes from the catalog's timestamp index before the data is read: a stream ending elsewhere
    would have given the run another end, so it raises instead of letting the run finish."""
    from nodes.backtest.streaming import StreamMismatchError, _ending_at, data_chunks

    config = build_run_config(_streaming_settings(speed_catalog)).data[0]
    last = list(data_chunks(config, chunk_size=500))[-1][-1].ts_init
    assert sum(map(len, _ending_at(data_chunks(config, chunk_size=500), last, "bars"))) > 2_000
    with pytest.raises(StreamMismatchError, match="bars ended at"):
        list(_ending_at(data_chunks(config, chunk_size=500), last + 60_000_000_000, "bars"))


def test_streamed_run_equals_the_run_on_loaded_data_and_frees_what_it_replayed(
    speed_catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog read a chunk at a time while the engine runs (streams merged by the engine, 300 points a chunk,
    the account states sharing unchanged margins) gives the results of the data loaded at once, sorted."""
    from nodes.backtest import streaming
    from nodes.backtest.runner import load_engine, run_on_engine

    monkeypatch.setattr(streaming, "STREAM_CHUNK", 300)
    settings = _streaming_settings(speed_catalog)
    runs = {}
    for streamed in (False, True):
        loaded = load_engine(settings, streamed=streamed)
        runs[streamed] = (loaded, run_on_engine(loaded, settings))
    (_, whole), (streamed_engine, streamed) = runs[False], runs[True]

    assert len(streamed.positions) > 200
    pd.testing.assert_frame_equal(whole.positions, streamed.positions, check_exact=True)
    pd.testing.assert_frame_equal(_fills(whole), _fills(streamed), check_exact=True)
    pd.testing.assert_frame_equal(whole.account, streamed.account, check_exact=True)
    assert whole.data_points == streamed.data_points
    assert whole.result.total_orders == streamed.result.total_orders
    assert _same_stats(whole.result.stats_pnls["USDT"], streamed.result.stats_pnls["USDT"])
    assert _same_stats(whole.result.stats_returns, streamed.result.stats_returns)

    # A replayed point is held by no list but the chunk it came in (the cache keeps recent bars in a deque).
    def longest_list_holding_the_last_bar(outcome: BacktestOutcome) -> int:
        bar = outcome.engine.cache.bar(outcome.engine.cache.bar_types()[0])
        return max((len(r) for r in gc.get_referrers(bar) if isinstance(r, list)), default=0)

    assert longest_list_holding_the_last_bar(whole) == whole.data_points
    assert longest_list_holding_the_last_bar(streamed) <= 300

    # Each state holds one copy per unchanged margin in the whole run, shares it in the streamed one; the last
    # state's margins stay the account's own (it updates them in place).
    def distinct_margins(outcome: BacktestOutcome) -> tuple[int, int]:
        margins = [m for state in outcome.record.account_states for m in state.margins]
        return len(margins), len({id(m) for m in margins})

    total, distinct = distinct_margins(whole)
    assert distinct == total > 1_000
    total, distinct = distinct_margins(streamed)
    assert distinct < total / 2
    account = streamed.engine.cache.account_for_venue(Venue("BINANCE"))
    assert {id(m) for m in account.margins().values()} == {id(m) for m in streamed.record.account_states[-1].margins}

    with pytest.raises(ValueError, match="runs once"):
        run_on_engine(streamed_engine, settings)
