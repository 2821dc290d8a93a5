"""Starts that cannot work end at once, with one line saying why and a non-zero exit code (``ats live`` in its
own process, as a trader runs it)."""

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from nodes.live.single_node import lock_path_for
from tests.live_support import PROJECT, SIM_ENV, NodeProcess, wait_for, write_configs
from tests.simulator_support import btc_data, running_simulator


def _ats(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nodes.cli", *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120
    )


def test_paper_mode_without_network_is_one_line(tmp_path: Path) -> None:
    """Before: a raw traceback from the HTTP client."""
    nowhere = SimpleNamespace(http_url="http://127.0.0.1:9", ws_url="ws://127.0.0.1:9")  # nothing listens there
    config = write_configs(tmp_path, nowhere, ["BTCUSDT"])  # type: ignore[arg-type]
    done = _ats("live", str(config), "--paper", env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("ats live: error: cannot reach the exchange at http://127.0.0.1:9"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_missing_telegram_token_is_refused_before_connecting(shared_data: Path, tmp_path: Path) -> None:
    """Before: the node connected, set leverage and margin type, then exited with code 0."""
    data = btc_data(shared_data, bars=20)
    with running_simulator(data) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"], telegram_url="http://127.0.0.1:9")
        done = _ats("live", str(config), env={**SIM_ENV, "PATH": "/usr/bin:/bin", "TELEGRAM_CHAT_IDS": "1"})
        requests = sim.request_log.as_dicts()
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "ats live: error: Telegram bot token missing: set the environment variable TELEGRAM_BOT_TOKEN"
    )
    assert requests == []  # nothing asked of the exchange


def test_a_start_that_fails_exits_non_zero(shared_data: Path, tmp_path: Path) -> None:
    """An actor that cannot start: the node stops, ``ats live`` exits 1. Before: it exited 0."""
    data = btc_data(shared_data, bars=20)
    with running_simulator(data) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        config.write_text(
            config.read_text() + '\n[[actors]]\nactor_path = "tests.live_support:FailingActor"\n'
            'config_path = "tests.live_support:FailingActorConfig"\nconfig = {}\n'
        )
        node = NodeProcess(config, SIM_ENV)
        try:
            code = node.proc.wait(timeout=120)
            output = node.output()
        finally:
            node.close()
    assert code == 1, output[-3000:]
    assert "ats live: error: the node did not start" in output and "this actor cannot start" in output


def test_a_second_node_on_the_same_trade_memory_is_refused(shared_data: Path, tmp_path: Path) -> None:
    """Two nodes on one account would enter every signal twice and stack stops. The second is refused before it
    asks the exchange anything; a node killed with SIGKILL leaves no lock behind."""
    data = btc_data(shared_data, bars=20)
    with running_simulator(data) as sim:
        config = write_configs(tmp_path, sim, ["BTCUSDT"])
        lock = lock_path_for(tmp_path / "state" / "trades.json")
        first = NodeProcess(config, SIM_ENV)
        try:
            wait_for(lambda: lock.exists() and lock.read_text().strip() == str(first.proc.pid), 60, "the node lock")
            second = _ats("live", str(config), env={**SIM_ENV, "PATH": "/usr/bin:/bin"})
            assert second.returncode == 2, second.stderr
            assert second.stderr.startswith(
                f"ats live: error: another ats live node (pid {first.proc.pid}) is trading with the trade memory"
            ), second.stderr
            assert first.proc.poll() is None, "the running node must not be disturbed"
            first.kill9()
            restarted = NodeProcess(config, SIM_ENV)
            try:
                wait_for(lambda: lock.read_text().strip() == str(restarted.proc.pid), 60, "the restarted node's lock")
                assert restarted.proc.poll() is None, restarted.output()[-2000:]
            finally:
                restarted.close()
        finally:
            first.close()
