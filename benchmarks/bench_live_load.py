"""The live node under load: 200 symbols, the most volatile day of the shared data, replayed at 10x.

``uv run python -m benchmarks live-load [--quick] [--hours H] [--speed X] [--symbols N] [--minutes-1x M]``

- Universe: 200 symbols subscribed (klines, mark price, book ticker each, plus the liquidation stream and the
  open-interest poller): the 16 real 1m series of ``ohlcv_2025-03_2025-06``, each replayed under several
  names (BTCUSDT, BTC2USDT, ...) to reach 200.
- The day: among the days all 16 series cover whole, the UTC day with the largest mean high-low range (as a
  share of the day's open) across the 16 symbols (2025-05-23: 9.9 %; 2025-05-12 is second at 9.8 %). Within
  it, the ``H`` consecutive hours (4 by default, 1 with ``--quick``, 24 for the whole day) with the largest
  mean range are replayed at ``--speed`` (10x: one 1m bar every 6 s).
- The strategy: the real one, scanning all 200 symbols every minute (``scan.interval_minutes`` 1, the
  heaviest setting) with ``min_score`` 10 so the five slots fill, and exits close to the entry (0.4 % stop,
  0.4 % / 0.8 % targets) so positions turn over and many entries are timed. Everything else is the default.
- Latency: closed kline written to the node's socket by the simulator -> the entry ``POST /fapi/v1/order``
  received (both on the simulator's clock). The kline is the last closed kline written before the order: the
  minute's last one (the 200th, the one that completes the scan's minute), not the entered symbol's own kline
  nor the minute's first; every entry of a scan is timed from that same kline, so a scan's second entry counts
  the first one's work too. Split into parts with stamps taken inside the node (wall time, and the node's CPU
  time, which the machine's other load does not stretch): the minute's last bar on the node's message bus, the
  strategy's ``submit_order`` of the entry, the execution client handing it to the HTTP client, the strategy's
  bar handler returning. Also at 1x, on a shorter window (``--minutes-1x``, 10 by default, 4 with ``--quick``).
- Event-loop lag, garbage collections, bars received: measured inside the node by
  ``benchmarks.node_probe.NodeProbe``, during the replay only (the node's start-up is left out).
- Memory: the node's resident set after start-up (connected, subscribed, warmed up), half-way, at the end.
- Messages dropped: closed klines the simulator sent minus bars the node received, plus user-stream events the
  simulator had to drop and messages left unsent on a closed connection.
- Start-up: the highest ``X-MBX-USED-WEIGHT-1M`` while the node connects and warms up, how many of its
  requests were refused (429 / 418), and the weight by request (``weight_by_request``).
- REST weight per minute: everything the node asked from the end of the start-up to the end of the replay,
  per wall minute (at 10x a wall minute holds ten market minutes of bar-driven requests; time-driven ones,
  open interest every 5 min per symbol and the listen-key keep-alive, run at their wall-clock pace).
"""

import argparse
import json
import tempfile
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_live import (
    BINANCE_WEIGHT_LIMIT,
    KEY,
    REAL,
    SECRET,
    SHARED,
    WARMUP,
    Probe,
    _memory_kb,
    _settings,
    _start_node,
    _stop,
    _wait,
    renamed_universe,
)
from benchmarks.table import Row
from nodes.live.runner import FREEZE_AFTER_START_S
from simulator import BinanceSimulator, SimulatorConfig
from simulator.series import KlineSeries
from simulator.sources import ReplayData, from_files

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
STRATEGY: dict[str, Any] = {
    "scan": {"interval_minutes": 1},
    "min_score": 10.0,
    "warmup_bars": WARMUP,
    "exits": {"stop_pct": 0.004, "tp1_pct": 0.004, "tp2_pct": 0.008},
}


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("live-load")
    group.add_argument("--symbols", type=int, default=200, help="symbols subscribed (default 200)")
    group.add_argument("--speed", type=float, default=10.0, help="replay speed of the main run (default 10x)")
    group.add_argument("--hours", type=float, help="market hours at --speed (default 4, --quick 1; 24: the whole day)")
    group.add_argument("--minutes-1x", type=float, help="market minutes replayed at 1x (default 10, --quick 4)")
    group.add_argument(
        "--switch-interval",
        type=float,
        help="what-if: sys.setswitchinterval in the node, seconds (Python's default 0.005)",
    )
    group.add_argument(
        "--profile-dir",
        help="write a cProfile of the node's first 3 minutes' bar handling (scan, orders) of each run to this folder",
    )


