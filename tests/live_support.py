"""Helpers of the live-node tests: config files pointing at the simulator, the node in a thread or a process.

The node under test is always the real one: ``nodes.live.config`` builds a ``TradingNode`` with Nautilus's Binance
clients from a live TOML file whose base URLs point at a ``BinanceSimulator`` on loopback, and the strategy is
the real ``AtsStrategy``. The Telegram notifier, when asked for, talks to the fake Bot API server.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.live.node import TradingNode

from nodes.live.config import build_node, load_live_settings
from nodes.live.runner import checked_node_config
from simulator import BinanceSimulator
from strategies.ats import AtsStrategy
from strategies.config import with_overrides
from tests.simulator_support import API_KEY, API_SECRET

# Real BTCUSDT bars (2025-05-18 13:34 UTC on) that rise 0.3 % then 0.6 % within 25 minutes without a 0.5 % dip.
RALLY_START_MS = 1_747_575_240_000
PROJECT = Path(__file__).resolve().parents[1]
TELEGRAM_TOKEN = "7770001:AAE-live-tests-secret"
TRADER_CHAT = 424242
SIM_ENV = {"BINANCE_API_KEY": API_KEY, "BINANCE_API_SECRET": API_SECRET}

# Exits close to the entry, so the replayed real bars reach them within a minute of wall time. The strategy's
# logic is the same as with the design's 2 % / 4 % / 8 %; only the distances differ.
FAST_EXITS: dict[str, Any] = {
    "exits.stop_pct": 0.004,
    "exits.tp1_pct": 0.0025,
    "exits.tp2_pct": 0.005,
    "dynamic.enabled": False,
    "scan.interval_minutes": 1440,
    "scan.entries": "NONE",  # the tests enter with a manual signal
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {value!r}")


def _table(name: str, values: dict[str, Any]) -> str:
    """``[name]`` with its values; a value that is a strategy sub-config becomes its own ``[name.key]`` table."""
    tables = {k for k, v in values.items() if name.startswith("strategy.config") and isinstance(v, dict)} - {"weights"}
    text = f"[{name}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items() if k not in tables)
    return text + "".join(_table(f"{name}.{k}", values[k]) for k in tables)


def write_configs(
    folder: Path,
    sim: BinanceSimulator,
    symbols: list[str],
    strategy: dict[str, Any] | None = None,
    live: dict[str, Any] | None = None,
    telegram_url: str | None = None,
    backtest_extra: dict[str, Any] | None = None,
) -> Path:
    """A backtest config (the strategy, ``strategy`` as dotted keys) and a live config naming it, pointed at
    ``sim``; returns the live one."""
    folder.mkdir(parents=True, exist_ok=True)
    backtest = (
        _table("backtest", {"symbols": symbols, "bar": "1-MINUTE", **(backtest_extra or {})})
        + _table("venue", {"starting_balance": 10_000})
        + _table(
            "strategy", {"path": "strategies.ats:AtsStrategy", "config_path": "strategies.config:AtsStrategyConfig"}
        )
        + _table("strategy.config", with_overrides({}, {**FAST_EXITS, **(strategy or {})}))
    )
    (folder / "backtest.toml").write_text(backtest)
    settings = {
        "strategy_from": "backtest.toml",
        "trader_id": "LIVETEST-001",
        "leverage": 5,
        "base_url_http": sim.http_url,
        "base_url_ws": sim.ws_url,
        "base_url_ws_stream": sim.ws_url,
        "reconciliation_lookback_mins": 60,
        "check_weight_per_min": 300,
        "log_level": "WARNING",
        "log_level_file": "INFO",
        "log_directory": "logs",
        **(live or {}),
    }
    text = _table("live", settings)
    if telegram_url is not None:
        notifier = {
            "language": "en",
            "base_url": telegram_url,
            "poll_timeout_s": 1,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.5,
            "request_timeout_s": 3.0,
            "flush_timeout_s": 3.0,
        }
        text += (
            '\n[[actors]]\nactor_path = "nodes.telegram:TelegramNotifier"\n'
            'config_path = "nodes.telegram:TelegramNotifierConfig"\n'
            + "".join(f"config.{k} = {_toml_value(v)}\n" for k, v in notifier.items())
        )
    path = folder / "live.toml"
    path.write_text(text)
    return path


def telegram_env() -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "TELEGRAM_CHAT_IDS": str(TRADER_CHAT)}


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def play_to_first_bar(sim: Any, node: "LiveNode") -> None:
    """Start the replay and wait until the node's strategy has seen its first closed bar."""
    sim.play()
    wait_for(lambda: node.strategy.market.last_close, 30, "the first bar")


