"""The exchange-side invariant checker, the targeted faults and the chaos schedule, on a paused simulator driven
by a signed REST client (no node): each invariant is broken and repaired on purpose and seen as it happens."""

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from simulator import BinanceSimulator
from simulator.chaos import FAULT_KINDS, ChaosRunner, chaos_schedule
from simulator.invariants import FaultWindow, InvariantMonitor, check_exchange, deadline
from tests.simulator_support import SignedClient, btc_data, running_simulator


@pytest.fixture()
def sim(shared_data: Path) -> Iterator[BinanceSimulator]:
    with running_simulator(btc_data(shared_data, bars=50)) as sim:  # paused: the price stays where it is
        yield sim


@pytest.fixture()
def client(sim: BinanceSimulator) -> Iterator[SignedClient]:
    c = SignedClient(sim.http_url)
    yield c
    c.close()


def _price(client: SignedClient) -> Decimal:
    return Decimal(client.public("GET", "/fapi/v1/ticker/price", symbol="BTCUSDT").json()["price"])


def _order(client: SignedClient, side: str, qty: str, reduce_only: bool = False, **extra: str) -> httpx.Response:
    params = {"symbol": "BTCUSDT", "side": side, "type": "MARKET", "quantity": qty, **extra}
    if reduce_only:
        params["reduceOnly"] = "true"
    return client.signed("POST", "/fapi/v1/order", **params)


def _stop(client: SignedClient, qty: str, trigger: Decimal, side: str = "SELL") -> httpx.Response:
    return client.signed(
        "POST",
        "/fapi/v1/algoOrder",
        algoType="CONDITIONAL",
        symbol="BTCUSDT",
        side=side,
        type="STOP_MARKET",
        quantity=qty,
        triggerPrice=str(trigger),
        reduceOnly="true",
    )


def _kinds(sim: BinanceSimulator) -> list[tuple[str, str]]:
    return sorted((v.kind, v.detail) for v in sim.call(lambda: check_exchange(sim.exchange)))


def test_each_invariant_is_seen_with_its_details(sim: BinanceSimulator, client: SignedClient) -> None:
    below = (_price(client) * Decimal("0.98")).quantize(Decimal("0.1"))
    assert _kinds(sim) == []
    assert _order(client, "BUY", "0.010").status_code == 200
    assert _kinds(sim) == [("no_stop", "position 0.010 has no SELL stop")]

    first = _stop(client, "0.010", below).json()["algoId"]
    assert _kinds(sim) == []
    second = _stop(client, "0.010", below - 10).json()["algoId"]
    (several,) = sim.call(lambda: check_exchange(sim.exchange))
    assert several.kind == "several_stops" and several.order_ids == (f"algo {first}", f"algo {second}")
    client.signed("DELETE", "/fapi/v1/algoOrder", symbol="BTCUSDT", algoId=second)

    assert _order(client, "SELL", "0.004", reduce_only=True).status_code == 200  # a take-profit's share
    assert _kinds(sim) == [("stop_quantity", "position 0.006, stop for 0.010")]

    # two identical resting reduce-only limits: a duplicate (a retried order sent twice)
    above = (_price(client) * Decimal("1.02")).quantize(Decimal("0.1"))
    for _ in range(2):
        limit = {"type": "LIMIT", "price": str(above), "timeInForce": "GTC"}
        assert _order(client, "SELL", "0.003", reduce_only=True, **limit).status_code == 200
    assert ("duplicate", "two identical open LIMIT SELL orders") in _kinds(sim)

    # closed at market: the limits expire with the position, the stop stays behind, an orphan
    assert _order(client, "SELL", "0.006", reduce_only=True).status_code == 200
    assert _kinds(sim) == [("orphan", "reduce-only SELL STOP_MARKET on flat symbol")]
    client.signed("DELETE", "/fapi/v1/algoOrder", symbol="BTCUSDT", algoId=first)
    assert _kinds(sim) == []


def test_monitor_measures_divergences_and_counts_violations(sim: BinanceSimulator, client: SignedClient) -> None:
    below = (_price(client) * Decimal("0.98")).quantize(Decimal("0.1"))
    monitor = InvariantMonitor(sim, grace_s=0.5, interval_s=0.02).start()
    _order(client, "BUY", "0.010")
    time.sleep(0.1)
    _stop(client, "0.010", below)  # within the grace: a divergence, measured
    _order(client, "BUY", "0.010")  # the stop no longer covers the position ...
    time.sleep(0.8)  # ... for longer than the grace: a violation
    assert [v.kind for v in monitor.violations_now()] == ["stop_quantity"]
    monitor.stop()
    report = monitor.report()
    assert report.checks >= 10
    (divergence,) = report.divergences
    assert divergence.first.kind == "no_stop" and 0.05 < divergence.duration(report.now) < 0.5
    (violation,) = report.violations
    assert violation.first.kind == "stop_quantity" and violation.ended is None
    assert report.longest_s >= 0.8 and report.by_kind()["stop_quantity"][0] == 1


