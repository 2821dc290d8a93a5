"""Soak run under chaos: the live node trades a replay while seeded random faults hit it and the exchange-side
invariant checker watches every state change.

``uv run python -m benchmarks chaos [--seed N] [--minutes M] [--speed X] [--mean-interval S] [--grace S]
[--report PATH]``

- Market: the 16 real 1m series of ``ohlcv_2025-03_2025-06`` from the start of their most volatile day
  (2025-05-23, see ``bench_live_load``), ``M`` wall minutes replayed at ``X`` (default 60 minutes at 10x:
  ten market hours).
- Node: the real one in its own process (``run_live_node``), the real strategy scanning every minute with
  ``min_score`` 10 and exits close to the entry (0.4 % stop, 0.4 % / 0.8 % targets), so positions open and
  close all the time and every fault meets entries, stops being placed and moved, and exits.
- Faults: ``simulator.chaos.chaos_schedule(seed, M minutes, mean_interval)``: WebSocket drops, user-stream
  silence, listen-key expiry, 429, a 418 ban window, REST latency spikes, -2019 on an entry and on an exit,
  rejected stop placements and stop moves (cancels); on average one every ``S`` seconds (default 30).
- Invariants (``simulator.invariants``): every open position has exactly one reduce-only stop on its closing
  side for its full quantity, no reduce-only order rests on a flat symbol, no duplicate open orders. An episode
  shorter than ``--grace`` (5 s), or than a fault's effect window plus the grace, is a divergence; a longer one
  is a violation. After the schedule, the run waits for the node to recover before the final check.

The table: faults injected by kind, what they hit, violations and divergences by invariant, the longest
divergence, orders sent, trades. Each violation is listed (time into the run, invariant, symbol, details,
duration, the faults just before it, and the symbol's order requests around it) on stderr, for whoever fixes
it; ``--report PATH`` writes all of it (faults, episodes, every request, stream connections, ERROR log lines)
as JSON.
"""

import argparse
import json
import re
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.bench_live import KEY, REAL, SECRET, SHARED, WARMUP, _settings, _start_node, _stop
from benchmarks.bench_live_load import STRATEGY, day_ranges, wait_until_warm
from benchmarks.table import Row
from simulator import BinanceSimulator, SimulatorConfig
from simulator.chaos import FAULT_KINDS, ChaosRunner, ChaosSummary, chaos_schedule, summarize
from simulator.invariants import DEFAULT_GRACE_S, InvariantMonitor
from simulator.sources import from_files

SETTLE_S = 30.0  # after the last fault: time for the node to reconnect, reconcile and repair before the last check


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("chaos")
    group.add_argument("--seed", type=int, default=1, help="the fault schedule's seed (default 1)")
    group.add_argument("--minutes", type=float, help="wall minutes of replay under faults (default 60, --quick 5)")
    group.add_argument("--speed", type=float, default=10.0, help="replay speed (default 10x)")
    group.add_argument("--mean-interval", type=float, default=30.0, help="mean seconds between faults (30)")
    group.add_argument("--grace", type=float, default=DEFAULT_GRACE_S, help="allowance of a divergence, s (5)")
    group.add_argument("--report", help="also write a JSON post-mortem (faults, episodes, requests) to this file")


