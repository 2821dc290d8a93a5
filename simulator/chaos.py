"""Seeded random faults for soak runs: a reproducible schedule drawn from the simulator's fault set, and a
runner that injects it into a running simulator.

``chaos_schedule(seed, duration_s)`` draws faults at exponential intervals (``mean_interval_s`` apart on
average), each of a kind of ``FAULT_KINDS`` (uniformly) with its parameters drawn from the ranges below: the
same seed gives the same faults, at the same offsets, with the same parameters. ``ChaosRunner(sim, schedule)``
injects them on the simulator's loop at their offsets from ``start()`` and, given an ``InvariantMonitor``,
tells it each fault's effect window (see ``simulator.invariants``): from the injection to when a client can
have recovered (``effect_s``).

What a run around the schedule does still depends on timing (the machine, the node's reactions), as any live
system does: the schedule is reproducible, the outcome is a measurement.
"""

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.invariants import InvariantMonitor
    from simulator.server import BinanceSimulator

# A dropped stream or an expired listen key: the client notices, reconnects, resubscribes (a new listen key for
# the user stream) and reconciles what it missed. Allowed this long before a violation it causes counts.
RECOVERY_S = 10.0


@dataclass(frozen=True)
class FaultKind:
    """How to draw one kind of fault: its ``inject`` name and parameters, and how long its effect lasts."""

    fault: str  # the name ``BinanceSimulator.inject`` takes
    draw: Callable[[random.Random], dict[str, Any]]
    effect_s: Callable[[dict[str, Any]], float]
    what: str


FAULT_KINDS: dict[str, FaultKind] = {
    "ws_drop": FaultKind(
        "drop_connections",
        lambda r: r.choice(
            [{"market": True, "user": True}, {"market": True, "user": False}, {"market": False, "user": True}]
        ),
        lambda p: RECOVERY_S,
        "WebSocket connections closed abruptly (market, user or both)",
    ),
    "user_silence": FaultKind(
        "silence",
        lambda r: {"seconds": round(r.uniform(2.0, 8.0), 1), "market": False, "user": True},
        lambda p: p["seconds"] + RECOVERY_S,
        "the user data stream sends nothing for 2-8 s (its events are lost, the connection stays open)",
    ),
    "listen_key_expiry": FaultKind(
        "expire_listen_key",
        lambda r: {},
        lambda p: RECOVERY_S,
        "listenKeyExpired, the key invalidated, the user stream closed",
    ),
    "rate_limit_429": FaultKind(
        "throttle",
        lambda r: {"status": 429, "retry_after": r.randint(1, 5), "count": r.randint(1, 3)},
        lambda p: p["retry_after"],
        "the next 1-3 REST requests get 429 -1003 with Retry-After 1-5 s",
    ),
    "ip_ban_418": FaultKind(
        "ban",
        lambda r: {"seconds": round(r.uniform(5.0, 20.0), 1)},
        lambda p: p["seconds"],
        "every REST request gets 418 (IP banned until ...) for 5-20 s",
    ),
    "latency_spike": FaultKind(
        "latency",
        lambda r: {"seconds": round(r.uniform(0.3, 2.0), 2), "duration": round(r.uniform(5.0, 20.0), 1)},
        lambda p: p["duration"] + p["seconds"],
        "every REST answer delayed 0.3-2 s for 5-20 s",
    ),
    "reject_entry_2019": FaultKind(
        "reject_next_order",
        lambda r: {"code": -2019, "target": "entry"},
        lambda p: 0.0,
        "the next entry (non-reduce-only order) rejected with -2019 margin insufficient",
    ),
    "reject_exit_2019": FaultKind(
        "reject_next_order",
        lambda r: {"code": -2019, "target": "exit"},
        lambda p: 0.0,
        "the next exit (reduce-only order, stop or take-profit) rejected with -2019",
    ),
    "reject_stop_placement": FaultKind(
        "reject_next_order",
        lambda r: {"code": r.choice([-1008, -2021]), "target": "stop"},
        lambda p: 0.0,
        "the next stop placement rejected (-1008 server busy or -2021 would trigger at once)",
    ),
    "reject_stop_cancel": FaultKind(
        "reject_next_order",
        lambda r: {"code": -1008, "target": "stop_cancel"},
        lambda p: 0.0,
        "the next cancel of a conditional order (a stop being moved) rejected with -1008 server busy",
    ),
}


@dataclass(frozen=True)
class ChaosFault:
    at_s: float  # seconds after the run's start
    kind: str  # a key of FAULT_KINDS
    params: dict[str, Any] = field(hash=False)

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.at_s:7.1f} s  {self.kind}({args})"


