"""Invariants of a protected account, checked on the simulated exchange's own state, once or continuously.

What must hold at every moment for a trader who never wants a position without its stop:

- ``no_stop``: every open position has a reduce-only stop (``STOP_MARKET`` / ``STOP`` conditional order,
  reduce-only or close-position) on its closing side;
- ``several_stops``: ... exactly one;
- ``stop_quantity``: ... for the position's full quantity (a close-position stop always is);
- ``orphan``: no reduce-only order (regular or conditional) rests on a flat symbol, or on the side that would
  add to the position (left over, it can close or flip a later position);
- ``duplicate``: no two open orders the same (symbol, side, type, price or trigger, quantity, reduce-only);
- ``node_position`` (when the monitor is given the node's positions): the node's positions equal the exchange's.

The checks are one plain function, ``check_orders(positions, orders)``, over plain data (``WorkingOrder``), so
a test can call it on hand-made rows; ``check_exchange(exchange)`` runs it on the simulator's state.

``InvariantMonitor`` runs the checks on the simulator's loop after every state change of the exchange (every
user-stream event it emits) and every ``interval_s``, and keeps an *episode* per violation (same kind and
symbol): when it began, when it ended. Given ``node_positions`` (a callable returning the node's signed
positions by symbol), it also compares them with the exchange's every ``interval_s`` on a thread of its own (the
node answers on its own loop, which must never wait on the simulator's). Some violations are the normal life of
a protected position: between an entry's fill and its stop's arrival there is no stop; moving a stop is a cancel
and a new order, so for a moment there are none or two; a fill reaches the node a moment after the exchange.
An episode that ends within ``grace_s`` of its start counts as a divergence (its length is measured); one that
lasts longer is a violation. A fault keeps a client from acting for a while (a ban window, a latency spike, a
stream silence, a reconnection): ``note_fault(kind, start, end)`` records its effect window, and an episode
whose ``grace_s`` allowance overlaps such a window has until the window's end plus ``grace_s`` (``deadline``).

More checks plug in as callables returning violations: ``InvariantMonitor(sim, checks=[...])``; they run on the
simulator's loop.
"""

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from simulator.exchange import Exchange

if TYPE_CHECKING:
    from simulator.server import BinanceSimulator

STOP_TYPES = frozenset({"STOP_MARKET", "STOP"})
# How long a violation may last before it counts (see the module docstring): the node's cancel-and-replace of a
# stop and its placement after an entry take tens of ms; 5 s covers them on a loaded machine, with a retry.
DEFAULT_GRACE_S = 5.0


@dataclass(frozen=True)
class Violation:
    kind: str  # no_stop, several_stops, stop_quantity, orphan, duplicate, node_position (or a plugged-in check's)
    symbol: str
    detail: str
    order_ids: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """What identifies one episode: the same kind on the same symbol, however its details change."""
        return (self.kind, self.symbol)


Check = Callable[[], list[Violation]]


@dataclass(frozen=True)
class WorkingOrder:
    """An order resting on the exchange, regular or conditional, as the checks see it."""

    symbol: str
    side: str  # BUY | SELL
    kind: str  # the order type; a conditional order by its own type (STOP_MARKET, TAKE_PROFIT, ...)
    quantity: Decimal  # what is left of it
    price: Decimal  # the limit price, or the trigger price of a conditional order
    reduce_only: bool
    close_position: bool = False
    conditional: bool = False  # an algo (conditional) order
    ref: str = ""  # "order <id>" / "algo <id>", for the violation's details

    @property
    def reduces(self) -> bool:
        return self.reduce_only or self.close_position


def working_orders(exchange: Exchange) -> list[WorkingOrder]:
    """The exchange's resting orders (run on the simulator's loop): open regular orders, and conditional ones
    not yet triggered (a TRIGGERING / TRIGGERED one is firing: its fill is already booked)."""
    out = [
        WorkingOrder(o.symbol, o.side, o.type, o.remaining, o.price, o.reduce_only, ref=f"order {o.order_id}")
        for o in exchange.orders.values()
        if o.is_open
    ]
    out += [
        WorkingOrder(
            a.symbol,
            a.side,
            a.order_type,
            a.quantity,
            a.trigger_price,
            a.reduce_only,
            a.close_position,
            conditional=True,
            ref=f"algo {a.algo_id}",
        )
        for a in exchange.algos.values()
        if a.status == "NEW"
    ]
    return out


