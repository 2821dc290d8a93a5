"""Invariants of a protected account, checked on the simulated exchange's own state, once or continuously.

What must hold at every moment for a trader who never wants a position without its stop:

- ``no_stop``: every open position has a reduce-only stop (``STOP_MARKET`` / ``STOP`` conditional order,
  reduce-only or close-position) on its closing side;
- ``several_stops``: ... exactly one;
- ``stop_quantity``: ... for the position's full quantity (a close-position stop always is);
- ``orphan``: no reduce-only order (regular or conditional) rests on a flat symbol, or on the side that would
  add to the position (left over, it can close or flip a later position);
- ``duplicate``: no two open orders the same (symbol, side, type, price or trigger, quantity, reduce-only).

``check_exchange(exchange)`` returns the violations now, with details. ``InvariantMonitor`` runs the checks
on the simulator's loop after every state change of the exchange (every user-stream event it emits) and
every ``interval_s``, and keeps an *episode* per violation (same kind and symbol): when it began, when it
ended. Some violations are the normal life of a protected position: between an entry's fill and its stop's
arrival there is no stop; moving a stop is a cancel and a new order, so for a moment there are none or two.
An episode that ends within ``grace_s`` of its start counts as a divergence (its length is measured);
one that lasts longer is a violation. A fault keeps a client from acting for a while (a ban window, a latency
spike, a stream silence, a reconnection): ``note_fault(kind, start, end)`` records its effect window, and an
episode whose ``grace_s`` allowance overlaps such a window has until the window's end plus ``grace_s``
(``deadline``).

More checks (e.g. the node's positions against the exchange's) plug in as callables returning violations:
``InvariantMonitor(sim, checks=[...])``; they run on the simulator's loop.
"""

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from simulator.exchange import Exchange
from simulator.orders import AlgoOrder, Order

if TYPE_CHECKING:
    from simulator.server import BinanceSimulator

STOP_TYPES = frozenset({"STOP_MARKET", "STOP"})
# How long a violation may last before it counts (see the module docstring): the node's cancel-and-replace of a
# stop and its placement after an entry take tens of ms; 5 s covers them on a loaded machine, with a retry.
DEFAULT_GRACE_S = 5.0


@dataclass(frozen=True)
class Violation:
    kind: str  # no_stop, several_stops, stop_quantity, orphan, duplicate (or a plugged-in check's own kinds)
    symbol: str
    detail: str
    order_ids: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """What identifies one episode: the same kind on the same symbol, however its details change."""
        return (self.kind, self.symbol)


Check = Callable[[], list[Violation]]


def _closing_side(amount: Decimal) -> str:
    return "SELL" if amount > 0 else "BUY"


def _reduces(item: Order | AlgoOrder) -> bool:
    return item.reduce_only or item.close_position


def _ref(item: Order | AlgoOrder) -> str:
    return f"algo {item.algo_id}" if isinstance(item, AlgoOrder) else f"order {item.order_id}"


def check_exchange(exchange: Exchange) -> list[Violation]:
    """The protection invariants on the exchange's positions and open orders (regular and conditional)."""
    stops: dict[str, list[AlgoOrder]] = {}
    resting: dict[str, list[Order | AlgoOrder]] = {}
    for algo in exchange.algos.values():
        if algo.status == "NEW":  # TRIGGERING / TRIGGERED ones are firing: their fill is already booked
            resting.setdefault(algo.symbol, []).append(algo)
            if algo.order_type in STOP_TYPES and _reduces(algo):
                stops.setdefault(algo.symbol, []).append(algo)
    for order in exchange.orders.values():
        if order.is_open:
            resting.setdefault(order.symbol, []).append(order)
    out: list[Violation] = []
    for symbol, position in exchange.positions.items():
        amount = position.amount
        fmt = position.spec.fmt_qty
        if amount != 0:
            side = _closing_side(amount)
            closing = [s for s in stops.get(symbol, []) if s.side == side]
            if not closing:
                out.append(Violation("no_stop", symbol, f"position {fmt(amount)} has no {side} stop"))
            elif len(closing) > 1:
                out.append(
                    Violation(
                        "several_stops",
                        symbol,
                        f"position {fmt(amount)} has {len(closing)} {side} stops: "
                        + ", ".join(f"{fmt(s.quantity)} at {s.spec.fmt_price(s.trigger_price)}" for s in closing),
                        tuple(_ref(s) for s in closing),
                    )
                )
            else:
                stop = closing[0]
                if not stop.close_position and stop.quantity != abs(amount):
                    out.append(
                        Violation(
                            "stop_quantity",
                            symbol,
                            f"position {fmt(amount)}, stop for {fmt(stop.quantity)}",
                            (_ref(stop),),
                        )
                    )
        for item in resting.get(symbol, []):
            if _reduces(item) and (amount == 0 or item.side != _closing_side(amount)):
                where = "flat symbol" if amount == 0 else f"the opening side of position {fmt(amount)}"
                kind = getattr(item, "order_type", None) or item.type
                out.append(Violation("orphan", symbol, f"reduce-only {item.side} {kind} on {where}", (_ref(item),)))
        seen: dict[tuple[object, ...], Order | AlgoOrder] = {}
        for item in resting.get(symbol, []):
            if isinstance(item, AlgoOrder):
                shape = ("algo", item.side, item.order_type, item.trigger_price, item.quantity, _reduces(item))
            else:
                shape = ("order", item.side, item.type, item.price, item.remaining, _reduces(item))
            twin = seen.get(shape)
            if twin is not None:
                detail = f"two identical open {shape[2]} {shape[1]} orders"
                out.append(Violation("duplicate", symbol, detail, (_ref(twin), _ref(item))))
            else:
                seen[shape] = item
    return out


