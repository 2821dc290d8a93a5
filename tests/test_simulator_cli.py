"""``ats simulator``: argument checks with clear errors, and the real command serving a client."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from nodes.cli import build_parser
from simulator.cli import KEY_ENV, SECRET_ENV, SimulatorUsageError, build_config
from tests.simulator_support import BTC_1M

ENV = {KEY_ENV: "k-123", SECRET_ENV: "s-456"}


def _args(*argv: str):
    return build_parser().parse_args(["simulator", *argv])


def test_build_config_from_files(shared_data: Path) -> None:
    args = _args(
        str(shared_data / BTC_1M), "--start", "2025-05-04T16:00", "--bars", "30", "--speed", "60", "--history", "20"
    )
    config = build_config(args, ENV)
    (series,) = config.bars
    assert len(series) == 50 and series.replay_from == 20 and series.replayed == 30
    assert series.open_time[19] == 1_746_374_400_000 - 60_000 and series.open_time[20] == 1_746_374_400_000
    assert config.bar_seconds == pytest.approx(1.0) and config.api_key == "k-123"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], ENV, "nothing to replay"),
        (["missing.csv.gz"], ENV, "no such file"),
        (["{data}"], {}, KEY_ENV),
        (["{data}", "--speed", "0"], ENV, "--speed must be > 0"),
        (["{data}", "--start", "yesterday"], ENV, "not an ISO time"),
        (["{data}", "--start", "2030-01-01"], ENV, "no bars left"),
        (["{data}", "--balance", "lots"], ENV, "not a number"),
        (["--catalog", "x"], ENV, "--instrument"),
        (["--capture", "nope.gz"], ENV, "no such capture file"),
    ],
)
def test_bad_arguments_are_clear(shared_data: Path, argv: list[str], env: dict[str, str], message: str) -> None:
    argv = [a.replace("{data}", str(shared_data / BTC_1M)) for a in argv]
    with pytest.raises(SimulatorUsageError, match=re.escape(message)):
        build_config(_args(*argv), env)


def test_command_serves_until_stopped(shared_data: Path) -> None:
    env = {**os.environ, **ENV}
    command = [
        sys.executable,
        "-m",
        "nodes.cli",
        "simulator",
        str(shared_data / BTC_1M),
        "--bars",
        "20",
        "--port",
        "0",
        "--speed",
        "600",
    ]
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            found = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
            url = found.group(1) if found else None
        assert url, "the command did not print its URL"
        info = httpx.get(f"{url}/fapi/v1/exchangeInfo", timeout=10).json()
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT"]
        assert "k-123" not in line and "s-456" not in line
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_build_config_from_a_capture(shared_data: Path) -> None:
    config = build_config(_args("--capture", str(shared_data / "ws_capture/ethusdt_20240808.gz")), ENV)
    assert [c.symbol for c in config.captures] == ["ETHUSDT"] and config.bars == []
    assert [i.raw_symbol.value for i in config.instruments] == ["ETHUSDT"]


def test_build_config_from_a_catalog(shared_data: Path, tmp_path: Path) -> None:
    from catalog.ingest import ingest

    ingest([shared_data / "klines_1m_vision/ALGOUSDT-1m-2023-02.csv.gz"], tmp_path)
    args = _args("--catalog", str(tmp_path), "--instrument", "ALGOUSDT-PERP.BINANCE", "--bars", "10")
    config = build_config(args, ENV)
    (series,) = config.bars
    # the catalog's BinanceBars keep their trade count and taker-buy volume
    assert series.replayed == 10 and series.count is not None and series.taker_buy_base is not None
    assert [i.id.value for i in config.instruments] == ["ALGOUSDT-PERP.BINANCE"]
    with pytest.raises(ValueError, match="none of"):
        build_config(_args("--catalog", str(tmp_path), "--instrument", "BTCUSDT-PERP.BINANCE"), ENV)
