"""A live node's start-up stays under Binance's request-weight limit: no request refused, the peak under 80 %.

The simulator publishes a small limit over a 10 s window (``weight_window_s``; Binance's is 2,400 a minute),
so 40 symbols cross it the way 200 cross Binance's: before the start-up was paced, the warm-up klines alone
(two requests of weight 5 per symbol, all at once) drew 429s.
"""

import math
import os
import threading
import time
from pathlib import Path

import pytest

from benchmarks.bench_live import renamed_universe
from factors.inputs import bar_type_for
from nodes.live.config import load_live_settings
from nodes.live.preflight import PreflightError
from nodes.live.runner import checked_node_config
from nodes.live.weight_budget import DEFAULT_SHARE, budget_for
from tests.live_support import RALLY_START_MS, SIM_ENV, LiveNode, NodeProcess, live_node, wait_for, write_configs
from tests.simulator_support import btc_data, running_simulator

SYMBOLS = 40
WARMUP = 120
LIMIT, WINDOW_S = 400, 10  # a start-up of 40 symbols weighs ~500 when paced, ~900 in a burst before


def test_start_up_of_many_symbols_stays_under_the_weight_limit(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SIM_ENV.items():
        monkeypatch.setenv(name, value)
    data, symbols = renamed_universe(
        btc_data(shared_data, bars=60, start_ms=RALLY_START_MS, history=WARMUP + 30), SYMBOLS
    )
    with running_simulator(data, weight_limit=LIMIT, weight_window_s=WINDOW_S) as sim:
        started = time.monotonic()
        config = write_configs(tmp_path, sim, symbols, strategy={"warmup_bars": WARMUP})
        with live_node(config) as node:

            def warm_or_refused() -> dict[str, int] | None:
                if any(r.status in (418, 429) for r in sim.request_log.entries):
                    return {"refused": 1}
                bars = node.call(lambda: {i: len(node.node.cache.bars(b)) for i, b in _bar_types(node).items()})
                return bars if min(bars.values()) > 0 else None

            bars = wait_for(warm_or_refused, 60, "every symbol's warm-up bars")
            log = sim.request_log.as_dicts()
            budget = budget_for(sim.http_url)
        refused = [(r["method"], r["path"], r["status"]) for r in log if r["status"] in (418, 429)]
        assert refused == [], f"{len(refused)} requests refused, first {refused[:3]}"
        peak = max(r["used_weight_1m"] for r in log)
        assert peak <= LIMIT * DEFAULT_SHARE, f"peak {peak} of {LIMIT} per {WINDOW_S} s"
        assert budget.limit == LIMIT and budget.window_s == WINDOW_S  # learnt from exchangeInfo
        assert budget.waited_s > 0  # it had to pace: the start-up weighs more than one window allows
        # Every symbol warmed whole, one klines request of weight 2 each (121 bars: 120 closed, 1 forming).
        klines = [r for r in log if r["path"] == "/fapi/v1/klines"]
        assert len(klines) == SYMBOLS and {r["weight"] for r in klines} == {2}
        # The simulator's history ends at the minute it started (replay rebased to that "now"); the node asks for
        # the WARMUP bars before its own "now", so each minute boundary crossed meanwhile (a slow start under load)
        # leaves one bar fewer to serve.
        minutes_crossed = math.ceil((time.monotonic() - started) / 60)
        assert min(bars.values()) >= WARMUP - 1 - minutes_crossed, (minutes_crossed, bars)

        # A restart finds leverage and margin type already set: no request for them.
        before = len(sim.request_log.entries)
        with live_node(config):
            pass
        again = sim.request_log.as_dicts()[before:]
        assert not [r for r in again if r["path"] in ("/fapi/v1/leverage", "/fapi/v1/marginType")]
        assert not [r for r in again if r["status"] in (418, 429)]


def _bar_types(node: LiveNode) -> dict[str, object]:
    spec = node.strategy.config.bar_spec
    return {i.value: bar_type_for(i, spec) for i in node.strategy.market.instruments}


def test_a_429_at_start_waits_for_the_limit_to_reset_then_goes_on(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nautilus 1.231's HTTP client hands no response headers up, so no Retry-After: the budget waits for the
    end of the exchange's window (10 s here, a minute on Binance), then sends the same request again."""
    for name, value in SIM_ENV.items():
        monkeypatch.setenv(name, value)
    data = btc_data(shared_data, bars=60, start_ms=RALLY_START_MS, history=60)
    with running_simulator(data, weight_window_s=WINDOW_S) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        checked_node_config(load_live_settings(config))  # the process learns the 10 s window
        first = len(sim.request_log.entries)
        sim.throttle(429, retry_after_s=2, count=1)  # the preflight's first request
        with live_node(config) as node:
            assert node.strategy.is_running
        log = sim.request_log.as_dicts()[first:]
        assert [r["status"] for r in log[:2]] == [429, 200]
        assert [r for r in log[1:] if r["status"] in (418, 429)] == []
        assert log[1]["path"] == log[0]["path"]  # the same request, sent again
        window_end_ms = (log[0]["time_ms"] // (WINDOW_S * 1000) + 1) * WINDOW_S * 1000
        assert log[1]["time_ms"] >= window_end_ms - 5  # not before the limit reset


def test_a_418_stops_the_start_with_the_ban_end(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SIM_ENV.items():
        monkeypatch.setenv(name, value)
    with running_simulator(btc_data(shared_data, bars=60, history=60)) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        sim.ban(30)
        started = time.monotonic()
        with pytest.raises(PreflightError) as error:
            LiveNode(config, environ={**os.environ, **SIM_ENV})
        assert time.monotonic() - started < 5
        until = time.strftime("%Y-%m-%d %H:%M", time.gmtime(time.time() + 30))
        assert f"Binance banned this IP until {until}" in str(error.value)
        assert "\n" not in str(error.value)
        assert len(sim.request_log.entries) == 1  # one request told of the ban; none followed


def test_a_ban_during_the_connect_ends_ats_live_at_once_with_the_ban_end(shared_data: Path, tmp_path: Path) -> None:
    """The preflight passed; Binance bans the IP while Nautilus's client sets leverage: ``ats live`` sends
    nothing more, stops and says until when, instead of waiting out its start-up timeout."""
    data, symbols = renamed_universe(btc_data(shared_data, bars=60, start_ms=RALLY_START_MS, history=60), 20)
    with running_simulator(data) as sim:
        config = write_configs(tmp_path, sim, symbols)

        def ban_at_the_first_leverage() -> None:
            wait_for(lambda: sim.request_log.count("/fapi/v1/leverage") > 0, 60, "the connect", interval=0.005)
            sim.ban(120)

        banning = threading.Thread(target=ban_at_the_first_leverage, daemon=True)
        banning.start()
        node = NodeProcess(config, SIM_ENV)
        try:
            code = node.proc.wait(timeout=60)
            output = node.output()
        finally:
            node.close()
        banning.join(timeout=5)
        refused = [r for r in sim.request_log.entries if r.status == 418]
        ended_s = time.time() - refused[0].time_ms / 1000
    assert code == 1, output[-3000:]
    assert ended_s < 40  # not the 180 s start-up timeout
    error = next(line for line in output.splitlines() if line.startswith("ats live: error:"))
    until = time.strftime("%Y-%m-%d %H:%M", time.gmtime(refused[0].time_ms / 1000 + 120))
    assert f"Binance banned this IP until {until}" in error, error
    # Only requests already on their way when the first 418 came back were refused: none was sent after it.
    assert all(r.time_ms - refused[0].time_ms < 1_000 for r in refused), [r.time_ms for r in refused]
