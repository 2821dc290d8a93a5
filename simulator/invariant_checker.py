"""The safety invariants of a trading node, checked against the simulated exchange while a test runs.

Exchange side (read from the simulator's own state, the truth):
- every open position has exactly one working reduce-only stop (``STOP_MARKET``, or a close-position stop) for its
  full quantity, on the closing side;
- a symbol without a position has no reduce-only order left (an orphan could close or flip a later position);
- no two working orders of one symbol are the same order sent twice (same side, type, price and quantity).

Node side (optional, from a callable the test gives): the node's positions equal the exchange's.

A node needs a moment to act (a stop replaced, an exit cancelled after its position closed, a fill on its way
over the stream), so a problem counts as a violation only when it lasts longer than ``grace_s``. The checker
samples on its own thread every ``interval_s`` and records every problem it saw with how long it lasted; the
longest node/exchange divergence is kept apart (a chaos table reports it).
"""

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

STOP_TYPES = frozenset({"STOP_MARKET", "STOP"})


@dataclass(frozen=True)
class Problem:
    kind: str  # "UNPROTECTED" | "STOPS" | "STOP_QTY" | "ORPHAN" | "DUPLICATE" | "DIVERGENCE"
    symbol: str
    detail: str


@dataclass(frozen=True)
class Violation:
    problem: Problem
    seconds: float  # how long it lasted (still open at the end counts to the end)


@dataclass(frozen=True)
class WorkingOrder:
    symbol: str
    side: str
    kind: str  # the order type; conditional ones by their algo type
    quantity: Decimal
    price: Decimal  # limit price or trigger price
    reduce_only: bool
    close_position: bool = False


def working_orders(exchange: Any) -> list[WorkingOrder]:
    """The simulated exchange's open orders, regular and conditional (run on the simulator's loop)."""
    out = [
        WorkingOrder(o.symbol, o.side, o.type, o.remaining, o.price, o.reduce_only)
        for o in exchange.orders.values()
        if o.is_open
    ]
    out += [
        WorkingOrder(a.symbol, a.side, a.order_type, a.quantity, a.trigger_price, a.reduce_only, a.close_position)
        for a in exchange.algos.values()
        if a.is_open
    ]
    return out


def exchange_positions(exchange: Any) -> dict[str, Decimal]:
    """Signed position amounts by symbol, open positions only."""
    return {s: p.amount for s, p in exchange.positions.items() if p.amount}


def exchange_problems(positions: dict[str, Decimal], orders: Iterable[WorkingOrder]) -> list[Problem]:
    """What breaks the exchange-side invariants right now."""
    by_symbol: dict[str, list[WorkingOrder]] = {}
    for order in orders:
        by_symbol.setdefault(order.symbol, []).append(order)
    problems = []
    for symbol, amount in positions.items():
        closing = "SELL" if amount > 0 else "BUY"
        stops = [
            o
            for o in by_symbol.get(symbol, [])
            if o.kind in STOP_TYPES and (o.reduce_only or o.close_position) and o.side == closing
        ]
        if not stops:
            problems.append(Problem("UNPROTECTED", symbol, f"position {amount} has no stop"))
        elif len(stops) > 1:
            problems.append(Problem("STOPS", symbol, f"position {amount} has {len(stops)} stops"))
        elif not stops[0].close_position and stops[0].quantity != abs(amount):
            problems.append(Problem("STOP_QTY", symbol, f"stop for {stops[0].quantity}, position {amount}"))
    for symbol, symbol_orders in by_symbol.items():
        if symbol not in positions:
            orphans = [o for o in symbol_orders if o.reduce_only or o.close_position]
            if orphans:
                problems.append(Problem("ORPHAN", symbol, f"{len(orphans)} reduce-only order(s) and no position"))
        seen: set[tuple[str, str, Decimal, Decimal]] = set()
        for o in symbol_orders:
            key = (o.side, o.kind, o.price, o.quantity)
            if key in seen:
                problems.append(Problem("DUPLICATE", symbol, f"{o.side} {o.kind} {o.quantity} @ {o.price} twice"))
            seen.add(key)
    return problems


def divergence(exchange: dict[str, Decimal], node: dict[str, Decimal]) -> list[Problem]:
    """Symbols where the node's position differs from the exchange's."""
    return [
        Problem("DIVERGENCE", s, f"exchange {exchange.get(s, 0)}, node {node.get(s, 0)}")
        for s in sorted(set(exchange) | set(node))
        if Decimal(exchange.get(s, 0)) != Decimal(node.get(s, 0))
    ]


class InvariantChecker:
    """Samples the invariants on a thread: ``with InvariantChecker(sim, node_positions) as checker: ...`` then
    ``checker.violations`` (problems that lasted more than ``grace_s``) and ``checker.assert_clean()``.

    ``node_positions``: the node's positions by raw symbol (``BTCUSDT``), signed; leave it out to check the
    exchange side only. A sample whose callable fails (a node restarting) is skipped for the node side.
    """

    def __init__(
        self,
        sim: Any,
        node_positions: Callable[[], dict[str, Decimal]] | None = None,
        grace_s: float = 5.0,
        interval_s: float = 0.2,
    ) -> None:
        self.sim = sim
        self.node_positions = node_positions
        self.grace_s = grace_s
        self.interval_s = interval_s
        self.samples = 0
        self.seen: list[Violation] = []  # every problem seen, with its duration
        self._open: dict[Problem, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> list[Problem]:
        positions, orders = self.sim.call(
            lambda: (exchange_positions(self.sim.exchange), working_orders(self.sim.exchange))
        )
        problems = exchange_problems(positions, orders)
        if self.node_positions is not None:
            try:
                node = self.node_positions()
            except Exception:  # the node is down or restarting: nothing to compare
                node = None
            if node is not None:
                problems += divergence(positions, node)
        return problems

    def _step(self) -> None:
        now = time.monotonic()
        problems = {p: None for p in self.sample()}
        self.samples += 1
        for problem in list(self._open):
            if problem not in problems:
                self.seen.append(Violation(problem, now - self._open.pop(problem)))
        for problem in problems:
            self._open.setdefault(problem, now)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._step()
            except Exception:  # the simulator is shutting down
                return

    def start(self) -> "InvariantChecker":
        self._step()  # at least one sample, however short the run
        self._thread = threading.Thread(target=self._run, name="invariants", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._step()
        now = time.monotonic()
        self.seen += [Violation(p, now - t) for p, t in self._open.items()]
        self._open.clear()

    def __enter__(self) -> "InvariantChecker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def violations(self) -> list[Violation]:
        return [v for v in self.seen if v.seconds > self.grace_s]

    @property
    def longest_divergence_s(self) -> float:
        return max((v.seconds for v in self.seen if v.problem.kind == "DIVERGENCE"), default=0.0)

    def assert_clean(self) -> None:
        assert self.samples > 0, "the invariant checker never sampled"
        if self.violations:
            lines = [
                f"{v.problem.kind} {v.problem.symbol} for {v.seconds:.1f} s: {v.problem.detail}"
                for v in self.violations
            ]
            raise AssertionError("invariants broken:\n" + "\n".join(lines))