class LiveNode:
    """A node built by ``nodes.live.config`` from a config file, running on its own thread in this process."""

    def __init__(
        self,
        config_path: Path,
        mode: str | None = None,
        scan_once: bool | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.settings = load_live_settings(config_path, mode=mode, scan_once=scan_once)
        config = checked_node_config(self.settings, {**os.environ, **SIM_ENV} if environ is None else environ)
        # A fresh loop per node: a disposed node closes its loop, and the next node must not inherit it.
        self.node: TradingNode = build_node(config, paper=self.settings.mode == "paper", loop=asyncio.new_event_loop())
        self.thread = threading.Thread(target=self.node.run, daemon=True, name="live-node")

    @property
    def strategy(self) -> AtsStrategy:
        return next(s for s in self.node.trader.strategies() if isinstance(s, AtsStrategy))

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the node's loop thread (Nautilus components are not thread-safe) and return its result."""
        loop = self.node.get_event_loop()

        async def wrapper() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), loop).result(timeout=30)

    def control(self, command: str, *args: str) -> dict[str, Any]:
        return self.call(lambda: self.strategy.control(command, tuple(args)))

    def start(self) -> "LiveNode":
        self.thread.start()
        wait_for(lambda: self.node.trader.is_running and self.strategy.is_running, 90, "the node to start")
        return self

    def stop(self) -> None:
        loop = self.node.get_event_loop()
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self.node.stop)
        self.thread.join(timeout=60)
        if loop is not None and not loop.is_running() and not loop.is_closed():
            pending = asyncio.all_tasks(loop)  # Nautilus's executor workers would complain when collected
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.node.dispose()


@contextmanager
def live_node(
    config_path: Path, mode: str | None = None, scan_once: bool | None = None, environ: dict[str, str] | None = None
) -> Iterator[LiveNode]:
    node = LiveNode(config_path, mode, scan_once, environ)
    try:
        yield node.start()
    finally:
        node.stop()


class NodeProcess:
    """``ats live CONFIG`` in its own process, as a trader runs it; killable with SIGKILL or stopped with SIGINT."""

    def __init__(self, config_path: Path, env: dict[str, str], *args: str) -> None:
        self.log_path = config_path.parent / f"node-{time.time_ns()}.out"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nodes.cli", "live", str(config_path), *args],
            cwd=PROJECT,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def interrupt(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill9()
        self._log.close()


def exchange_orders(sim: BinanceSimulator, symbol: str = "BTCUSDT") -> list[dict[str, Any]]:
    """The open orders the simulated exchange holds for ``symbol`` (regular and conditional), as plain rows."""

    def rows() -> list[dict[str, Any]]:
        ex = sim.exchange
        out = [
            {"type": o.type, "side": o.side, "qty": o.remaining, "price": o.price, "reduce_only": o.reduce_only}
            for o in ex.orders.values()
            if o.is_open and o.symbol == symbol
        ]
        out += [
            {
                "type": a.order_type,
                "side": a.side,
                "qty": a.quantity,
                "price": a.trigger_price,
                "reduce_only": a.reduce_only or a.close_position,
            }
            for a in ex.algos.values()
            if a.is_open and a.symbol == symbol
        ]
        return out

    return sim.call(rows)


def exchange_position(sim: BinanceSimulator, symbol: str = "BTCUSDT") -> tuple[Any, Any]:
    """(signed amount, entry price) of the simulated account's position in ``symbol``."""
    return sim.call(lambda: (sim.exchange.positions[symbol].amount, sim.exchange.positions[symbol].entry_price))


def order_posts(sim: BinanceSimulator) -> int:
    """New-order requests (regular and conditional) the simulator has received."""
    return sim.request_log.count("/fapi/v1/order", "POST") + sim.request_log.count("/fapi/v1/algoOrder", "POST")


def node_positions(node: LiveNode) -> Callable[[], dict[str, Decimal]]:
    """The node's positions by raw symbol, signed, for ``InvariantMonitor(node_positions=...)``: the cache's open
    positions, and the strategy's open trades (a trade whose position the cache no longer holds counts with its
    entry quantity: a ghost)."""

    def rows() -> dict[str, Decimal]:
        strategy = node.strategy
        out: dict[str, Decimal] = {}
        for position in node.node.cache.positions_open():
            symbol = position.instrument_id.symbol.value.removesuffix("-PERP")
            out[symbol] = out.get(symbol, Decimal(0)) + position.signed_decimal_qty()
        for instrument_id, trade in strategy.trades.open.items():
            out.setdefault(instrument_id.symbol.value.removesuffix("-PERP"), trade.quantity * trade.sign)
        return {s: q for s, q in out.items() if q}

    return lambda: node.call(rows)


class FailingActorConfig(ActorConfig, frozen=True):
    pass


class FailingActor(Actor):
    """An actor whose start fails, as a broken plug-in's would: the node must not run on without it."""

    def on_start(self) -> None:
        raise RuntimeError("this actor cannot start")
