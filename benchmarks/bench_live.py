"""The live node against the simulator: REST weight at steady state, market event -> order latency, memory.

The node runs as in production, in its own process (``nodes.live.runner.run_live_node``, the code behind
``ats live``), with Nautilus's Binance clients pointed at a ``BinanceSimulator`` in this process, which counts
every request and timestamps what it sends and receives.

- REST weight: 50 symbols, hourly scan, up to 5 positions (real 1m klines of 16 symbols, each series replayed
  under up to four symbol names to reach 50; entries come from the strategy's own scan with ``min_score`` 10
  so the five slots fill). Weight is counted by the simulator from the end of the start-up (connect,
  reconciliation, warm-up klines) to the end of the replay. The replay runs at 120x (0.5 s per 1m bar), so
  a wall minute holds two market hours of bar-driven activity: the per-minute figure is an upper bound of
  real time. Time-driven requests run at their real pace within it: open-interest polling (each symbol once
  per 5 minutes: 10 weight/min for 50 symbols) and the listen-key keep-alive (every 30 min).
- Latency: one symbol, a scan every minute and a low ``min_score`` so the strategy enters after nearly every
  closed position; latency = arrival of the entry ``POST /fapi/v1/order`` (type MARKET, not reduce-only) - the
  moment the simulator finished sending the closing kline that triggered it. Both stamps come from the
  simulator's clock.
- Memory: the node process's resident set (VmRSS, and its peak VmHWM) with 50 symbols subscribed (klines,
  mark price, book ticker each), read from /proc at the end of the run.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.table import Row
from catalog.instruments import known_filters, make_perpetual
from nodes.live.config import LiveSettings
from simulator import BinanceSimulator, SimulatorConfig
from simulator.sources import ReplayData, from_files

SHARED = Path(__file__).resolve().parents[2] / "shared/data/binance/ohlcv_2025-03_2025-06"
REAL = [
    "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT", "ADAUSDT", "AVAXUSDT", "BCHUSDT",
    "ENAUSDT", "ETCUSDT", "LAYERUSDT", "LINKUSDT", "LTCUSDT", "SUIUSDT", "XLMUSDT", "XMRUSDT",
]  # fmt: skip
START_MS = 1_747_573_200_000  # 2025-05-18 13:00 UTC, on an hour boundary: the first hourly scan is 60 bars in
KEY, SECRET = "bench-live-key", "bench-live-secret"
BINANCE_WEIGHT_LIMIT = 2400
# Past bars asked for at start; the replay starts up to an hour behind the clock, so at least 120 arrive.
WARMUP = 180


def replay_data(
    symbols: int, bars: int | None, history: int, start_ms: int | None = START_MS
) -> tuple[ReplayData, list[str]]:
    """``symbols`` markets: the 16 real series, then the same series again under names like BTC2USDT."""
    real = REAL[: min(symbols, len(REAL))]
    data = from_files([SHARED / f"{s}-1m.csv.gz" for s in real]).window(start_ms, limit=bars, history=history)
    return renamed_universe(data, symbols)


def renamed_universe(data: ReplayData, symbols: int) -> tuple[ReplayData, list[str]]:
    """``data``'s real series, then the same series again under names like BTC2USDT until there are ``symbols``
    (a renamed series shares the real one's arrays)."""
    real = [s.symbol for s in data.series][:symbols]
    by_symbol = {s.symbol: s for s in data.series}
    out = ReplayData(
        instruments=[i for i in data.instruments if i.raw_symbol.value in real],
        series=[by_symbol[s] for s in real],
        funding=data.funding,
    )
    names = list(real)
    for i in range(len(real), symbols):
        source = real[i % len(real)]
        name = f"{source.removesuffix('USDT')}{i // len(real) + 1}USDT"
        out.instruments.append(make_perpetual(name, known_filters(source)))
        out.series.append(by_symbol[source].renamed(name))
        names.append(name)
    return out, names


class Probe:
    """Timestamps, on the simulator's clock, of the closed klines it writes to its sockets and the new orders it
    receives. A kline is stamped once on the wire (not when queued), so the simulator's own sending of a
    burst (a 200-symbol tick is 600 messages) is not counted as the node's time."""

    def __init__(self, sim: BinanceSimulator) -> None:
        self.klines: list[float] = []
        self.entries: list[float] = []
        handle = sim.rest.handle

        def on_sent(text: str) -> None:
            if '"x":true' in text and '"kline"' in text:
                self.klines.append(time.perf_counter())

        async def timed_handle(request: Any) -> Any:
            if request.method == "POST" and request.path == "/fapi/v1/order":
                query = request.query  # the adapter signs its parameters into the query string
                if query.get("type") == "MARKET" and query.get("reduceOnly", "false").lower() != "true":
                    self.entries.append(time.perf_counter())
            return await handle(request)

        sim.hub.on_sent = on_sent  # before the node connects: each connection takes it when opened
        sim.rest.handle = timed_handle  # type: ignore[method-assign]  # before start: the router takes it then

    def pairs(self) -> list[tuple[float, float]]:
        """(entry received, the last closed kline sent before it) for every entry."""
        out = []
        for arrival in self.entries:
            sent = bisect_right(self.klines, arrival)  # both lists are in time order
            if sent:
                out.append((arrival, self.klines[sent - 1]))
        return out

    def latencies_ms(self) -> list[float]:
        return sorted((arrival - sent) * 1000 for arrival, sent in self.pairs())


def _settings(
    sim: BinanceSimulator,
    symbols: list[str],
    strategy: dict[str, Any],
    folder: Path,
    actors: tuple[dict[str, Any], ...] = (),
) -> LiveSettings:
    return LiveSettings(
        config_path=folder / "bench.toml",
        mode="live",
        trader_id="BENCH-001",
        symbols=tuple(symbols),
        strategy_path="strategies.ats:AtsStrategy",
        strategy_config_path="strategies.config:AtsStrategyConfig",
        strategy_config=strategy,
        leverage=5,
        margin_type="ISOLATED",
        base_url_http=sim.http_url,
        base_url_ws=sim.ws_url,
        base_url_ws_stream=sim.ws_url,
        paper_balance=10_000,
        scan_once=False,
        reconciliation_lookback_mins=60,
        log_level="ERROR",
        log_level_file="WARNING",
        log_directory=folder / "logs",
        actors=actors,
    )


def _start_node(settings: LiveSettings, folder: Path) -> subprocess.Popen[bytes]:
    path = folder / "settings.json"
    path.write_text(json.dumps(asdict(settings), default=str))
    env = {**os.environ, "BINANCE_API_KEY": KEY, "BINANCE_API_SECRET": SECRET}
    out = (folder / "node.out").open("wb")
    return subprocess.Popen([sys.executable, "-m", "benchmarks.bench_live", str(path)], env=env, stdout=out, stderr=out)


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"benchmark: timed out waiting for {what}")
        time.sleep(0.1)


