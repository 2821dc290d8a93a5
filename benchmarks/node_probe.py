"""An actor the live benchmarks add to the node under test: it measures from inside the node's process.

- Event-loop lag: a task on the node's asyncio loop sleeps ``lag_interval_ms`` again and again; how much later
  than asked it wakes is the lag every other callback on that loop (WebSocket messages, timers, order
  handling) waited too.
- Bars received: it listens to the universe's bars on the message bus (the strategy's subscription brings them)
  and counts them, so the benchmark can compare them with the closed klines the simulator sent: a difference is a
  message lost on the way.
- Where a scan's time goes: for each bar time, the moment the universe's last bar of that time reached the
  message bus (a handler of higher priority than the strategy's, so before the strategy scans) and the moment
  the strategy's handler returned (after the scan and its entries). Times are ``time.monotonic()``
  (CLOCK_MONOTONIC, the same clock in every process of the machine), comparable with the simulator's stamps. The
  loop thread's cpu time (a system call, not the vDSO's clock: ~1 us) is read at a bar time's first bar and at
  its universe's last one only: these handlers run inside the latency they measure.

- Where an entry's time goes after the scan: for each entry order (tagged ``ATS:ENTRY``) the moment the strategy
  called ``submit_order`` (its ``OrderInitialized`` event is published from inside that call) and the moment the
  execution client handed it to the HTTP client (its ``OrderSubmitted`` event carries the time it was generated,
  just before the request; on Nautilus's clock, turned into ``time.monotonic()``).
- Optionally (``profile_dir``), a profile (``cProfile``, the loop thread) of each of the first ``profile_minutes``
  bar times: from its first bar on the bus to the next bar time's first bar, so the scan, its orders and the
  engines' hops after it are in; ``<profile_dir>/minute<N>.prof``. The first one against the later ones shows
  what only the first scan after start pays (Python-level calls only: Nautilus's Cython is seen through the
  Python it calls).
- Garbage collection: the time and generation of every collection of Python's cyclic collector (``gc.callbacks``).

Figures go to ``out_path`` (JSON: bar counts and frozen objects every ``write_interval_s``, the bar times at stop)
and, at stop, the time series to ``<out_path>.lags.npy`` (time, lag ms) and ``<out_path>.gc.npy`` (time,
generation, wall ms, thread cpu ms); each written to a temporary file, then renamed, so a reader never sees half a
file. Times are ``time.monotonic()``.
"""

import asyncio
import cProfile
import gc
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.events import OrderInitialized, OrderSubmitted


class NodeProbeConfig(ActorConfig, frozen=True):
    out_path: str
    instrument_ids: tuple[str, ...] = ()
    bar_spec: str = "1-MINUTE-LAST-EXTERNAL"
    lag_interval_ms: int = 20
    write_interval_s: float = 10.0
    # What-if: the interpreter's thread switch interval (``sys.setswitchinterval``; Python's default 5 ms) set
    # in the node at start. Nautilus's WebSocket readers are Rust threads that take the GIL to hand each message
    # to the event loop: while the loop's thread runs Python, each waits up to this interval.
    switch_interval_s: float | None = None
    profile_dir: str | None = None
    profile_minutes: int = 3