def chaos_schedule(
    seed: int, duration_s: float, mean_interval_s: float = 30.0, kinds: tuple[str, ...] = tuple(FAULT_KINDS)
) -> list[ChaosFault]:
    """Faults at exponential intervals over ``duration_s``, kinds drawn uniformly from ``kinds``."""
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
    if not kinds or duration_s <= 0 or mean_interval_s <= 0:
        raise ValueError("a schedule needs fault kinds, a duration > 0 and a mean interval > 0")
    rng = random.Random(seed)
    out: list[ChaosFault] = []
    at = rng.expovariate(1 / mean_interval_s)
    while at < duration_s:
        kind = rng.choice(kinds)
        out.append(ChaosFault(round(at, 2), kind, FAULT_KINDS[kind].draw(rng)))
        at += rng.expovariate(1 / mean_interval_s)
    return out


@dataclass
class Injected:
    fault: ChaosFault
    at: float  # monotonic
    result: Any = None
    error: str = ""


@dataclass
class ChaosRunner:
    """Injects a schedule into a running simulator; ``injected`` records what was applied and when."""

    sim: "BinanceSimulator"
    schedule: list[ChaosFault]
    monitor: "InvariantMonitor | None" = None
    injected: list[Injected] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self.started = 0.0

    def start(self) -> "ChaosRunner":
        def begin() -> None:
            self.started = time.monotonic()
            self._task = self.sim.spawn(self._run())

        self.sim.call(begin)
        return self

    def stop(self) -> None:
        """Stop injecting and clear what is still pending (a one-shot rejection no request met, a ban...)."""

        def end() -> None:
            if self._task is not None:
                self._task.cancel()
            self.sim.faults.clear()

        self.sim.call(end)

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    async def _run(self) -> None:
        for fault in self.schedule:
            delay = self.started + fault.at_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            kind = FAULT_KINDS[fault.kind]
            record = Injected(fault, time.monotonic())
            try:
                record.result = await self.sim.inject(kind.fault, dict(fault.params))
            except Exception as e:  # a fault that cannot apply now (e.g. no listen key yet) is recorded, not fatal
                record.error = repr(e)
            self.injected.append(record)
            if self.monitor is not None:
                self.monitor.note_fault(fault.kind, record.at, record.at + kind.effect_s(fault.params))

    def counts(self) -> dict[str, int]:
        """Faults injected, by kind."""
        out: dict[str, int] = {}
        for record in self.injected:
            out[record.fault.kind] = out.get(record.fault.kind, 0) + 1
        return out


@dataclass
class ChaosSummary:
    """What a chaos run did and what the invariant monitor saw, in numbers."""

    injected: dict[str, int]  # fault kind -> times injected
    hits: dict[str, int]  # what the faults did to requests: "418", "429", "reject stop -1008", ...
    violations: dict[str, int]  # invariant kind -> episodes that outlasted their allowance
    divergences: dict[str, int]  # invariant kind -> episodes that ended within it
    longest_s: dict[str, float]  # invariant kind -> the longest episode
    orders_sent: int  # new-order requests (regular and conditional) the exchange received
    trades: int  # fills on the exchange
    checks: int  # invariant checks run
    episodes: list[Any]  # the monitor's episodes (simulator.invariants.Episode)
    report: Any  # the monitor's InvariantReport

    @property
    def violation_count(self) -> int:
        return sum(self.violations.values())

    @property
    def longest_divergence_s(self) -> float:
        """The longest episode that ended within its allowance."""
        return max((e.duration(self.report.now) for e in self.report.divergences), default=0.0)

    @property
    def longest_violation_s(self) -> float:
        """The longest episode that outlasted its allowance (measured to the end of the run if still open)."""
        return max((e.duration(self.report.now) for e in self.report.violations), default=0.0)


def summarize(sim: "BinanceSimulator", runner: ChaosRunner, monitor: "InvariantMonitor") -> ChaosSummary:
    report = monitor.report()
    hits: dict[str, int] = {}
    for at, what in sim.call(lambda: list(sim.faults.hits)):
        if at >= runner.started:
            hits[what] = hits.get(what, 0) + 1
    by_kind = report.by_kind()
    log = sim.request_log
    return ChaosSummary(
        injected=runner.counts(),
        hits=hits,
        violations={k: v for k, (v, _, _) in by_kind.items()},
        divergences={k: d for k, (_, d, _) in by_kind.items()},
        longest_s={k: longest for k, (_, _, longest) in by_kind.items()},
        orders_sent=log.count("/fapi/v1/order", "POST") + log.count("/fapi/v1/algoOrder", "POST"),
        trades=sim.call(lambda: len(sim.exchange.trades)),
        checks=report.checks,
        episodes=report.episodes,
        report=report,
    )
