"""The replay as a client sees it: several symbols in lock step, pacing, pause and play, funding settled at the
recorded funding time with the recorded rate."""

import asyncio
import gzip
import time
from decimal import Decimal
from pathlib import Path

import aiohttp
import httpx

from simulator import BinanceSimulator, SimulatorConfig
from simulator.series import ReplaySchedule
from simulator.server import replay_shift_ms
from simulator.sources import from_files
from tests.simulator_support import API_KEY, API_SECRET, BTC_1M, BTC_FUNDING, SignedClient, running_simulator

ETH_1M = "ohlcv_2025-03_2025-06/ETHUSDT-1m.csv.gz"
FUNDING_AT_MS = 1_746_374_400_000  # 2025-05-04 16:00 UTC, recorded rate 3.745e-05


def test_symbols_replay_in_lock_step(shared_data: Path) -> None:
    data = from_files([shared_data / BTC_1M, shared_data / ETH_1M]).window(limit=6)
    config = SimulatorConfig(data.instruments, data.series, API_KEY, API_SECRET, bar_seconds=0.05, autostart=False)
    with BinanceSimulator(config) as sim:
        info = httpx.get(f"{sim.http_url}/fapi/v1/exchangeInfo").json()
        assert sorted(s["symbol"] for s in info["symbols"]) == ["BTCUSDT", "ETHUSDT"]

        async def closed_klines() -> list[tuple[str, int]]:
            async with aiohttp.ClientSession() as session:
                url = f"{sim.ws_url}/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m"
                async with session.ws_connect(url) as ws:
                    await asyncio.sleep(0.1)
                    await asyncio.to_thread(sim.play)
                    closed: list[tuple[str, int]] = []
                    while len(closed) < 8:
                        k = (await ws.receive_json(timeout=5))["data"]["k"]
                        if k["x"]:
                            closed.append((k["s"], k["t"]))
                    return closed

        closed = asyncio.run(closed_klines())
    times = sorted({t for _, t in closed})
    assert [s for s, _ in closed] == ["BTCUSDT", "ETHUSDT"] * 4
    assert [t for _, t in closed] == [t for t in times for _ in range(2)]
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [60_000] * 3


def test_series_keep_the_files_values_and_renamed_series_share_their_arrays(shared_data: Path) -> None:
    data = from_files([shared_data / BTC_1M, shared_data / ETH_1M]).window(limit=2)
    btc, eth = sorted(data.series, key=lambda s: s.symbol)
    copy = btc.renamed("BTC2USDT")
    assert copy.open is btc.open and copy.open_time is btc.open_time and copy.symbol == "BTC2USDT"
    with gzip.open(shared_data / BTC_1M, "rt") as lines:
        next(lines)
        first = next(lines).strip().split(",")
    k = btc.kline(0)
    assert (k.open_time, k.open, k.high, k.low, k.close, k.volume) == (
        int(first[0]),
        *(Decimal(v) for v in first[1:6]),
    )
    # the two files start at different times: the schedule steps every symbol that opens a bar at each moment
    ticks = list(ReplaySchedule({"BTCUSDT": btc, "BTC2USDT": copy, "ETHUSDT": eth}).ticks())
    opened = [(step.symbol, step.kline.open_time) for tick in ticks[::4] for step in tick]
    assert sorted(opened, key=lambda p: (p[1], p[0])) == opened
    assert [s for s, _ in opened].count("BTC2USDT") == 2 and len(opened) == 6
    assert all(len({step.symbol for step in tick}) == len(tick) for tick in ticks)


def test_pacing_pause_and_play(shared_data: Path) -> None:
    data = from_files([shared_data / BTC_1M]).window(limit=40)
    config = SimulatorConfig(data.instruments, data.series, API_KEY, API_SECRET, bar_seconds=0.4)
    with BinanceSimulator(config) as sim:
        started = time.monotonic()
        while sim.status()["tick"] < 8:  # two bars, four ticks each
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        assert 0.5 <= elapsed <= 2.5, elapsed
        control = httpx.Client(base_url=sim.http_url)
        assert control.post("/_sim/replay", json={"action": "pause"}).json()["ok"]
        paused_at = sim.status()["tick"]
        time.sleep(0.5)
        assert sim.status()["tick"] - paused_at <= 1 and not sim.status()["playing"]
        assert control.post("/_sim/replay", json={"action": "play"}).json()["ok"]
        time.sleep(0.5)
        assert sim.status()["tick"] > paused_at + 1
        assert control.post("/_sim/replay", json={"action": "rewind"}).status_code == 400
        control.close()