def day_ranges(series: list[KlineSeries]) -> list[tuple[int, float]]:
    """(day start ms, mean high-low range / open across symbols), most volatile first, over the UTC days that
    every series covers whole."""
    ranges: dict[int, list[float]] = {}
    for s in series:
        days = s.open_time // DAY_MS
        per_day = DAY_MS // s.interval_ms
        for day in np.unique(days).tolist():
            rows = np.flatnonzero(days == day)
            if len(rows) != per_day:
                continue
            span = (s.high[rows].max() - s.low[rows].min()) / s.open[rows[0]]
            ranges.setdefault(day * DAY_MS, []).append(float(span))
    whole = [(day, float(np.mean(r))) for day, r in ranges.items() if len(r) == len(series)]
    return sorted(whole, key=lambda d: -d[1])


def volatile_window(series: list[KlineSeries], day_ms: int, hours: float) -> int:
    """Start (ms) of the ``hours`` of the day with the largest mean high-low range / open across symbols."""
    span_ms = int(hours * HOUR_MS)
    best, best_start = -1.0, day_ms
    for start in range(day_ms, day_ms + DAY_MS - span_ms + 1, HOUR_MS):
        spans = []
        for s in series:
            rows = np.flatnonzero((s.open_time >= start) & (s.open_time < start + span_ms))
            spans.append((s.high[rows].max() - s.low[rows].min()) / s.open[rows[0]])
        if float(np.mean(spans)) > best:
            best, best_start = float(np.mean(spans)), start
    return best_start


@dataclass
class Run:
    speed: float
    klines_sent: int
    bars_received: int
    dropped_sim: int
    latencies_ms: list[float]
    entry_pairs: list[tuple[float, float]]  # (entry order received, last closed kline sent before it)
    entry_ids: list[tuple[float, str]]  # (entry order received, its client order id), in arrival order
    lag: dict[str, Any]  # the probe's figures: bars, bar_times
    lags_ms: np.ndarray  # event-loop lag samples during the replay
    collections: np.ndarray  # (generation, duration ms) of each garbage collection during the replay
    collection_times: np.ndarray  # when each of them ended (``time.monotonic()``)
    rss_mb: tuple[float, float, float]  # start, middle, end
    weight: int
    wall_minutes: float
    market_minutes: float
    startup_weight: int
    startup_peak_weight: int  # the highest X-MBX-USED-WEIGHT-1M of the start-up
    startup_refused: int  # start-up requests answered 429 / 418
    startup_by_request: list[tuple[str, int, int]]  # (method and path, requests, weight), heaviest first
    startup_s: float  # from the first request to the last of the start-up
    orders: int
    entries: int
    max_positions: int
    node_cpu_s: float
    sent_by_kind: dict[str, int]  # messages the simulator wrote to the node during the replay, by stream kind
    wire: "WireLog"  # when each message went on the wire during the replay


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s


