"""The files of a backtest report, in a folder of their own per run: report.txt, trades.csv, positions.csv,
summary.json, Nautilus's HTML tearsheet fed the report's own numbers, and the large raw tables as Parquet
(fills.parquet, orders.parquet, account.parquet; also as CSV with ``[backtest] csv_tables``)."""

import gc
import json
import math
import os
import select
import shutil
import signal
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from nodes.backtest.frames import (
    order_tables,
    orders_frame,
    positions_csv_cells,
    positions_frame,
    record_columns,
    value_cells,
    write_account_csv,
    write_account_parquet,
    write_cells,
    write_csv,
    write_parquet,
)
from nodes.backtest.progress import StepProgress
from nodes.backtest.report import BacktestReport, equity_curve, iso, unrealised_at_end
from nodes.backtest.runner import BacktestOutcome
from nodes.backtest.trade_stats import returns_statistics

FILLS, ORDERS, ACCOUNT = "fills.parquet", "orders.parquet", "account.parquet"


TRADE_TIMES = ("entry_time", "exit_time")  # written as ISO-8601 UTC text from their ``_ns`` keys


def trades_frame(trades: list[dict[str, Any]]) -> pd.DataFrame:
    """trades.csv: one row per trade, times in ISO-8601 UTC."""
    frame = pd.DataFrame(trades)
    for column in TRADE_TIMES:
        if f"{column}_ns" in frame:
            frame.insert(frame.columns.get_loc(f"{column}_ns"), column, iso_column(frame.pop(f"{column}_ns")))
    return frame


def iso_column(ns: pd.Series) -> pd.Series:
    """``ns.map(iso)`` in one call when every cell is an integer (epoch ns), else cell by cell."""
    if not pd.api.types.is_integer_dtype(ns.dtype):
        return ns.map(iso)
    return pd.Series(iso_texts(ns.to_numpy(dtype=np.int64)), index=ns.index, dtype="str")


def iso_texts(ns: np.ndarray) -> np.ndarray:
    """``iso`` of each epoch ns, in numpy calls."""
    seconds = ns.astype("datetime64[ns]").astype("datetime64[s]")  # floor, as strftime
    return np.char.add(np.datetime_as_string(seconds, unit="s"), "Z")


def write_trades_csv(trades: list[dict[str, Any]], path: Path) -> None:
    """``trades_frame(trades).to_csv(path, index=False)``, byte for byte; without the frame when
    ``trades_csv_cells`` can make its cells."""
    cells = trades_csv_cells(trades)
    if cells is None:
        write_csv(trades_frame(trades), path, index=False)
    else:
        write_cells(path, *cells)


def trades_csv_cells(trades: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]] | None:
    """(header, cells) of ``trades_frame(trades)``'s CSV: each key's values turned into their text at once
    (``frames.value_cells``, the ``_ns`` times as ISO text). None (write the frame) for trades of differing keys,
    or values of a kind whose column pandas could type otherwise."""
    columns = record_columns(trades)
    if columns is None:
        return None
    names: list[str] = []
    cells: list[list[str]] = []
    for name, values in columns.items():
        time = name.removesuffix("_ns")
        if time in TRADE_TIMES and name != time:
            text = iso_texts(np.array(values, dtype=np.int64)).tolist() if {int} == set(map(type, values)) else None
        else:
            time, text = name, value_cells(values)
        if text is None:
            return None
        names.append(time)
        cells.append(text)
    return names, cells