def exchange_positions(exchange: Exchange) -> dict[str, Decimal]:
    """Signed position amounts by symbol, open positions only (run on the simulator's loop)."""
    return {s: p.amount for s, p in exchange.positions.items() if p.amount}


def _closing_side(amount: Decimal) -> str:
    return "SELL" if amount > 0 else "BUY"


def _plain(value: Decimal) -> str:
    return f"{value:f}"


def check_orders(
    positions: Mapping[str, Decimal], orders: Iterable[WorkingOrder], specs: Mapping[str, Any] | None = None
) -> list[Violation]:
    """The protection invariants on positions (signed amounts by symbol) and resting orders. ``specs``: by
    symbol, what formats quantities and prices in the details (``fmt_qty``, ``fmt_price``); plain otherwise."""
    resting: dict[str, list[WorkingOrder]] = {}
    for order in orders:
        resting.setdefault(order.symbol, []).append(order)
    out: list[Violation] = []
    for symbol in sorted(set(positions) | set(resting)):
        amount = Decimal(positions.get(symbol, 0))
        spec = (specs or {}).get(symbol)
        fmt_qty = spec.fmt_qty if spec is not None else _plain
        fmt_price = spec.fmt_price if spec is not None else _plain
        items = resting.get(symbol, [])
        if amount != 0:
            side = _closing_side(amount)
            closing = [o for o in items if o.kind in STOP_TYPES and o.reduces and o.side == side]
            if not closing:
                out.append(Violation("no_stop", symbol, f"position {fmt_qty(amount)} has no {side} stop"))
            elif len(closing) > 1:
                stops = ", ".join(f"{fmt_qty(s.quantity)} at {fmt_price(s.price)}" for s in closing)
                detail = f"position {fmt_qty(amount)} has {len(closing)} {side} stops: {stops}"
                out.append(Violation("several_stops", symbol, detail, tuple(s.ref for s in closing)))
            elif not closing[0].close_position and closing[0].quantity != abs(amount):
                stop = closing[0]
                detail = f"position {fmt_qty(amount)}, stop for {fmt_qty(stop.quantity)}"
                out.append(Violation("stop_quantity", symbol, detail, (stop.ref,)))
        for item in items:
            if item.reduces and (amount == 0 or item.side != _closing_side(amount)):
                where = "flat symbol" if amount == 0 else f"the opening side of position {fmt_qty(amount)}"
                detail = f"reduce-only {item.side} {item.kind} on {where}"
                out.append(Violation("orphan", symbol, detail, (item.ref,)))
        seen: dict[tuple[object, ...], WorkingOrder] = {}
        for item in items:
            shape = (item.conditional, item.side, item.kind, item.price, item.quantity, item.reduces)
            twin = seen.get(shape)
            if twin is not None:
                detail = f"two identical open {item.kind} {item.side} orders"
                out.append(Violation("duplicate", symbol, detail, (twin.ref, item.ref)))
            else:
                seen[shape] = item
    return out


def check_exchange(exchange: Exchange) -> list[Violation]:
    """The protection invariants on the exchange's positions and resting orders (on the simulator's loop)."""
    return check_orders(exchange_positions(exchange), working_orders(exchange), exchange.specs)


