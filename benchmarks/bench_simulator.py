"""Simulator throughput and load.

- Throughput: market events per second it replays to one WebSocket client, unpaced. One aiohttp client
  subscribes to every market stream of BTCUSDT (kline, aggTrade, bookTicker, depth, markPrice) on a combined
  connection; the simulator replays real 1-minute bars as fast as the client reads them. An event is one
  stream message received by the client.
- Load: wall time and resident memory to read the data and start a simulator of 200 symbols with a month of 1m
  klines each, in a fresh process. The shared data holds 16 symbols with 1m klines: the 200 are those 16 real
  series, each replayed under several names (BTCUSDT, BTC2USDT, ... sharing one set of arrays).
"""

import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from benchmarks.table import Row
from catalog.instruments import binance_perpetual
from simulator import BinanceSimulator, SimulatorConfig
from simulator.capture import read_capture
from simulator.sources import from_files

SHARED = Path(__file__).resolve().parents[2] / "shared/data/binance"
DATA = SHARED / "ohlcv_2025-03_2025-06/BTCUSDT-1m.csv.gz"
CAPTURE = SHARED / "ws_capture/btcusdt_20240808.gz"
ALL_STREAMS = [
    "btcusdt@kline_1m",
    "btcusdt@aggTrade",
    "btcusdt@bookTicker",
    "btcusdt@depth@0ms",
    "btcusdt@markPrice@1s",
]


async def _receive(
    sim: BinanceSimulator, streams: list[str], expected: int, idle_timeout: float = 30
) -> tuple[int, float]:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{sim.ws_url}/stream?streams={'/'.join(streams)}", max_msg_size=0) as ws:
            await asyncio.sleep(0.2)  # the subscription is registered on the server's loop
            started = time.perf_counter()
            await asyncio.to_thread(sim.play)
            received = 0
            last = started
            while received < expected:
                try:
                    msg = await ws.receive(timeout=idle_timeout)
                except TimeoutError:
                    break  # the replay is over
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                received += 1
                last = time.perf_counter()
            return received, last - started


def _measure(bars: int, streams: list[str]) -> tuple[float, int]:
    data = from_files([DATA]).window(limit=bars)
    config = SimulatorConfig(
        data.instruments, data.series, "bench-key", "bench-secret", bar_seconds=0.0, autostart=False
    )
    with BinanceSimulator(config) as sim:
        expected = sim.total_ticks * len(streams)
        received, seconds = asyncio.run(_receive(sim, streams, expected))
    if received != expected:
        raise RuntimeError(f"client received {received} of {expected} events")
    return received / seconds, received


def _measure_capture(max_events: int) -> tuple[float, int]:
    """The real capture (trades, bookTicker, depth diffs) replayed unpaced to a client of all its streams."""
    capture = read_capture(CAPTURE)
    capture = type(capture)(capture.symbol, capture.snapshot, capture.events[:max_events])
    config = SimulatorConfig(
        [binance_perpetual("BTCUSDT")],
        [],
        "bench-key",
        "bench-secret",
        captures=[capture],
        capture_speed=1e9,
        autostart=False,
    )
    with BinanceSimulator(config) as sim:
        received, seconds = asyncio.run(_receive(sim, ALL_STREAMS, 10**9, idle_timeout=2))
    return received / seconds, received


def _load(symbols: int) -> dict[str, float]:
    """Read the data of ``symbols`` markets and start (and stop) a simulator on them: this process's figures."""
    from benchmarks.bench_live import replay_data

    before_kb = _rss_kb()
    started = time.perf_counter()
    data, _ = replay_data(symbols, bars=None, history=0, start_ms=None)
    read_s = time.perf_counter() - started
    config = SimulatorConfig(data.instruments, data.series, "bench-key", "bench-secret", autostart=False)
    with BinanceSimulator(config) as sim:
        ticks = sim.total_ticks
    return {
        "read_s": read_s,
        "total_s": time.perf_counter() - started,
        "klines": data.replayed,
        "ticks": ticks,
        "rss_mb": _rss_kb() / 1024,
        "added_mb": (_rss_kb() - before_kb) / 1024,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _rss_kb() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def load_rows(symbols: int) -> list[Row]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_simulator", "load", str(symbols)],
        capture_output=True,
        text=True,
        check=True,
    )
    m = json.loads(done.stdout.splitlines()[-1])
    name = f"simulator load, {symbols} symbols x 1 month of 1m klines (16 real series under several names)"
    note = f"{m['klines']:,.0f} klines, {m['ticks'] // 4:,.0f} bar times; files read in {m['read_s']:.1f} s"
    return [
        Row(name, "load + start s", m["total_s"], "well under 60 s", "before: 16 symbols ~100 s", note),
        Row(name, "resident MB", m["rss_mb"], "< 4,000", "before: 16 symbols 1,660 MB",
            f"peak {m['peak_mb']:,.0f} MB; {m['added_mb']:,.0f} MB over the imports (Nautilus, pandas)"),
    ]  # fmt: skip


def rows(quick: bool) -> list[Row]:
    if not DATA.exists():
        raise FileNotFoundError(f"benchmark data not found: {DATA}")
    bars = 300 if quick else 3000
    out = load_rows(200)
    for label, streams in (("5 streams", ALL_STREAMS), ("kline only", ALL_STREAMS[:1])):
        rate, events = _measure(bars, streams)
        out.append(
            Row(
                benchmark=f"simulator replay to 1 client, BTCUSDT 1m, {label}",
                metric="events/s",
                value=rate,
                target=">= 5,000",
                note=f"{events:,} events from {bars:,} bars, unpaced",
            )
        )
    if CAPTURE.exists():
        rate, events = _measure_capture(5_000 if quick else 60_000)
        out.append(
            Row(
                benchmark="simulator replay to 1 client, BTCUSDT ws capture (trades + book), 5 streams",
                metric="events/s",
                value=rate,
                target=">= 5,000",
                note=f"{events:,} events, unpaced",
            )
        )
    return out


if __name__ == "__main__" and sys.argv[1:2] == ["load"]:
    print(json.dumps(_load(int(sys.argv[2]))))