def soak(
    seed: int, minutes: float, speed: float, mean_interval_s: float, grace_s: float, report_path: Path | None = None
) -> tuple[ChaosSummary, "StreamWatch"]:
    everything = from_files([SHARED / f"{s}-1m.csv.gz" for s in REAL])
    day_ms, _ = day_ranges(everything.series)[0]
    bars = int(minutes * speed) + 2
    data = everything.window(day_ms, limit=bars, history=WARMUP)
    symbols = [s.symbol for s in data.series]
    config = SimulatorConfig(
        data.instruments,
        data.series,
        KEY,
        SECRET,
        bar_seconds=60.0 / speed,
        autostart=False,
        balance=Decimal(100_000),
    )
    schedule = chaos_schedule(seed, minutes * 60, mean_interval_s)
    with tempfile.TemporaryDirectory() as tmp, BinanceSimulator(config) as sim:
        folder = Path(tmp)
        node = _start_node(_settings(sim, symbols, STRATEGY, folder), folder)
        try:
            wait_until_warm(sim, node, symbols, folder, 300)
            time.sleep(3.0)
            monitor = InvariantMonitor(sim, grace_s=grace_s).start()
            runner = ChaosRunner(sim, schedule, monitor)
            sim.play()
            runner.start()
            assert sim.finished is not None
            streams = StreamWatch()
            limit = time.monotonic() + minutes * 60 + 600
            while not (runner.done or sim.finished.is_set() or node.poll() is not None or time.monotonic() > limit):
                streams.sample(sim)
                time.sleep(0.5)
            runner.stop()
            settle = time.monotonic() + SETTLE_S
            while time.monotonic() < settle:
                streams.sample(sim)
                time.sleep(0.5)
            monitor.stop()
            summary = summarize(sim, runner, monitor)
            alive = node.poll() is None
            errors = _error_lines(folder)
            requests = sim.request_log.as_dicts()
        finally:
            _stop(node)
    _print_details(summary, runner, alive, errors, requests, streams)
    if report_path is not None:
        _write_report(report_path, seed, summary, runner, requests, streams, errors)
    return summary, streams