@dataclass
class Episode:
    """One violation from its first sighting to the check that no longer found it."""

    first: Violation
    started: float  # monotonic
    last: Violation
    ended: float | None = None

    def duration(self, now: float) -> float:
        return (self.ended if self.ended is not None else now) - self.started


@dataclass(frozen=True)
class FaultWindow:
    """A fault's effect: from its injection to when a client can have recovered from it (monotonic times)."""

    kind: str
    start: float
    end: float


def deadline(started: float, faults: Sequence[FaultWindow], grace_s: float) -> float:
    """When an episode begun at ``started`` stops being a divergence: ``grace_s`` after it began, or after the
    end of any fault whose effect overlaps that allowance (repeated while faults keep overlapping)."""
    limit = started + grace_s
    changed = True
    while changed:
        changed = False
        for fault in faults:
            if fault.start <= limit < fault.end + grace_s:
                limit, changed = fault.end + grace_s, True
    return limit


@dataclass
class InvariantReport:
    checks: int
    episodes: list[Episode]
    faults: list[FaultWindow]
    now: float
    grace_s: float

    def breached(self, episode: Episode) -> bool:
        end = episode.ended if episode.ended is not None else self.now
        return end > deadline(episode.started, self.faults, self.grace_s)

    @property
    def violations(self) -> list[Episode]:
        """Episodes that lasted past their allowance (still open ones included)."""
        return [e for e in self.episodes if self.breached(e)]

    @property
    def divergences(self) -> list[Episode]:
        """Episodes that ended within their allowance."""
        return [e for e in self.episodes if not self.breached(e)]

    @property
    def longest_s(self) -> float:
        """The longest any violation lasted, divergence or not (0 if none was seen)."""
        return max((e.duration(self.now) for e in self.episodes), default=0.0)

    def by_kind(self) -> dict[str, tuple[int, int, float]]:
        """kind -> (violations, divergences, longest seconds)."""
        out: dict[str, tuple[int, int, float]] = {}
        for e in self.episodes:
            v, d, longest = out.get(e.first.kind, (0, 0, 0.0))
            if self.breached(e):
                v += 1
            else:
                d += 1
            out[e.first.kind] = (v, d, max(longest, e.duration(self.now)))
        return out


@dataclass
class InvariantMonitor:
    """Checks the invariants continuously on a running simulator and keeps the episodes.

    ``start()`` from any thread; checks run on the simulator's loop after each exchange state change and every
    ``interval_s``. ``report()`` at any moment; ``stop()`` ends the monitoring (open episodes stay open in the
    report, measured up to the stop).
    """

    sim: "BinanceSimulator"
    grace_s: float = DEFAULT_GRACE_S
    interval_s: float = 0.1
    checks: Sequence[Check] = ()
    episodes: list[Episode] = field(default_factory=list)
    faults: list[FaultWindow] = field(default_factory=list)
    count: int = 0

    def __post_init__(self) -> None:
        if not self.checks:
            self.checks = (lambda: check_exchange(self.sim.exchange),)
        self._open: dict[tuple[str, str], Episode] = {}
        self._pending = False
        self._task: asyncio.Task[None] | None = None
        self._stopped_at: float | None = None
        self._emit = self.sim.exchange.emit

    # --- life cycle

    def start(self) -> "InvariantMonitor":
        def begin() -> None:
            exchange = self.sim.exchange

            def emit(event: dict[str, object]) -> None:
                self._emit(event)
                self._soon()

            exchange.emit = emit  # every state change of the exchange emits an event
            self._task = self.sim.spawn(self._every_interval())

        self._on_loop(begin)
        return self

    def stop(self) -> None:
        def end() -> None:
            self.sim.exchange.emit = self._emit
            if self._task is not None:
                self._task.cancel()
            self.check_now()
            self._stopped_at = time.monotonic()

        self._on_loop(end)

    def _on_loop(self, fn: Callable[[], None]) -> None:
        self.sim.call(fn)

    # --- faults that excuse a violation for a while

    def note_fault(self, kind: str, start: float, end: float) -> None:
        """A fault active from ``start`` to ``end`` (monotonic; equal for an instant fault)."""
        self.faults.append(FaultWindow(kind, start, end))

    # --- checking

    def _soon(self) -> None:
        """Check once the current exchange operation is over (several events of one fill: one check)."""
        if not self._pending:
            self._pending = True
            asyncio.get_running_loop().call_soon(self._deferred)

    def _deferred(self) -> None:
        self._pending = False
        self.check_now()

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self.check_now()

    def check_now(self) -> list[Violation]:
        """Run every check now (on the simulator's loop) and update the episodes; returns what holds now."""
        now = time.monotonic()
        self.count += 1
        found: list[Violation] = []
        for check in self.checks:
            found.extend(check())
        current = {v.key: v for v in found}
        for key, episode in list(self._open.items()):
            if key not in current:
                episode.ended = now
                del self._open[key]
        for key, violation in current.items():
            episode = self._open.get(key)
            if episode is None:
                episode = Episode(violation, now, violation)
                self._open[key] = episode
                self.episodes.append(episode)
            episode.last = violation
        return found

    def violations_now(self) -> list[Violation]:
        """``check_now`` from any thread (it runs on the simulator's loop)."""
        return self.sim.call(self.check_now)

    def report(self) -> InvariantReport:
        now = self._stopped_at if self._stopped_at is not None else time.monotonic()
        return self.sim.call(
            lambda: InvariantReport(self.count, list(self.episodes), list(self.faults), now, self.grace_s)
        )