def new_report_folder(report_dir: Path, now: pd.Timestamp | None = None) -> Path:
    """``reports/20250601-120000``, or ``-2``, ``-3``... when another run took that second: created here
    (atomically: two processes never get the same folder), so no run writes over another's report."""
    stamp = (now or pd.Timestamp.now("UTC")).strftime("%Y%m%d-%H%M%S")
    Path(report_dir).mkdir(parents=True, exist_ok=True)
    for number in range(1, 10_000):
        folder = Path(report_dir) / (stamp if number == 1 else f"{stamp}-{number}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"{report_dir}: 10,000 report folders named {stamp}*")


def save_report(
    outcome: BacktestOutcome, report: BacktestReport, show_progress: bool = False, second_process: bool = False
) -> Path:
    """The report's files in a new folder. The large raw tables (fills, orders, account) are Parquet; with
    ``csv_tables`` also the CSVs of Nautilus's frames, as ``ats backtest`` wrote them before.
    ``second_process``: the tables are written by a forked child (``ReportWriter``)."""
    return ReportWriter(outcome, second_process).finish(report, show_progress)


Step = tuple[str, Callable[[], Any]]
# A table step of the second process takes seconds (16 symbols x 25 days: 1-2 s the largest); one that sends
# nothing for this long is taken for hung and its work done by the first process.
CHILD_STALL_S = 300.0


def core_to_spare(load: float | None = None, cores: int | None = None) -> bool:
    """Whether a second process would get a core of its own: the 1-minute load average (this process counts about
    1) leaves at least half a core idle. A forked child costs cpu of its own (the pages the two processes write
    are copied: about a third more cpu for the tables at 16 symbols x 25 days), which only pays when it runs on
    an idle core; on a busy machine one process finishes sooner and leaves the others more."""
    load = os.getloadavg()[0] if load is None else load
    cores = (os.cpu_count() or 1) if cores is None else cores
    return cores >= 2 and load <= cores - 0.5


class ReportWriter:
    """Writes one run's report folder. The raw tables (``positions.csv``, the Parquet tables, the CSV tables when
    asked) depend on the run alone: with ``second_process`` a forked child starts on them at once, from its copy
    of the run, while this process builds the report and writes the rest on the other core, then takes the tables
    the child has not started, from the last (``SharedSteps``). ``finish`` waits for the child; if it failed (an
    error, a signal), its error is printed on stderr and this process writes what the child did not, so nothing is
    lost; an error here is raised as usual."""

    def __init__(self, outcome: BacktestOutcome, second_process: bool = False) -> None:
        self.outcome = outcome
        self.folder = new_report_folder(Path(outcome.settings.report_dir))
        # The run's objects (about 1.7 million at 16 symbols x 25 days, all alive until the process ends) are left
        # out of the collector's passes until ``finish``: each full collection the report's allocations set off
        # would visit all of them (0.1-0.2 s each), and with a second process touch, and so copy, their pages.
        # The collector is off as well: the report's own allocations (the trades, the tables' cells) still set off
        # a hundred young collections that found nothing to free (about 8 % of the report's cpu); what they make is
        # freed by reference counting, and the few seconds' cycles (plotly's figure) wait for the next pass.
        gc.freeze()
        self._collecting = gc.isenabled()
        gc.disable()
        self.tables = table_steps(outcome, self.folder)
        self.shared: SharedSteps | None = None
        if second_process and sys.platform == "linux":  # fork() of a process with threads: safe enough on Linux only
            try:
                self.shared = SharedSteps.start(self.tables)
            except OSError as exc:  # no process to spare (memory, process limit): all of it here
                print(f"no second process for the report's tables ({exc}): writing them here", file=sys.stderr)
        self.child_failure: str | None = None

    def finish(self, report: BacktestReport, show_progress: bool = False) -> Path:
        shared = self.shared
        steps = report_steps(self.outcome, report, self.folder, tables=shared is None)
        bar = StepProgress(f"writing {self.folder}", len(steps) + (shared is not None)) if show_progress else None
        try:
            for name, write in steps:
                if bar:
                    bar.step(name)
                write()
            if shared is not None:
                if bar:
                    bar.step(f"{', '.join(name for name, _ in self.tables)} (with a second process)")
                shared.run_unclaimed()
                self.child_failure = shared.wait()
                if self.child_failure is not None:
                    left = shared.left()
                    print(
                        f"the second process writing the report's tables failed "
                        f"({self.child_failure.strip().splitlines()[-1]}): writing {', '.join(n for n, _ in left)} "
                        "here",
                        file=sys.stderr,
                        flush=True,
                    )
                    for _, write in left:
                        write()
        finally:
            self.discard()
        return self.folder

    def discard(self) -> None:
        """The end of the writer, also when the report failed before ``finish``: the child waited for (it writes
        no file once this process has returned), the run's objects thawed and the collector as it was."""
        try:
            if self.shared is not None and self.shared.running():
                self.child_failure = self.shared.wait()
        finally:
            gc.unfreeze()
            if self._collecting:
                gc.enable()


class SharedSteps:
    """Steps run by this process and a forked child together, each exactly once: a process claims a step (creates
    its file in a private folder, O_EXCL: only one creation succeeds) before it runs it. The child claims from
    the first step on; this process, once its own work is done, from the last (``run_unclaimed``). The child
    sends the index of each step it finished through a pipe, or its error; ``wait`` collects them."""

    def __init__(self, steps: list[Step], pid: int, messages: int, claims: Path) -> None:
        self.steps, self.pid, self.messages, self.claims = steps, pid, messages, claims
        self.done: set[int] = set()  # finished, by either process
        self.stall_s = CHILD_STALL_S

    @staticmethod
    def _claim(claims: Path, index: int) -> bool:
        try:
            os.close(os.open(claims / str(index), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    @classmethod
    def start(cls, steps: list[Step]) -> "SharedSteps":
        """Fork the child. Call it with the run's objects frozen (``gc.freeze``, as ``ReportWriter`` does): a full
        collection in either process would touch every object of the run, and so copy each page it touched."""
        sys.stdout.flush()
        sys.stderr.flush()
        claims = Path(tempfile.mkdtemp(prefix="ats-report-steps-"))
        read, write = os.pipe()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # the child starts no thread and takes no lock
                pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            shutil.rmtree(claims, ignore_errors=True)
            raise
        if pid == 0:  # the child: its steps, then out at once (no interpreter teardown, no atexit, no flush)
            os.close(read)
            code = 1
            try:
                for index, (_, step) in enumerate(steps):
                    if cls._claim(claims, index):
                        step()
                        os.write(write, f"done {index}\n".encode())
                code = 0
            except BaseException:  # noqa: BLE001 (whatever it is, the parent reports it and writes the steps)
                os.write(write, ("error\n" + traceback.format_exc()).encode(errors="replace"))
            finally:
                os._exit(code)
        os.close(write)
        return cls(steps, pid, read, claims)

    def run_unclaimed(self) -> None:
        """Run here, from the last, the steps the child has not claimed yet."""
        for index in reversed(range(len(self.steps))):
            if self._claim(self.claims, index):
                self.steps[index][1]()
                self.done.add(index)

    def wait(self) -> str | None:
        """Wait for the child: None when it ended well, else its error (or the signal that ended it). A child that
        sends nothing for ``stall_s`` (hung: a lock a thread of the parent held at the fork) is killed, and its
        steps are left to this process."""
        stall_s = self.stall_s
        chunks: list[bytes] = []
        stalled = False
        with os.fdopen(self.messages, "rb", buffering=0) as messages:
            while True:
                ready, _, _ = select.select([messages], [], [], stall_s)
                if not ready:
                    stalled = True
                    os.kill(self.pid, signal.SIGKILL)
                    break
                chunk = messages.read(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        text = b"".join(chunks).decode(errors="replace")
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        shutil.rmtree(self.claims, ignore_errors=True)
        lines, _, error = text.partition("error\n")
        self.done.update(int(line.split()[1]) for line in lines.splitlines() if line.startswith("done "))
        if stalled:
            return f"no word from it for {stall_s:g} s: stopped"
        if os.WIFSIGNALED(status):
            return f"{error}killed by signal {os.WTERMSIG(status)}"
        code = os.waitstatus_to_exitcode(status)
        return None if code == 0 else (error or f"exit code {code}")

    def running(self) -> bool:
        """Whether the child has not been waited for yet."""
        return self.pid != 0

    def left(self) -> list[Step]:
        """The steps neither process finished."""
        return [step for index, step in enumerate(self.steps) if index not in self.done]


def table_steps(outcome: BacktestOutcome, folder: Path) -> list[Step]:
    """The raw tables: positions.csv, Nautilus's reports typed in Parquet, and their CSVs with ``csv_tables``."""
    # A second process starts from the first step, this one (once the report's own files are written) from the
    # last. The child pays for each page it touches first (copied), about half again the tables' one-process cpu
    # (16 symbols x 25 days: account 2.2 s, orders 2.0 s, positions 1.4 s; here 1.2-1.5, 1.2-1.4 and 1.0 s), and
    # this process is done with its own files after about 1.7 s: with the account last this process takes it
    # (done after about 3.3 s) and the child the positions then the orders (2.9 s); with the orders last the child
    # kept the account and the positions (3.3-3.7 s), with the positions last both large tables (4.2 s).
    steps: list[Step] = [
        ("positions.csv", lambda: write_positions_csv(outcome, folder / "positions.csv")),
        ("fills.parquet, orders.parquet", lambda: save_orders(outcome, folder)),
        ("account.parquet", lambda: write_account_parquet(outcome.record.account_states, folder / ACCOUNT)),
    ]
    if outcome.settings.csv_tables:
        steps[2:2] = [
            ("account.csv", lambda: write_account_csv(outcome.account, folder / "account.csv")),
            ("orders.csv", lambda: orders_frame(outcome.record.orders).to_csv(folder / "orders.csv")),
            ("fills.csv", lambda: write_csv(outcome.fills, folder / "fills.csv")),
        ]
    return [(name, returning_memory(write)) for name, write in steps]


def write_positions_csv(outcome: BacktestOutcome, path: Path) -> None:
    """positions.csv: Nautilus's positions report; straight from the positions when no frame is needed
    (``frames.positions_csv_cells``: no snapshots, none open), else from ``positions_report``."""
    record = outcome.record
    cells = None
    if "positions" not in outcome.__dict__ and not record.position_snapshots:
        cells = positions_csv_cells(record.positions)
    if cells is None:
        write_csv(positions_report(outcome), path)
    else:
        write_cells(path, *cells)


def positions_report(outcome: BacktestOutcome) -> pd.DataFrame:
    """Nautilus's positions report: the outcome's frame if something built it, else one made for positions.csv
    alone and dropped once it is written (kept as ``outcome.positions``, the frame of 26,000 positions was still
    held while the orders' tables were built, the step at which the process peaks)."""
    built = outcome.__dict__.get("positions")  # the cached_property's value, when it was read
    if built is not None:
        return built
    return positions_frame(outcome.record.positions, outcome.record.position_snapshots)


def returning_memory(write: Callable[[], Any]) -> Callable[[], Any]:
    """``write``, then the memory Arrow freed handed back to the system. Arrow's allocator (mimalloc) keeps freed
    pages for reuse: after the orders' tables of 16 symbols x 25 days the process held 70 MB more than before
    them, and the positions frame built next raised the process's peak above the replay's own."""

    def step() -> Any:
        try:
            return write()
        finally:
            pa.default_memory_pool().release_unused()

    return step


def report_steps(outcome: BacktestOutcome, report: BacktestReport, folder: Path, tables: bool = True) -> list[Step]:
    """(files, the call that writes them into ``folder``), in the order ``save_report`` runs them; ``tables``:
    the raw tables too (``table_steps``)."""
    steps: list[Step] = [
        ("report.txt", lambda: (folder / "report.txt").write_text(report.text + "\n")),
        ("trades.csv", lambda: write_trades_csv(report.trades, folder / "trades.csv")),
        ("summary.json", lambda: (folder / "summary.json").write_text(summary_json(outcome, report))),
        ("tearsheet.html", lambda: write_tearsheet(outcome, report, folder / "tearsheet.html")),
    ]
    if tables:
        steps += table_steps(outcome, folder)
    steps.append(("config.toml, run.json", lambda: save_run_inputs(outcome, folder)))
    return steps


def trade_statistics(trades: list[dict[str, Any]], starting_balance: float) -> dict[str, float]:
    """The tearsheet's PnL table, from the same trades as the report (funding included)."""
    pnls = [float(t["realized_pnl"]) for t in trades]
    wins, losses = [p for p in pnls if p > 0], [p for p in pnls if p <= 0]
    total = sum(pnls)
    out = {"PnL (total)": round(total, 2), "PnL% (total)": round(100 * total / starting_balance, 4)}
    if wins:
        out |= {"Max Winner": max(wins), "Avg Winner": sum(wins) / len(wins), "Min Winner": min(wins)}
    if losses:
        out |= {"Min Loser": max(losses), "Avg Loser": sum(losses) / len(losses), "Max Loser": min(losses)}
    if pnls:
        out |= {"Expectancy": total / len(pnls), "Win Rate": len(wins) / len(pnls)}
    return out


def write_tearsheet(outcome: BacktestOutcome, report: BacktestReport, path: Path) -> None:
    """Nautilus's HTML tearsheet, fed the report's own numbers: daily returns that include the first day (the
    analyzer's series starts at the end of the first day, and its total return missed that day's result), and
    the trades' statistics after funding, so the two agree to the cent."""
    from nautilus_trader.analysis.tearsheet import create_tearsheet_from_stats

    engine, settings = outcome.engine, outcome.settings
    equity = equity_curve(outcome)
    first = settings.start if settings.start is not None else (equity.index[1] if len(equity) > 1 else None)
    last = settings.end if settings.end is not None else (equity.index[-1] if len(equity) else None)
    run_info = {
        "Backtest start": str(first) if first is not None else "N/A",
        "Backtest end": str(last) if last is not None else "N/A",
        "Iterations": f"{engine.iteration:_}",
        "Total orders": f"{len(outcome.record.orders):_}",  # the cache's count builds a list of every order
        "Trades": f"{len(report.trades):_}",
    }
    account_info = {
        "Starting balance (USDT)": f"{settings.starting_balance:,.2f} USDT",
        "Final equity (USDT)": f"{equity.iloc[-1]:,.2f} USDT" if len(equity) else "-",
    }
    create_tearsheet_from_stats(
        stats_pnls={"USDT": trade_statistics(report.trades, settings.starting_balance)},
        stats_returns=returns_statistics(report.returns),
        stats_general=engine.portfolio.analyzer.get_performance_stats_general(),
        returns=report.returns,
        output_path=str(path),
        title="ats backtest",
        run_info=run_info,
        account_info=account_info,
    )


def _plain(value: Any) -> Any:
    """JSON-ready: numbers stay numbers (inf and NaN become null), timestamps become ISO-8601."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, pd.Timestamp):
        return iso(value.value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None


def summary_json(outcome: BacktestOutcome, report: BacktestReport) -> str:
    """summary.json: the run, what it had and lacked, its results; numbers as numbers, times in ISO-8601."""
    settings = outcome.settings
    trades = report.trades
    funding = sum(t["funding"] for t in trades)
    final = float(outcome.balances.iloc[-1]) if not outcome.balances.empty else None
    unrealised = unrealised_at_end(outcome)
    module = outcome.funding
    coverage = outcome.factor_coverage
    document = {
        "run": {
            "config": str(settings.config_path),
            "start": iso(settings.start.value) if settings.start is not None else None,
            "end": iso(settings.end.value) if settings.end is not None else None,
            "symbols": list(settings.symbols),
            "bar": settings.bar_spec,
            "bars_replayed": sum(outcome.bars.values()),
            "data_points_replayed": outcome.data_points,
            "wall_seconds": round(outcome.wall_seconds, 3),
            "orders_filled": outcome.orders_filled,
            "starting_balance": settings.starting_balance,
            "final_balance": final,
            "unrealised_at_end": unrealised,
            "final_equity": None if final is None else final + unrealised,
        },
        "data": {
            r.symbol: {
                "bars": r.bars,
                "bar_type": r.bar_type,
                "taker_buy_volume": r.taker_buy_volume,
                "first_bar": iso(r.first_bar_ns),
                "last_bar": iso(r.last_bar_ns),
                "funding_rates": r.funding_rates,
                "funding": r.funding,
                "mark_prices": r.mark_prices,
                "instrument_as_of": iso(r.instrument_time_ns),
            }
            for r in report.data
        },
        "funding": {
            "settled": bool(module is not None and module.settlements),
            "settlements": module.settlements if module is not None else 0,
            "total": funding,
            "symbols_without_rates": [r.symbol for r in report.data if r.funding_rates == 0],
        },
        "factors_unavailable": coverage.unavailable() if coverage is not None and coverage.samples else None,
        "summary": report.summary.as_dict(),
        "money": {
            "trades_after_fees": sum(t["realized_pnl"] for t in trades) - funding,
            "funding": funding,
            "total_pnl": report.summary.total_pnl,
        },
        "daily_returns": {iso(ts.value): value for ts, value in report.returns.items()},
        "counters": report.counters,
        "nautilus": {"pnl": outcome.result.stats_pnls, "returns": outcome.result.stats_returns},
    }
    return json.dumps(_plain(document), indent=2)


def save_orders(outcome: BacktestOutcome, folder: Path) -> tuple[Path, Path]:
    """Every order of the run, filled or not (``orders.parquet``): the cancelled stops and targets are the history
    of each trade's exit levels (initial, break-even, dynamic moves) that ``ats plot`` draws; and the orders with
    a fill (``fills.parquet``). Nautilus's orders and order fills reports, typed (frames.py)."""
    orders, fills = order_tables(outcome.record.orders)
    write_parquet(orders, folder / ORDERS)
    if fills is orders:  # every order filled: the same file, copied instead of encoded again
        shutil.copyfile(folder / ORDERS, folder / FILLS)
    else:
        write_parquet(fills, folder / FILLS)
    return folder / ORDERS, folder / FILLS


def save_run_inputs(outcome: BacktestOutcome, folder: Path) -> Path:
    """The config file as run (``config.toml``) and what it resolved to (``run.json``: catalog, symbols, bar,
    period), so the report can be re-read against the same data (``ats plot``)."""
    settings = outcome.settings
    (folder / "config.toml").write_text(Path(settings.config_path).read_text())
    run = {
        "config_path": str(settings.config_path),
        "catalog": str(settings.catalog),
        "symbols": list(settings.symbols),
        "bar_spec": settings.bar_spec,
        "start": None if settings.start is None else settings.start.isoformat(),
        "end": None if settings.end is None else settings.end.isoformat(),
    }
    path = folder / "run.json"
    path.write_text(json.dumps(run, indent=2))
    return path