class StreamWatch:
    """How long the node had no user stream, or no market stream, sampled every half second."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.user_down_s = 0.0
        self.market_down_s = 0.0
        self.samples: list[tuple[float, int, int]] = []  # (monotonic, user connections, market connections)

    def sample(self, sim: BinanceSimulator) -> None:
        now = time.monotonic()
        status = sim.status()
        user, market = status["user_connections"], status["market_connections"]
        if not user:
            self.user_down_s += now - self.last
        if not market:
            self.market_down_s += now - self.last
        self.samples.append((now, user, market))
        self.last = now

    @property
    def user_at_end(self) -> bool:
        return bool(self.samples and self.samples[-1][1])


def _error_lines(folder: Path) -> list[str]:
    out: list[str] = []
    for path in sorted((folder / "logs").glob("*")):
        out += [line.strip() for line in path.read_text(errors="replace").splitlines() if "[ERROR]" in line]
    return out


def _error_kinds(errors: list[str]) -> list[tuple[str, int]]:
    """ERROR lines grouped by what they say, ids and numbers left out."""
    kinds: dict[str, int] = {}
    for line in errors:
        text = line.split("[ERROR]", 1)[-1]
        text = re.sub(r"\(.*", "(...)", text) if "Error on applying" in text else text
        text = re.sub(r"'[^']*'|\d+(\.\d+)?", "_", text)[:160]
        kinds[text] = kinds.get(text, 0) + 1
    return sorted(kinds.items(), key=lambda kv: -kv[1])


def _print_details(
    summary: ChaosSummary,
    runner: ChaosRunner,
    alive: bool,
    errors: list[str],
    requests: list[dict[str, Any]],
    streams: StreamWatch,
) -> None:
    report = summary.report
    out = sys.stderr
    print(f"chaos: node {'still running' if alive else 'EXITED'}; user stream down {streams.user_down_s:.0f} s "
          f"(connected at the end: {streams.user_at_end}), market streams down {streams.market_down_s:.0f} s",
          file=out)  # fmt: skip
    print(f"{len(errors)} ERROR log lines:", file=out)
    for text, count in _error_kinds(errors)[:12]:
        print(f"  {count:4d} x {text}", file=out)
    wall0 = time.time() - time.monotonic()  # request-log times are wall ms; the run's are monotonic
    for episode in report.violations:
        start = episode.started - runner.started
        before = [i for i in runner.injected if i.at <= episode.started][-3:]
        faults = "; ".join(f"{i.fault.kind} at {i.at - runner.started:.1f} s" for i in before) or "none"
        duration = episode.duration(report.now)
        still = " (still open at the end)" if episode.ended is None else ""
        print(
            f"violation at {start:.1f} s: {episode.first.kind} {episode.first.symbol}: {episode.first.detail}; "
            f"last: {episode.last.detail}; lasted {duration:.1f} s{still}; faults before: {faults}",
            file=out,
        )
        begin_ms = (episode.started + wall0 - 30) * 1000
        end_ms = (episode.started + wall0 + 5) * 1000
        for r in requests:
            if r["symbol"] == episode.first.symbol and begin_ms <= r["time_ms"] <= end_ms and r["method"] != "GET":
                at = r["time_ms"] / 1000 - wall0 - runner.started
                code = f" {r['code']}" if r["code"] else ""
                print(f"    {at:8.1f} s {r['method']} {r['path']} {r['order']} -> {r['status']}{code}", file=out)


def _write_report(
    path: Path,
    seed: int,
    summary: ChaosSummary,
    runner: ChaosRunner,
    requests: list[dict[str, Any]],
    streams: StreamWatch,
    errors: list[str],
) -> None:
    """Everything a post-mortem needs, times in seconds from the start of the faults."""
    report = summary.report
    wall0 = time.time() - time.monotonic()
    t0 = runner.started
    content = {
        "seed": seed,
        "faults": [{"at": i.at - t0, "kind": i.fault.kind, "params": i.fault.params, "error": i.error}
                   for i in runner.injected],
        "episodes": [{"start": e.started - t0, "duration": e.duration(report.now), "open": e.ended is None,
                      "violation": report.breached(e), "kind": e.first.kind, "symbol": e.first.symbol,
                      "first": e.first.detail, "last": e.last.detail} for e in report.episodes],
        "requests": [{**r, "at": r["time_ms"] / 1000 - wall0 - t0} for r in requests],
        "streams": [{"at": at - t0, "user": u, "market": m} for at, u, m in streams.samples],
        "errors": errors,
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=1, default=str))
    print(f"chaos: report written to {path}", file=sys.stderr)


def rows(quick: bool, options: argparse.Namespace | None = None) -> list[Row]:
    seed = getattr(options, "seed", None) or 1
    minutes = getattr(options, "minutes", None) or (5.0 if quick else 60.0)
    speed = getattr(options, "speed", None) or 10.0
    mean = getattr(options, "mean_interval", None) or 30.0
    grace = getattr(options, "grace", None) or DEFAULT_GRACE_S
    report = getattr(options, "report", None)
    s, streams = soak(seed, minutes, speed, mean, grace, Path(report) if report else None)
    name = f"chaos soak, seed {seed}, {minutes:g} min at {speed:g}x, 16 symbols"
    out = [
        Row(name, f"faults injected: {kind}", s.injected.get(kind, 0), "", "", FAULT_KINDS[kind].what)
        for kind in FAULT_KINDS
    ]
    hits = ", ".join(f"{what} x{n}" for what, n in sorted(s.hits.items())) or "none"
    out.append(Row(name, "requests the faults hit", sum(s.hits.values()), "", "", hits))
    for kind in sorted(set(s.violations) | set(s.divergences)):
        out.append(
            Row(name, f"invariant {kind}: violations", s.violations.get(kind, 0), "0", "",
                f"{s.divergences.get(kind, 0)} divergences within the allowance; longest {s.longest_s[kind]:.2f} s")
        )  # fmt: skip
    out += [
        Row(name, "invariant violations (all)", s.violation_count, "0", "",
            f"{s.checks:,} checks; allowance {grace:g} s (+ fault effect windows); details on stderr"),
        Row(name, "longest divergence s", s.longest_divergence_s, "", "", "any invariant, within its allowance"),
        Row(name, "longest violation s", s.longest_violation_s, "", "", "to the end of the run if still open"),
        Row(name, "user stream down s", streams.user_down_s, "", "",
            f"connected at the end: {streams.user_at_end}; market streams down {streams.market_down_s:.0f} s"),
        Row(name, "orders sent", s.orders_sent, "", "", "new orders, regular and conditional"),
        Row(name, "trades", s.trades, "", "", "fills on the exchange"),
    ]  # fmt: skip
    return out