def measure(
    data: ReplayData,
    symbols: list[str],
    speed: float,
    switch_interval_s: float | None = None,
    profile_dir: Path | None = None,
) -> Run:
    config = SimulatorConfig(
        data.instruments,
        data.series,
        KEY,
        SECRET,
        bar_seconds=60.0 / speed,
        autostart=False,
        balance=Decimal(100_000),  # room for five positions at the strategy's sizes
    )
    sim = BinanceSimulator(config)
    probe = Probe(sim)
    entry_ids = _record_entry_ids(sim)
    wire = _count_sent(sim)
    with tempfile.TemporaryDirectory() as tmp, sim:
        folder = Path(tmp)
        probe_path = folder / "probe.json"
        actor = {
            "actor_path": "benchmarks.node_probe:NodeProbe",
            "config_path": "benchmarks.node_probe:NodeProbeConfig",
            "config": {
                "out_path": str(probe_path),
                "instrument_ids": [f"{s}-PERP.BINANCE" for s in symbols],
                "switch_interval_s": switch_interval_s,
                "profile_dir": str(profile_dir) if profile_dir is not None else None,
            },
        }
        node = _start_node(_settings(sim, symbols, STRATEGY, folder, actors=(actor,)), folder)
        try:
            _started(sim, node, symbols, folder, probe_path)
            startup = sim.request_log.total_weight()
            startup_log = sim.request_log.as_dicts()
            rss_start = _memory_kb(node.pid)[0] / 1024
            cpu_start = _cpu_s(node.pid)
            begin_w, begin_t = sim.request_log.total_weight(), time.monotonic()
            wire.clear()
            sim.play()
            half, rss_middle, max_positions = sim.total_ticks // 2, 0.0, 0
            assert sim.finished is not None
            while not sim.finished.is_set():
                if node.poll() is not None:
                    raise RuntimeError(f"the node exited: {(folder / 'node.out').read_text()[-2000:]}")
                status = sim.status()
                max_positions = max(
                    max_positions, sum(1 for p in status["positions"].values() if Decimal(p["amount"]) != 0)
                )
                if not rss_middle and status["tick"] >= half:
                    rss_middle = _memory_kb(node.pid)[0] / 1024
                time.sleep(0.5)
            end_t = time.monotonic()
            wall_minutes = (end_t - begin_t) / 60
            weight = sim.request_log.total_weight() - begin_w
            time.sleep(3.0)  # the last bars reach the node
            rss_end = _memory_kb(node.pid)[0] / 1024
            cpu = _cpu_s(node.pid) - cpu_start
            sent_by_kind = dict(wire.counts)
            dropped = sim.call(lambda: sim.hub.dropped + sim.hub.unsent)
            log = sim.request_log
            orders = log.count("/fapi/v1/order", "POST") + log.count("/fapi/v1/algoOrder", "POST")
        finally:
            _stop(node)
        figures = json.loads(probe_path.read_text())
        lags = np.load(f"{probe_path}.lags.npy")
        collections = np.load(f"{probe_path}.gc.npy")
    during = (lags[:, 0] >= begin_t) & (lags[:, 0] <= end_t)
    gc_during = (collections[:, 0] >= begin_t) & (collections[:, 0] <= end_t)
    return Run(
        speed=speed,
        klines_sent=len(probe.klines),
        bars_received=figures["bars"],
        dropped_sim=dropped,
        latencies_ms=probe.latencies_ms(),
        entry_pairs=probe.pairs(),
        entry_ids=entry_ids,
        lag=figures,
        lags_ms=lags[during, 1],
        collections=collections[gc_during, 1:],
        collection_times=collections[gc_during, 0],
        rss_mb=(rss_start, rss_middle, rss_end),
        weight=weight,
        wall_minutes=wall_minutes,
        market_minutes=sim.total_ticks / 4,
        startup_weight=startup,
        startup_peak_weight=max((r["used_weight_1m"] for r in startup_log), default=0),
        startup_refused=sum(1 for r in startup_log if r["status"] in (418, 429)),
        startup_by_request=weight_by_request(startup_log),
        startup_s=(startup_log[-1]["time_ms"] - startup_log[0]["time_ms"]) / 1000 if startup_log else 0.0,
        orders=orders,
        entries=len(probe.entries),
        max_positions=max_positions,
        node_cpu_s=cpu,
        sent_by_kind=sent_by_kind,
        wire=wire,
    )