class NodeProbe(Actor):
    def __init__(self, config: NodeProbeConfig) -> None:
        super().__init__(config)
        self._out = Path(config.out_path)
        self._lags: list[tuple[float, float]] = []
        self._collections: list[tuple[float, int, float, float]] = []
        self._gc_started = self._gc_cpu = 0.0
        self._heap: dict[str, object] = {}
        self._bars = 0  # bars of the universe received
        self._universe = len(config.instrument_ids)
        self._task: asyncio.Task[None] | None = None
        # bar time (ns) -> [bars seen before the strategy, seen after it, then monotonic and thread-cpu seconds
        # of: the first bar before the strategy, the last bar before it, the last bar after it]
        self._times: dict[int, list[float]] = {}
        self._bar_topics: list[str] = []
        self._frozen = 0
        # client order id of each entry -> [monotonic and thread-cpu seconds at submit_order, monotonic seconds at
        # the execution client's OrderSubmitted (NaN until it comes)]
        self._entries: dict[str, list[float]] = {}
        self._wall_offset = time.time() - time.monotonic()  # Nautilus's clock (unix ns) -> time.monotonic()
        self._profile: cProfile.Profile | None = None
        self._profiled = 0

    def on_start(self) -> None:
        if self.config.switch_interval_s is not None:
            sys.setswitchinterval(self.config.switch_interval_s)
        for instrument_id in self.config.instrument_ids:
            bar_type = BarType.from_str(f"{instrument_id}-{self.config.bar_spec}")
            self._bar_topics.append(f"data.bars.{bar_type}")
            self.msgbus.subscribe(topic=self._bar_topics[-1], handler=self._before_strategy, priority=10)
        asyncio.get_running_loop().call_soon(self._subscribe_after_strategy)
        self.msgbus.subscribe(topic="events.order.*", handler=self._on_order_event)
        self._task = asyncio.get_running_loop().create_task(self._measure())
        gc.callbacks.append(self._on_gc)

    def on_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        self._heap = _heap_census()
        self._write()

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started, self._gc_cpu = time.monotonic(), time.thread_time()
        else:
            now, cpu = time.monotonic(), time.thread_time()
            wall_ms, cpu_ms = (now - self._gc_started) * 1000, (cpu - self._gc_cpu) * 1000
            self._collections.append((now, info["generation"], wall_ms, cpu_ms))

    def _subscribe_after_strategy(self) -> None:
        # Handlers of one priority run in the order they subscribed: subscribed after the strategy's start (the
        # trader starts its actors, then its strategies, in one call), this one runs after the strategy's handler.
        # (Subscribed at the first bar instead, it cost the first scan 200 subscriptions: ~15 ms.)
        for topic in self._bar_topics:
            self.msgbus.subscribe(topic=topic, handler=self._after_strategy)

    def _before_strategy(self, bar: Bar) -> None:
        self._bars += 1
        entry = self._times.get(bar.ts_event)
        if entry is None:
            self._next_profile()
            now, cpu = time.monotonic(), time.thread_time()
            entry = self._times[bar.ts_event] = [0, 0, now, cpu, now, cpu, 0.0, 0.0]
        entry[0] += 1
        entry[4] = time.monotonic()
        if entry[0] == self._universe:
            entry[5] = time.thread_time()

    def _next_profile(self) -> None:
        """A new bar time: the last one's profile written, the next one's started."""
        if self.config.profile_dir is None:
            return
        if self._profile is not None:
            self._profile.disable()
            self._profile.dump_stats(Path(self.config.profile_dir) / f"minute{self._profiled}.prof")
            self._profile = None
        if self._profiled < self.config.profile_minutes:
            self._profiled += 1
            self._profile = cProfile.Profile()
            self._profile.enable()

    def _on_order_event(self, event: object) -> None:
        if isinstance(event, OrderInitialized):
            if "ATS:ENTRY" in (event.tags or ()):
                self._entries[event.client_order_id.value] = [time.monotonic(), time.thread_time(), float("nan")]
        elif isinstance(event, OrderSubmitted):
            entry = self._entries.get(event.client_order_id.value)
            if entry is not None:
                entry[2] = event.ts_event / 1e9 - self._wall_offset

    def _after_strategy(self, bar: Bar) -> None:
        entry = self._times[bar.ts_event]
        entry[1] += 1
        entry[6] = time.monotonic()
        if entry[1] == self._universe:
            entry[7] = time.thread_time()

    async def _measure(self) -> None:
        interval = self.config.lag_interval_ms / 1000
        next_write = time.monotonic() + self.config.write_interval_s
        while True:
            asked = time.monotonic()
            await asyncio.sleep(interval)
            now = time.monotonic()
            self._lags.append((now, (now - asked - interval) * 1000))
            if time.monotonic() >= next_write:
                next_write += self.config.write_interval_s
                self._write(series=False)

    def _frozen_count(self) -> int:
        """Objects frozen: counted until the replay's first bar (the benchmark waits for the node's freeze of its
        start-up objects before it plays), then kept: the count walks every frozen object, 12-18 ms on the loop."""
        if not self._times:
            self._frozen = gc.get_freeze_count()
        return self._frozen

    def _write(self, series: bool = True) -> None:
        """The figures; with ``series`` also the time series (bar times, lags, collections). While the node runs
        only the small figures are written: the series grow with the run, and writing them every few seconds
        held the node's event loop for milliseconds, the very lag and latency measured (at stop: everything)."""
        figures = {
            "bars": self._bars,
            "symbols": self._universe,
            "heap": self._heap,
            "frozen": self._frozen_count(),
            "written_at": time.time(),
        }
        if series:
            figures["bar_times"] = {str(ts): entry for ts, entry in self._times.items()}
            figures["entries"] = self._entries
        _replace(self._out, json.dumps(figures).encode())
        if series:
            _replace(Path(f"{self._out}.lags.npy"), _npy(np.asarray(self._lags, dtype=np.float64).reshape(-1, 2)))
            gc_series = np.asarray(self._collections, dtype=np.float64).reshape(-1, 4)
            _replace(Path(f"{self._out}.gc.npy"), _npy(gc_series))


def _heap_census() -> dict[str, object]:
    """What the cyclic collector tracks at the end: frozen and live counts, the commonest types."""
    tracked = gc.get_objects()
    types: dict[str, int] = {}
    for obj in tracked:
        name = type(obj).__qualname__
        types[name] = types.get(name, 0) + 1
    top = sorted(types.items(), key=lambda kv: -kv[1])[:20]
    return {"frozen": gc.get_freeze_count(), "tracked": len(tracked), "top_types": top}


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _replace(path: Path, content: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)
