"""Where an ``ats backtest`` process spends its time, phase by phase: the steps of ``nodes.commands.backtest.run``
in one process, each timed (wall and cpu) with the process's resident memory after it and its peak during it.

``uv run python -m benchmarks.backtest_phases [--quick] [CONFIG]``: the EMA cross of ``benchmarks process`` (16
symbols x 25 days; ``--quick`` 4 x 5), or any backtest config. "in the run" is what ``summary.json``'s
``wall_seconds`` counts (catalog read, engine build, replay, data cleared); every other row is what
``benchmarks process`` calls "outside the run". The interpreter's start (before this module runs) is the first
row; the process then ends with ``os._exit`` as the ``ats`` script does. The raw tables are shared with a second
process when a core is idle, as ``ats backtest`` does (``--one-process``, ``--two-processes``: either way).
"""

import os
import time

STARTED = time.monotonic(), time.process_time()

import resource  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402


def _since_boot_s() -> float:
    with open("/proc/uptime") as uptime:
        return float(uptime.read().split()[0])


def _process_age_s() -> float:
    """Seconds since this process started (from /proc: clock ticks since boot)."""
    with open("/proc/self/stat") as stat:
        start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
    return _since_boot_s() - start_ticks / os.sysconf("SC_CLK_TCK")


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    """The resident memory's high-water mark since the last ``_reset_peak`` (VmHWM), or NaN where unknown."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _reset_peak() -> None:
    """Start a new high-water mark at the current resident memory (Linux: "5" to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


class Phases:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float, float, float, bool]] = []
        self.notes: list[str] = []
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        _reset_peak()

    def done(self, name: str, in_run: bool = False) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.rows.append((name, wall - self.wall, cpu - self.cpu, _rss_mb(), _peak_rss_mb(), in_run))
        _reset_peak()
        self.wall, self.cpu = wall, cpu

    def table(self) -> str:
        lines = [f"{'phase':<40} {'wall s':>8} {'cpu s':>8} {'RSS MB':>8} {'peak MB':>8}"]
        for name, wall, cpu, rss, peak, in_run in self.rows:
            label = name + (" [in the run]" if in_run else "")
            lines.append(f"{label:<40} {wall:8.2f} {cpu:8.2f} {rss:8.0f} {peak:8.0f}")
        outside = [r for r in self.rows if not r[5]]
        peaks = [r[4] for r in self.rows]  # ru_maxrss is reset with VmHWM: the process's peak is the phases' largest
        lines.append(
            f"{'outside the run':<40} {sum(r[1] for r in outside):8.2f} {sum(r[2] for r in outside):8.2f}"
            f" {max(peaks):8.0f} (the process's peak; outside the run {max(r[4] for r in outside):,.0f})"
        )
        return "\n".join(lines)


def main(argv: list[str]) -> None:
    exec_at = os.environ.pop("BACKTEST_PHASES_EXEC_AT", None)  # the monotonic clock carries across exec
    if exec_at:
        wall_at, cpu_at = (float(v) for v in exec_at.split(","))
        interpreter = STARTED[0] - wall_at, STARTED[1] - cpu_at
    else:
        interpreter = _process_age_s() - (time.monotonic() - STARTED[0]), STARTED[1]
    configs = [a for a in argv if not a.startswith("--")]
    if not configs:  # write the EMA config, then start again on it: its imports are not this run's
        from benchmarks.bench_backtest import SYMBOLS
        from benchmarks.bench_process import ema_config

        quick = "--quick" in argv
        folder = Path(tempfile.mkdtemp(prefix="backtest_phases_"))
        config = ema_config(folder, SYMBOLS[:4] if quick else SYMBOLS, 5 if quick else 25)
        sys.stdout.flush()
        os.environ["BACKTEST_PHASES_EXEC_AT"] = f"{time.monotonic()},{time.process_time()}"
        flags = [a for a in argv if a in ("--one-process", "--two-processes")]
        os.execv(sys.executable, [sys.executable, "-m", "benchmarks.backtest_phases", str(config), "--delete", *flags])
    config = Path(configs[0])
    phases = Phases()
    phases.rows.append(("interpreter start", *interpreter, 0.0, 0.0, False))

    from catalog.ingest import stderr_progress
    from nodes.backtest.report import build_report
    from nodes.backtest.report_files import ReportWriter, core_to_spare, report_steps
    from nodes.backtest.runner import _progress_actor, _run, ensure_catalog, fast_path_mismatch
    from nodes.settings import load_backtest_settings

    phases.done("imports")
    settings = load_backtest_settings(config)
    phases.done("settings")
    ready = ensure_catalog(settings, stderr_progress)
    phases.done("catalog check (ensure_catalog)")
    outcome = _run(settings, True, _progress_actor(ready))
    phases.done("catalog read + replay", in_run=True)
    if fast_path_mismatch(outcome) is not None:
        raise SystemExit("the fast path was rejected: this script times the fast run only")
    outcome.replayed = ready
    phases.done("guard check")
    second = "--two-processes" in argv or ("--one-process" not in argv and core_to_spare())
    writer = ReportWriter(outcome, second_process=second)
    phases.done("report folder" + (", second process started" if second else ""))
    report = build_report(outcome)
    phases.done("report (ledger, text, equity)")
    with open(os.devnull, "w") as null:
        print(report.text, file=null)
    steps = report_steps(outcome, report, writer.folder, tables=writer.shared is None)
    for name, write in steps:
        write()
        phases.done(name)
    if writer.shared is not None:
        writer.shared.run_unclaimed()
        mine = sorted(writer.shared.done)
        phases.done(f"tables the child had not started: {', '.join(writer.tables[i][0] for i in mine) or 'none'}")
        failure = writer.shared.wait()
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        phases.done("waiting for the second process")
        if failure:
            raise SystemExit(f"the second process failed: {failure}")
        cpu, rss = child.ru_utime + child.ru_stime, child.ru_maxrss / 1024
        phases.notes.append(
            f"second process (the raw tables): {cpu:.2f} s cpu ({child.ru_stime:.2f} s sys, {child.ru_minflt:,} page"
            f" faults), peak RSS {rss:,.0f} MB"
        )
    folder = writer.folder
    print(phases.table())
    print("\n".join(phases.notes))
    if "--delete" in argv:
        shutil.rmtree(config.parent)
    print(f"report: {folder}" + (" (deleted)" if "--delete" in argv else ""))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