def _memory_kb(pid: int) -> tuple[int, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def _stop(node: subprocess.Popen[bytes]) -> None:
    node.send_signal(2)  # Ctrl-C: the node's own graceful stop
    try:
        node.wait(timeout=60)
    except subprocess.TimeoutExpired:
        node.kill()
        node.wait()


def _running(sim: BinanceSimulator, node: subprocess.Popen[bytes], symbols: list[str], folder: Path) -> None:
    def subscribed() -> bool:
        if node.poll() is not None:
            raise RuntimeError(f"the node exited: {(folder / 'node.out').read_text()[-2000:]}")
        return all(sim.hub.wants(s, "kline") for s in symbols) and sim.request_log.count("/fapi/v1/listenKey") > 0

    _wait(subscribed, 180, "the node to connect and subscribe")
    time.sleep(2.0)  # the warm-up klines requests finish


def weight_and_memory(quick: bool) -> list[Row]:
    symbols_n, bars, bar_s = (50, 90, 0.5) if quick else (50, 180, 0.5)
    data, symbols = replay_data(symbols_n, bars, history=WARMUP)
    config = SimulatorConfig(
        data.instruments,
        data.series,
        KEY,
        SECRET,
        bar_seconds=bar_s,
        autostart=False,
        balance=Decimal(100_000),  # room for five positions at the strategy's sizes
    )
    strategy = {"scan": {"interval_minutes": 60, "grace_ms": 1_000}, "min_score": 10.0, "warmup_bars": WARMUP}
    with tempfile.TemporaryDirectory() as tmp, BinanceSimulator(config) as sim:
        folder = Path(tmp)
        node = _start_node(_settings(sim, symbols, strategy, folder), folder)
        try:
            _running(sim, node, symbols, folder)
            startup = sim.request_log.total_weight()
            sim.play()
            # steady state from the first hourly scan on (its entries fill the five slots)
            _wait(lambda: sim.status()["tick"] >= 4 * 61, 120, "the first scan")
            time.sleep(2.0)
            begin_w, begin_n, begin_t = sim.request_log.total_weight(), sim.status()["requests"], time.monotonic()
            positions_start = sum(1 for p in sim.status()["positions"].values() if float(p["amount"]) != 0)
            _wait(lambda: sim.finished.is_set(), 600, "the end of the replay")
            weight, minutes = sim.request_log.total_weight() - begin_w, (time.monotonic() - begin_t) / 60
            requests = sim.status()["requests"] - begin_n
            market_hours = (bars - 61) / 60
            rss, peak = _memory_kb(node.pid)
            log = sim.request_log
            orders = log.count("/fapi/v1/order", "POST") + log.count("/fapi/v1/algoOrder", "POST")
        finally:
            _stop(node)
    per_minute = weight / minutes
    name = f"live node, {symbols_n} symbols, hourly scan, {positions_start} positions"
    return [
        Row(name, "REST weight/min (steady, 120x replay)", per_minute, "<= 24 (1% of 2,400)",
            "original: 4.6% (110/min)", f"{per_minute / BINANCE_WEIGHT_LIMIT * 100:.2f}% of the limit; "
            f"{weight} weight over {market_hours:.1f} market h"),
        Row(name, "REST requests/min (steady, 120x replay)", requests / minutes, "", "",
            "orders weigh 0 on the IP limit; Binance counts them apart (1,200/min)"),
        Row(name, "REST weight per market hour", weight / market_hours, "", "",
            "bar-driven requests + open-interest polling at its wall-clock pace"),
        Row(name, "start-up REST weight", startup, "", "", f"connect + reconciliation + {symbols_n} warm-up klines"),
        Row(name, "orders sent (whole run)", orders, "", "", ""),
        Row(f"live node, {symbols_n} symbols subscribed", "resident memory MB", rss / 1024, "", "",
            f"peak {peak / 1024:.0f} MB"),
    ]  # fmt: skip


def latency(quick: bool) -> list[Row]:
    bars = 120 if quick else 400
    data, symbols = replay_data(1, bars, history=WARMUP)
    config = SimulatorConfig(data.instruments, data.series, KEY, SECRET, bar_seconds=0.4, autostart=False)
    strategy = {
        "scan": {"interval_minutes": 1}, "min_score": 1.0, "warmup_bars": WARMUP,
        "exits": {"stop_pct": 0.001, "tp1_pct": 0.001, "tp2_pct": 0.002}, "dynamic": {"enabled": False},
    }  # fmt: skip
    sim = BinanceSimulator(config)
    probe = Probe(sim)
    with tempfile.TemporaryDirectory() as tmp, sim:
        folder = Path(tmp)
        node = _start_node(_settings(sim, symbols, strategy, folder), folder)
        try:
            _running(sim, node, symbols, folder)
            sim.play()
            _wait(lambda: sim.finished.is_set(), 600, "the end of the replay")
        finally:
            _stop(node)
    lat = probe.latencies_ms()
    if not lat:
        return [Row("live node, kline -> entry order", "p50 ms", float("nan"), "", "", "no entry happened")]
    p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    name = "live node, closed kline sent -> entry order received (loopback)"
    return [
        Row(name, "p50 ms", p50, "", "original: 150-200 ms WebSocket latency", f"{len(lat)} entries"),
        Row(name, "p99 ms", p99, "<= 5 ms", "", f"max {lat[-1]:.2f} ms; node in its own process"),
    ]


def rows(quick: bool) -> list[Row]:
    return latency(quick) + weight_and_memory(quick)


def _run_node(path: str) -> int:
    """The benchmark's node process: the settings the benchmark wrote, through ``run_live_node``."""
    from nodes.live.runner import run_live_node

    raw = json.loads(Path(path).read_text())
    raw["config_path"] = Path(raw["config_path"])
    raw["log_directory"] = Path(raw["log_directory"]) if raw["log_directory"] else None
    raw["symbols"] = tuple(raw["symbols"])
    raw["actors"] = tuple(raw["actors"])
    return run_live_node(LiveSettings(**raw))


if __name__ == "__main__":
    sys.exit(_run_node(sys.argv[1]))