def divergence(exchange: Mapping[str, Decimal], node: Mapping[str, Decimal]) -> list[Violation]:
    """Symbols whose position the node sees other than the exchange holds it (signed amounts by symbol)."""
    return [
        Violation("node_position", s, f"exchange {exchange.get(s, 0)}, node {node.get(s, 0)}")
        for s in sorted(set(exchange) | set(node))
        if Decimal(exchange.get(s, 0)) != Decimal(node.get(s, 0))
    ]


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

    ``start()`` from any thread (or ``with InvariantMonitor(...) as monitor:``); the exchange checks run on the
    simulator's loop after each exchange state change and every ``interval_s``; with ``node_positions``, the
    node's positions are compared with the exchange's every ``interval_s`` on the monitor's own thread (a sample
    whose callable fails, e.g. a node restarting, is skipped). ``report()`` at any moment; ``stop()`` ends the
    monitoring (open episodes stay open in the report, measured up to the stop); ``assert_clean()`` after it.
    """

    sim: "BinanceSimulator"
    grace_s: float = DEFAULT_GRACE_S
    interval_s: float = 0.1
    checks: Sequence[Check] = ()
    node_positions: Callable[[], Mapping[str, Decimal]] | None = None
    episodes: list[Episode] = field(default_factory=list)
    faults: list[FaultWindow] = field(default_factory=list)
    count: int = 0

    def __post_init__(self) -> None:
        if not self.checks:
            self.checks = (lambda: check_exchange(self.sim.exchange),)
        self._open: dict[str, dict[tuple[str, str], Episode]] = {}  # by source: "exchange", "node"
        self._pending = False
        self._task: asyncio.Task[None] | None = None
        self._stopped_at: float | None = None
        self._emit = self.sim.exchange.emit
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    # --- life cycle

    def start(self) -> "InvariantMonitor":
        def begin() -> None:
            exchange = self.sim.exchange

            def emit(event: dict[str, object]) -> None:
                self._emit(event)
                self._soon()

            exchange.emit = emit  # every state change of the exchange emits an event
            self._task = self.sim.spawn(self._every_interval())
            self.check_now()

        self._on_loop(begin)
        if self.node_positions is not None:
            self._thread = threading.Thread(target=self._sample_node_forever, name="invariants", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
            try:
                self._sample_node()
            except Exception:  # the simulator is shutting down
                pass

        def end() -> None:
            self.sim.exchange.emit = self._emit
            if self._task is not None:
                self._task.cancel()
            self.check_now()
            self._stopped_at = time.monotonic()

        self._on_loop(end)

    def __enter__(self) -> "InvariantMonitor":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_loop(self, fn: Callable[[], Any]) -> Any:
        return self.sim.call(fn)

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
        """Run every exchange check now (on the simulator's loop) and update the episodes; returns what holds."""
        found: list[Violation] = []
        for check in self.checks:
            found.extend(check())
        self._record("exchange", found, time.monotonic())
        return found

    def _sample_node(self) -> None:
        """Compare the node's positions with the exchange's (on the monitor's thread: the node answers on its
        own loop)."""
        assert self.node_positions is not None
        exchange = self.sim.call(lambda: exchange_positions(self.sim.exchange))
        try:
            node = self.node_positions()
        except Exception:  # the node is down or restarting: nothing to compare
            return
        found = divergence(exchange, node)
        now = time.monotonic()
        self._on_loop(lambda: self._record("node", found, now))

    def _sample_node_forever(self) -> None:
        while not self._halt.wait(self.interval_s):
            try:
                self._sample_node()
            except Exception:  # the simulator is shutting down
                return

    def _record(self, source: str, found: list[Violation], now: float) -> None:
        """Update the episodes of one source of checks with what it found now (on the simulator's loop)."""
        self.count += 1
        current = {v.key: v for v in found}
        open_ = self._open.setdefault(source, {})
        for key, episode in list(open_.items()):
            if key not in current:
                episode.ended = now
                del open_[key]
        for key, violation in current.items():
            episode = open_.get(key)
            if episode is None:
                episode = Episode(violation, now, violation)
                open_[key] = episode
                self.episodes.append(episode)
            episode.last = violation

    def violations_now(self) -> list[Violation]:
        """``check_now`` from any thread (it runs on the simulator's loop)."""
        return self.sim.call(self.check_now)

    def report(self) -> InvariantReport:
        now = self._stopped_at if self._stopped_at is not None else time.monotonic()
        return self.sim.call(
            lambda: InvariantReport(self.count, list(self.episodes), list(self.faults), now, self.grace_s)
        )

    def assert_clean(self) -> None:
        """No episode outlasted its allowance (raises with each one's details)."""
        report = self.report()
        assert report.checks > 0, "the invariant monitor never checked"
        if report.violations:
            lines = [
                f"{e.first.kind} {e.first.symbol} for {e.duration(report.now):.1f} s: {e.last.detail}"
                for e in report.violations
            ]
            raise AssertionError("invariants broken:\n" + "\n".join(lines))