def stream_kind(text: str) -> str:
    """The kind of a message the simulator writes: a market stream's name after the symbol (``kline_1m``,
    ``markPrice``, ``bookTicker``; a closed kline is ``kline_1m closed``), ``user`` for the user stream."""
    if not text.startswith('{"stream":"'):
        return "user"
    name = text[11 : text.find('"', 11)]
    kind = name.partition("@")[2] or name
    return f"{kind} closed" if kind.startswith("kline") and '"x":true' in text else kind


@dataclass
class WireLog:
    """Messages the simulator wrote to the node: counts by kind, and the times (``time.perf_counter()``, the clock
    of the ``Probe``'s stamps) of the market-stream messages and of the user-stream ones."""

    counts: dict[str, int]
    market: list[float]
    user: list[float]

    def clear(self) -> None:
        self.counts.clear()
        self.market.clear()
        self.user.clear()

    def burst_start(self, sent: float) -> float:
        """The first market message of the burst that ``sent`` (a message's time) belongs to: walking back from it
        while the market messages before it went out less than ``BURST_GAP_S`` apart (a tick's messages go out
        back to back; ticks are 1.5 s apart at 10x)."""
        i = bisect_right(self.market, sent) - 1
        while i > 0 and self.market[i] - self.market[i - 1] < BURST_GAP_S:
            i -= 1
        return self.market[i] if i >= 0 else sent

    def user_between(self, start: float, end: float) -> int:
        """User-stream messages (fills, order updates, account updates) written in [start, end]."""
        return bisect_right(self.user, end) - bisect_left(self.user, start)


BURST_GAP_S = 0.2


def _count_sent(sim: BinanceSimulator) -> WireLog:
    """Messages written to the node's sockets, by kind and time (wrapped around the ``Probe``'s stamp, before the
    node connects)."""
    wire = WireLog({}, [], [])
    counts, market, user = wire.counts, wire.market, wire.user
    stamp = sim.hub.on_sent

    def on_sent(text: str) -> None:
        (user if text[:11] != '{"stream":"' else market).append(time.perf_counter())
        kind = stream_kind(text)
        counts[kind] = counts.get(kind, 0) + 1
        if stamp is not None:
            stamp(text)

    sim.hub.on_sent = on_sent
    return wire


def _record_entry_ids(sim: BinanceSimulator) -> list[tuple[float, str]]:
    """(arrival, client order id) of each entry the simulator receives. Wrapped around the ``Probe``'s handler:
    its arrival stamps are a few microseconds later than these, the nearest one is the same request."""
    ids: list[tuple[float, str]] = []
    handle = sim.rest.handle

    async def recording_handle(request: Any) -> Any:
        if request.method == "POST" and request.path == "/fapi/v1/order":
            query = request.query
            if query.get("type") == "MARKET" and query.get("reduceOnly", "false").lower() != "true":
                ids.append((time.perf_counter(), query.get("newClientOrderId", "")))
        return await handle(request)

    sim.rest.handle = recording_handle  # type: ignore[method-assign]
    return ids