def test_monitor_compares_the_node_positions_on_its_own_thread(sim: BinanceSimulator, client: SignedClient) -> None:
    """Catches: a node that keeps a position the exchange no longer holds (a ghost), or misses one, going unseen;
    and a node that cannot answer for a moment (restarting) counted as a divergence."""
    node: dict[str, Decimal] = {}
    answering = [True]

    def node_positions() -> dict[str, Decimal]:
        if not answering[0]:
            raise RuntimeError("the node is restarting")
        return dict(node)

    below = (_price(client) * Decimal("0.98")).quantize(Decimal("0.1"))
    with InvariantMonitor(sim, grace_s=0.5, interval_s=0.02, node_positions=node_positions) as monitor:
        _order(client, "BUY", "0.010")
        _stop(client, "0.010", below)
        time.sleep(0.2)  # the node learns of the fill late: within the grace
        node["BTCUSDT"] = Decimal("0.010")
        time.sleep(0.1)
        answering[0] = False
        time.sleep(0.8)  # no answer: nothing to compare, no episode
        answering[0] = True
        node["SUIUSDT"] = Decimal("3")  # a ghost, for longer than the grace
        time.sleep(0.8)
    report = monitor.report()
    node_side = [e for e in report.divergences if e.first.kind == "node_position"]
    assert [e.first.symbol for e in node_side] == ["BTCUSDT"]
    (ghost,) = report.violations
    assert ghost.first.key == ("node_position", "SUIUSDT") and ghost.first.detail == "exchange 0, node 3"
    with pytest.raises(AssertionError, match="node_position SUIUSDT"):
        monitor.assert_clean()


def test_fault_windows_extend_the_allowance() -> None:
    assert deadline(100.0, [], grace_s=5) == 105.0
    ban = FaultWindow("ip_ban_418", start=102.0, end=120.0)
    assert deadline(100.0, [ban], grace_s=5) == 125.0  # the ban began within the allowance
    assert deadline(130.0, [ban], grace_s=5) == 135.0  # over long before
    chained = [ban, FaultWindow("latency_spike", start=124.0, end=140.0)]
    assert deadline(100.0, chained, grace_s=5) == 145.0


def test_rejections_hit_only_their_target(sim: BinanceSimulator, client: SignedClient) -> None:
    below = (_price(client) * Decimal("0.98")).quantize(Decimal("0.1"))
    sim.reject_next_order(-2019, target="exit")
    assert _order(client, "BUY", "0.010").status_code == 200  # an entry passes
    refused = _stop(client, "0.010", below)
    assert refused.json()["code"] == -2019
    sim.reject_next_order(-1008, target="stop")
    assert _order(client, "SELL", "0.001", reduce_only=True).status_code == 200  # not a stop: passes
    assert _stop(client, "0.009", below).status_code == 503  # -1008 server busy
    algo = _stop(client, "0.009", below).json()["algoId"]
    sim.reject_next_order(-1008, target="stop_cancel")
    moved = client.signed("DELETE", "/fapi/v1/algoOrder", symbol="BTCUSDT", algoId=algo)
    assert moved.json()["code"] == -1008
    assert client.signed("DELETE", "/fapi/v1/algoOrder", symbol="BTCUSDT", algoId=algo).status_code == 200
    sim.reject_next_order(-2019, target="entry")
    assert _order(client, "SELL", "0.009", reduce_only=True).status_code == 200  # an exit passes
    assert _order(client, "BUY", "0.001").json()["code"] == -2019
    hits = [what for _, what in sim.faults.hits]
    assert hits == ["reject exit -2019", "reject stop -1008", "reject stop_cancel -1008", "reject entry -2019"]


def test_ban_window_latency_spike_and_user_only_silence(sim: BinanceSimulator, client: SignedClient) -> None:
    sim.ban(0.6)
    banned = client.public("GET", "/fapi/v1/time")
    assert banned.status_code == 418 and int(banned.headers["Retry-After"]) >= 1
    assert client.public("GET", "/fapi/v1/ping").status_code == 418
    time.sleep(0.7)
    assert client.public("GET", "/fapi/v1/ping").status_code == 200
    sim.set_latency(0.3, duration_s=0.5)
    started = time.monotonic()
    client.public("GET", "/fapi/v1/ping")
    assert time.monotonic() - started >= 0.3
    time.sleep(0.5)
    started = time.monotonic()
    client.public("GET", "/fapi/v1/ping")
    assert time.monotonic() - started < 0.25  # the spike is over by itself
    sim.silence(5, market=False, user=True)
    assert sim.faults.silenced(user=True) and not sim.faults.silenced(user=False)


def test_chaos_schedule_is_reproducible_and_injected_on_time(sim: BinanceSimulator) -> None:
    schedule = chaos_schedule(seed=7, duration_s=3600, mean_interval_s=30)
    assert schedule == chaos_schedule(seed=7, duration_s=3600, mean_interval_s=30)
    assert schedule != chaos_schedule(seed=8, duration_s=3600, mean_interval_s=30)
    assert {f.kind for f in schedule} == set(FAULT_KINDS) and 80 < len(schedule) < 160
    with pytest.raises(ValueError, match="unknown fault kinds"):
        chaos_schedule(seed=1, duration_s=10, kinds=("meteor",))

    short = chaos_schedule(seed=3, duration_s=1.5, mean_interval_s=0.1, kinds=("ip_ban_418", "latency_spike"))
    monitor = InvariantMonitor(sim).start()
    runner = ChaosRunner(sim, short, monitor).start()
    deadline_s = time.monotonic() + 10
    while not runner.done and time.monotonic() < deadline_s:
        time.sleep(0.05)
    runner.stop()
    monitor.stop()
    assert [i.fault for i in runner.injected] == short
    assert all(abs((i.at - runner.started) - i.fault.at_s) < 0.5 for i in runner.injected)
    assert sum(runner.counts().values()) == len(short) and len(monitor.report().faults) == len(short)
    assert sim.faults.ban_window_until == 0 and sim.faults.latency_s == 0  # stop() cleared what was pending