def test_funding_is_settled_at_the_recorded_time_and_rate(shared_data: Path) -> None:
    data = from_files([shared_data / BTC_1M, shared_data / BTC_FUNDING]).window(
        start_ms=FUNDING_AT_MS - 3 * 60_000, limit=6
    )
    with running_simulator(data, bar_seconds=0.1) as sim:
        client = SignedClient(sim.http_url)
        assert (
            client.signed(
                "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.100"
            ).status_code
            == 200
        )
        wallet_before = Decimal(sim.status()["wallet_balance"])
        sim.play()
        deadline = time.monotonic() + 10
        while not sim.funding_events and time.monotonic() < deadline:
            time.sleep(0.02)
        client.close()
        symbol, funding_time, paid = sim.funding_events[0]
        status = sim.status()
    mark = Decimal(status["mark"]["BTCUSDT"])
    assert (symbol, funding_time) == ("BTCUSDT", FUNDING_AT_MS)
    assert paid < 0  # a long pays a positive rate
    assert abs(paid - (-Decimal("0.100") * mark * Decimal("3.745e-05"))) < Decimal("0.01")
    assert Decimal(status["wallet_balance"]) == wallet_before + paid  # nothing else moved the wallet
    assert Decimal(status["funding_paid"]) == paid


def test_vision_klines_keep_trade_count_and_taker_volume(shared_data: Path) -> None:
    path = shared_data / "klines_1m_vision/ALGOUSDT-1m-2023-02.csv.gz"
    data = from_files([path]).window(limit=3)
    config = SimulatorConfig(
        data.instruments, data.series, API_KEY, API_SECRET, bar_seconds=0.05, autostart=False, rebase_time=False
    )
    with BinanceSimulator(config) as sim:

        async def first_closed() -> dict[str, object]:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"{sim.ws_url}/ws/algousdt@kline_1m") as ws:
                    await asyncio.sleep(0.1)
                    await asyncio.to_thread(sim.play)
                    while True:
                        k = (await ws.receive_json(timeout=5))["k"]
                        if k["x"]:
                            return k

        k = asyncio.run(first_closed())
    # The file's first row: 2023-02-01 00:00 UTC.
    with gzip.open(path, "rt") as lines:
        next(lines)
        first = next(lines).split(",")
    assert k["t"] == int(first[0]) and k["T"] == int(first[6])
    assert (Decimal(k["o"]), Decimal(k["c"]), k["n"]) == (Decimal(first[1]), Decimal(first[4]), int(first[8]))
    assert Decimal(k["V"]) == Decimal(first[9]) and abs(Decimal(k["Q"]) - Decimal(first[10])) < Decimal("0.0001")


def test_rebased_replay_keeps_bars_on_their_interval_grid(shared_data: Path) -> None:
    """A 15-minute or hourly scan keys on bar times: the rebase must move bars by whole intervals."""
    data = from_files([shared_data / BTC_1M]).window(limit=3)
    config = SimulatorConfig(data.instruments, data.series, API_KEY, API_SECRET, bar_seconds=0.05, autostart=False)
    before_ms = int(time.time() * 1000)
    with BinanceSimulator(config) as sim:

        async def closed_open_times() -> list[int]:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"{sim.ws_url}/ws/btcusdt@kline_1m") as ws:
                    await asyncio.sleep(0.1)
                    await asyncio.to_thread(sim.play)
                    opens: list[int] = []
                    while len(opens) < 3:
                        k = (await ws.receive_json(timeout=5))["k"]
                        if k["x"]:
                            opens.append(k["t"])
                    return opens

        opens = asyncio.run(closed_open_times())
    assert all(t % 60_000 == 0 for t in opens)
    assert before_ms - 60_000 < opens[0] <= int(time.time() * 1000)  # the replay starts less than a bar ago


def test_replay_shift_is_whole_grid_steps() -> None:
    hour = 3_600_000
    now, first_open = 1_764_120_000_123, 1_746_374_400_000
    shift = replay_shift_ms(now, first_open, hour)
    assert shift % hour == 0 and 0 <= now - (first_open + shift) < hour