def weight_by_request(log: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """(method and path, requests, weight) of the simulator's request log, heaviest first."""
    totals: dict[str, list[int]] = {}
    for r in log:
        total = totals.setdefault(f"{r['method']} {r['path']}", [0, 0])
        total[0] += 1
        total[1] += r["weight"]
    return sorted(((k, n, w) for k, (n, w) in totals.items()), key=lambda t: -t[2])


def wait_until_warm(sim: BinanceSimulator, node: Any, symbols: list[str], folder: Path, timeout_s: float) -> None:
    """The node in its own process connected, subscribed to every symbol, every warm-up klines request answered."""

    def ready() -> bool:
        if node.poll() is not None:
            raise RuntimeError(f"the node exited: {(folder / 'node.out').read_text()[-2000:]}")
        return (
            all(sim.hub.wants(s, "kline") for s in symbols)
            and sim.request_log.count("/fapi/v1/listenKey") > 0
            and sim.request_log.count("/fapi/v1/klines") >= len(symbols)
        )

    _wait(ready, timeout_s, "the node to connect, subscribe and warm up")


def _started(sim: BinanceSimulator, node: Any, symbols: list[str], folder: Path, probe_path: Path) -> None:
    """Connected, subscribed to every symbol, every warm-up klines request answered, start-up objects frozen."""
    wait_until_warm(sim, node, symbols, folder, 600)

    def frozen() -> bool:  # the node freezes its start-up objects FREEZE_AFTER_START_S after it started
        return probe_path.exists() and json.loads(probe_path.read_text()).get("frozen", 0) > 10_000

    _wait(frozen, FREEZE_AFTER_START_S + 120, "the node to freeze its start-up objects")
    time.sleep(3.0)


def breakdown_ms(run: "Run", pairs: list[tuple[float, float]] | None = None) -> dict[str, list[float]]:
    """Each entry's latency in parts, wall time: closed kline sent -> the last bar of its time on the node's
    message bus (WebSocket, the adapter's parsing, the data engine, the strategy's handling of the bars before
    it) -> the strategy's ``submit_order`` of this entry (the scan, the checks of the candidates before it and
    its own) -> the execution client hands it to the HTTP client (the risk and execution engines: stock, their
    queues, after the handler returned; in the node, within ``submit_order``) -> the order received by the
    simulator (signing, HTTP). Beside them: ``submit_order`` -> the strategy's bar handler returned (the candidates
    after it). And the node's main-thread CPU time
    of the minute's bars (from its first bar to its last; next to the wall time of the same span: the node idles
    in it when the messages come slower than it handles them), of the last bar -> this entry's ``submit_order``,
    and of the whole handler, which the machine's other load does not stretch. ``pairs``: only these entries
    (``Run.entry_pairs`` by default)."""
    stamps = sorted(v[4:] + v[2:4] for v in run.lag.get("bar_times", {}).values() if v[1] > 0)
    entries: dict[str, list[float]] = run.lag.get("entries", {})
    parts: dict[str, list[float]] = {
        "to the strategy": [],
        "last bar -> its submit_order": [],
        "submit_order -> handler returned": [],
        "submit_order -> exec client": [],
        "exec client -> received (http)": [],
        "wall: bars of the minute": [],
        "cpu: bars of the minute": [],
        "cpu: last bar -> its submit_order": [],
        "cpu: scan and entries": [],
        "sim: the close tick on the wire, first message -> last kline": [],
        "to the strategy, bursts with user-stream events": [],
        "to the strategy, bursts without": [],
        "cpu: bars of the minute, bursts with user-stream events": [],
        "cpu: bars of the minute, bursts without": [],
        "to the strategy, bursts with a collection": [],
    }
    for arrival, sent in run.entry_pairs if pairs is None else pairs:
        before = [s for s in stamps if sent <= s[0] <= arrival]
        if not before:
            continue
        bus, bus_cpu, handled, handled_cpu, first, first_cpu = before[-1]
        parts["to the strategy"].append((bus - sent) * 1000)
        burst = run.wire.burst_start(sent)
        parts["sim: the close tick on the wire, first message -> last kline"].append((sent - burst) * 1000)
        fills = "with user-stream events" if run.wire.user_between(burst, bus) else "without"
        parts[f"to the strategy, bursts {fills}"].append((bus - sent) * 1000)
        parts[f"cpu: bars of the minute, bursts {fills}"].append((bus_cpu - first_cpu) * 1000)
        if np.any((run.collection_times >= burst) & (run.collection_times <= bus)):
            parts["to the strategy, bursts with a collection"].append((bus - sent) * 1000)
        parts["wall: bars of the minute"].append((bus - first) * 1000)
        parts["cpu: bars of the minute"].append((bus_cpu - first_cpu) * 1000)
        parts["cpu: scan and entries"].append((handled_cpu - bus_cpu) * 1000)
        nearest = min(run.entry_ids, key=lambda e: abs(e[0] - arrival), default=None)
        node = entries.get(nearest[1]) if nearest is not None and abs(nearest[0] - arrival) < 0.005 else None
        if node is None:
            continue
        submit, submit_cpu, submitted = node
        parts["last bar -> its submit_order"].append((submit - bus) * 1000)
        parts["submit_order -> handler returned"].append((handled - submit) * 1000)
        parts["submit_order -> exec client"].append((submitted - submit) * 1000)
        parts["exec client -> received (http)"].append((arrival - submitted) * 1000)
        parts["cpu: last bar -> its submit_order"].append((submit_cpu - bus_cpu) * 1000)
    return parts


def first_scan_split(run: "Run") -> tuple[list[float], list[float]]:
    """Latencies (ms) of the entries of the first scan after start, and of every later scan. The first scan
    runs code paths the node has not run yet (the first orders, their topics, the values of 200 symbols after the
    warm-up): a one-off that a single run's p99 over ~50 entries would otherwise report as the steady state."""
    if not run.entry_pairs:
        return [], []
    first_kline = min(sent for _, sent in run.entry_pairs)
    first = sorted((a - s) * 1000 for a, s in run.entry_pairs if s == first_kline)
    later = sorted((a - s) * 1000 for a, s in run.entry_pairs if s != first_kline)
    return first, later


def _span(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f} ms" if values else "-"


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _rows(run: Run, name: str, target_p99: str) -> list[Row]:
    lat = run.latencies_ms
    start, middle, end = run.rss_mb
    growth = (end - start) / start * 100
    pace = run.market_minutes / run.wall_minutes
    lost = run.klines_sent - run.bars_received + run.dropped_sim
    parts = breakdown_ms(run)
    collected = len(run.collections) > 0
    gc_total = float(run.collections[:, 1].sum()) if collected else 0.0
    gc_cpu = float(run.collections[:, 2].sum()) if collected else 0.0
    gc_max = float(run.collections[:, 1].max()) if collected else 0.0
    full = run.collections[run.collections[:, 0] == 2] if collected else run.collections
    full_cpu = float(full[:, 2].max()) if len(full) else 0.0
    first, later = first_scan_split(run)
    first_kline = min((sent for _, sent in run.entry_pairs), default=None)
    first_parts = breakdown_ms(run, [p for p in run.entry_pairs if p[1] == first_kline])
    symbols_n = run.lag.get("symbols") or 1
    per_min = max(run.market_minutes, 1.0) * symbols_n
    return [
        Row(name, "kline -> entry order p50 ms", _percentile(lat, 50), "", "",
            f"{len(lat)} entries; {run.max_positions} positions at most at once"),
        Row(name, "kline -> entry order p99 ms", _percentile(lat, 99), target_p99, "",
            f"max {max(lat, default=float('nan')):.1f} ms"),
        Row(name, "  scans after the first: p99 ms", _percentile(later, 99), target_p99, "",
            f"p50 {_percentile(later, 50):.1f} ms, {len(later)} entries"),
        Row(name, "  the first scan after start: max ms", max(first, default=float("nan")), "", "",
            f"{len(first)} entries, min {min(first, default=float('nan')):.1f} ms"),
        *(Row(name, f"  part: {part} p50 ms", _percentile(values, 50), "", "",
              f"p99 {_percentile(values, 99):.1f} ms, {len(values)} entries; "
              f"the first scan: {_span(first_parts.get(part, []))}")
          for part, values in parts.items()),
        Row(name, "event-loop lag p99 ms", _percentile(list(run.lags_ms), 99), "", "",
            f"p50 {_percentile(list(run.lags_ms), 50):.2f}, max {_percentile(list(run.lags_ms), 100):.0f} ms; "
            f"{len(run.lags_ms):,} samples of a 20 ms sleep during the replay"),
        Row(name, "garbage collection ms / wall min", gc_total / run.wall_minutes, "", "",
            f"{len(run.collections)} collections ({len(full)} full), longest {gc_max:.0f} ms; cpu "
            f"{gc_cpu / run.wall_minutes:.0f} ms/min, longest full {full_cpu:.0f} ms"),
        Row(name, "node memory MB start / middle / end", end, "growth <= 10 %", "",
            f"{start:.0f} / {middle:.0f} / {end:.0f} MB: {growth:+.1f} %"),
        Row(name, "REST weight / wall min", run.weight / run.wall_minutes, "", "",
            f"{run.weight / run.wall_minutes / BINANCE_WEIGHT_LIMIT * 100:.1f} % of 2,400; {run.orders} orders"),
        Row(name, "start-up: peak weight in a minute", run.startup_peak_weight, "<= 1,920 (80 % of 2,400)",
            "before pacing: 2,704, 61-63 refused",
            f"{run.startup_weight} weight in all over {run.startup_s:.0f} s; "
            f"{run.startup_refused} requests refused with 429/418"),
        Row(name, "start-up: weight by request", run.startup_weight, "", "",
            "; ".join(f"{k.split('/')[-1]} {n}x {w}" for k, n, w in run.startup_by_request[:8])),
        Row(name, "messages dropped", lost, "0", "",
            f"{run.klines_sent:,} closed klines sent, {run.bars_received:,} bars received; "
            f"{run.dropped_sim} dropped/unsent by the simulator"),
        Row(name, "messages to the node per market min per symbol", sum(run.sent_by_kind.values()) / per_min, "", "",
            ", ".join(f"{k} {v / per_min:.2f}" for k, v in sorted(run.sent_by_kind.items(), key=lambda kv: -kv[1]))
            + f" ({run.market_minutes:.0f} market min, {symbols_n} symbols)"),
        Row(name, "replay pace achieved (x real time)", pace, f"{run.speed:g}", "",
            f"{run.market_minutes:.0f} market min in {run.wall_minutes:.1f} wall min; "
            f"node cpu {run.node_cpu_s / run.wall_minutes / 60 * 100:.0f} % of a core"),
    ]  # fmt: skip


def rows(quick: bool, options: argparse.Namespace | None = None) -> list[Row]:
    symbols_n = getattr(options, "symbols", None) or 200
    speed = getattr(options, "speed", None) or 10.0
    hours = getattr(options, "hours", None) or (1.0 if quick else 4.0)
    minutes_1x = getattr(options, "minutes_1x", None) or (4.0 if quick else 10.0)
    switch_interval_s = getattr(options, "switch_interval", None)
    profile_dir = getattr(options, "profile_dir", None)
    everything = from_files([SHARED / f"{s}-1m.csv.gz" for s in REAL])
    ranked = day_ranges(everything.series)
    day_ms, day_range = ranked[0]
    start_ms = volatile_window(everything.series, day_ms, hours)
    day = time.strftime("%Y-%m-%d", time.gmtime(day_ms / 1000))
    hour = time.strftime("%H:%M", time.gmtime(start_ms / 1000))
    out: list[Row] = []
    for run_speed, bars in ((speed, int(hours * 60)), (1.0, int(minutes_1x))):
        data, names = renamed_universe(everything.window(start_ms, limit=bars, history=WARMUP), symbols_n)
        folder = None
        if profile_dir is not None:
            folder = Path(profile_dir) / f"{run_speed:g}x"
            folder.mkdir(parents=True, exist_ok=True)
        run = measure(data, names, run_speed, switch_interval_s, folder)
        name = f"live node, {symbols_n} symbols, {day} from {hour} UTC ({bars} min) at {run_speed:g}x"
        if switch_interval_s is not None:
            name += f", switch interval {switch_interval_s * 1000:g} ms"
        out += _rows(run, name, "<= 100 ms" if run_speed >= 10 else "")
    out.append(
        Row("live-load: the day", "mean high-low range %", day_range * 100, "", "",
            f"{day}, the most volatile of {len(ranked)} whole days across the 16 real series; next: "
            + ", ".join(f"{time.strftime('%m-%d', time.gmtime(d / 1000))} {r * 100:.1f} %" for d, r in ranked[1:3]))
    )  # fmt: skip
    return out
