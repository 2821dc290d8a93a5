"""Start, run and stop live nodes: the trading node and the one-shot flatten node."""

import asyncio
import gc
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec
from nautilus_trader.adapters.binance.http.error import BinanceError
from nautilus_trader.common.component import LiveClock
from nautilus_trader.config import ImportableStrategyConfig, TradingNodeConfig
from nautilus_trader.core.nautilus_pyo3 import HttpError, HttpTimeoutError
from nautilus_trader.live.node import TradingNode

from nodes.live.config import LiveSettings, build_node, build_node_config, credentials
from nodes.live.preflight import PreflightError, PreflightResult, http_base_url, preflight, rest_client
from nodes.live.recovery import recover
from nodes.live.weight_budget import IpBanned, budget_for
from nodes.telegram.config import TelegramNotifierConfig
from nodes.telegram.credentials import read_chat_ids, read_token
from strategies.downtime import RestartFacts

TELEGRAM_CONFIG_PATH = "nodes.telegram:TelegramNotifierConfig"


def checked_node_config(
    settings: LiveSettings, environ: dict[str, str] | None = None, account_settings: bool = True
) -> TradingNodeConfig:
    """The node config, after every check that can fail before an order: keys, symbols, position mode.

    A missing key fails first, before anything connects; then the preflight asks the exchange. A trading node
    (``account_settings``) also gets what happened while it was down (``nodes/live/recovery.py``).
    """
    keys = credentials(settings.mode, environ)
    check_actor_secrets(settings.actors, environ)

    async def ask() -> tuple[PreflightResult, RestartFacts | None]:
        margin_type = settings.margin_type if account_settings else None
        result = await preflight(settings.symbols, settings.mode, keys, settings.base_url_http, margin_type)
        if keys is None or not account_settings:
            return result, None
        clock = LiveClock()
        client = rest_client(clock, settings.mode, keys, settings.base_url_http)
        try:
            return result, await recover(client, clock, settings.state_file)
        except IpBanned as e:
            raise PreflightError(e.line) from None
        except (BinanceError, HttpError, HttpTimeoutError, OSError, ValueError) as e:
            why = e.message if isinstance(e, BinanceError) else e
            raise PreflightError(f"reading what happened while the node was down failed: {why}") from None

    result, restart = asyncio.run(ask())
    return build_node_config(
        settings, environ, result.open_positions, account_settings, restart, result.symbol_settings
    )


# How long after the trader starts the start-up's objects are frozen: connect, reconciliation and the warm-up
# klines of a few hundred symbols are done by then.
FREEZE_AFTER_START_S = 30.0
# The youngest generation's threshold once frozen (Python's default: 700 allocations). See freeze_startup_objects.
GEN0_THRESHOLD = 10_000


def freeze_startup_objects(node: TradingNode, after_s: float = FREEZE_AFTER_START_S) -> None:
    """Once the node has run ``after_s``, collect, then keep every object alive at that moment out of later
    collections (``gc.freeze``).

    What exists then (modules, instruments, clients, the warm-up history in the cache and the factors) lives
    as long as the node, yet each full collection of the cyclic garbage collector would sweep all of it
    again: with 200 symbols that was a 300-400 ms pause of the event loop every minute or so at 10x replay
    (``benchmarks live-load``). Objects created later are collected as usual. Scheduled with loop callbacks
    (no task), so a node stopped before then leaves nothing pending.

    Then the youngest generation is collected after ``GEN0_THRESHOLD`` container objects instead of 700. A
    minute's close (200 bars, the scan, its orders) creates thousands of short-lived containers; at 700 the
    collector ran several times inside it, each time walking what the scan still held and moving it to an older
    generation, to be walked again there (``benchmarks live-load``: about 200 collections in a 10x hour, most
    inside a close). Objects that die by reference count never wait for a collection, so what waits is cyclic
    garbage, at most that many objects: memory stays flat (the benchmark's memory row). A collection's pause grows
    with the threshold: at 50,000 one collection a 10x hour, of 26 ms; at 10,000 seven, the longest 22 ms (at 700:
    ~190, the longest 9-15 ms).
    """
    loop = node.get_event_loop()
    assert loop is not None

    def freeze() -> None:
        gc.collect()
        gc.freeze()
        gc.set_threshold(GEN0_THRESHOLD, *gc.get_threshold()[1:])

    def when_running() -> None:
        if node.trader.is_running:
            loop.call_later(after_s, freeze)
        else:
            loop.call_later(0.5, when_running)

    loop.call_soon(when_running)


def check_actor_secrets(actors: tuple[dict[str, Any], ...], environ: dict[str, str] | None = None) -> None:
    """A live Telegram notifier needs its bot token and chat ids: missing ones are an error before anything
    connects (the actor itself would only fail once the node had connected and set up the account)."""
    for actor in actors:
        if actor.get("config_path") != TELEGRAM_CONFIG_PATH:
            continue
        config = msgspec.convert(actor.get("config", {}), TelegramNotifierConfig)
        if config.mode == "live":
            read_token(config.token_env, environ)
            read_chat_ids(config.chat_ids_env, environ)


def run_live_node(settings: LiveSettings, start_timeout_s: float = 180.0) -> int:
    """Run until Ctrl-C (SIGINT) or SIGTERM; 0 then, 1 when the node failed to start (the log says why).
    Stopping cancels nothing: positions keep their exchange-side stops and take-profits, and the next start
    adopts them."""
    node = build_node(checked_node_config(settings), paper=settings.mode == "paper")
    freeze_startup_objects(node)
    loop = node.get_event_loop()
    budget = budget_for(http_base_url(settings.mode, settings.base_url_http))
    started = False
    try:
        started = loop.run_until_complete(_run_once_started(node, start_timeout_s, budget.banned))
    except KeyboardInterrupt:
        started = True
    finally:
        try:
            node.stop()
            _settle(loop)
        finally:
            node.dispose()
    if not started:
        banned = budget.banned()
        why = banned.line if banned else "the log above says why"
        print(f"ats live: error: the node did not start; {why}", file=sys.stderr)
    return 0 if started else 1


async def _run_once_started(
    node: TradingNode, start_timeout_s: float, banned: Callable[[], IpBanned | None] = lambda: None
) -> bool:
    """Run the node; True when it started (and then ran until stopped), False when it did not start in time,
    its start failed, or Binance banned the IP meanwhile (waiting would only reach the exchange again after the
    ban: the node stops at once)."""
    runner = asyncio.ensure_future(node.run_async())
    deadline = time.monotonic() + start_timeout_s
    while not runner.done() and not node.trader.is_running and time.monotonic() < deadline:
        if banned() is not None:
            break
        await asyncio.sleep(0.1)
    if not node.trader.is_running or banned() is not None:
        if not runner.done():
            runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        return False
    await asyncio.gather(runner, return_exceptions=True)
    return True


def _settle(loop: asyncio.AbstractEventLoop) -> None:
    """Let the clients' last tasks (disconnects) finish or cancel them, so none is destroyed pending."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not pending:
        return
    _, still = loop.run_until_complete(asyncio.wait(pending, timeout=5.0))
    for task in still:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*still, return_exceptions=True))


async def _run_until_flat(node: TradingNode, timeout_s: float) -> bool:
    runner = asyncio.ensure_future(node.run_async())
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not runner.done():
            strategies = node.trader.strategies()
            if strategies and strategies[0].is_flat():
                return True
            await asyncio.sleep(0.2)
        return False
    finally:
        await node.stop_async()
        runner.cancel()


def flatten_account(settings: LiveSettings, timeout_s: float = 60.0, environ: dict[str, str] | None = None) -> bool:
    """Close every position and cancel every order; True once the account is flat within the timeout."""
    config = checked_node_config(settings, environ, account_settings=False)
    flattener = ImportableStrategyConfig(
        strategy_path="nodes.live.flatten:Flattener",
        config_path="nodes.live.flatten:FlattenConfig",
        config={
            "instrument_ids": list(config.strategies[0].config["instrument_ids"]),
            "external_order_claims": list(config.strategies[0].config["instrument_ids"]),
            "oms_type": "NETTING",
        },
    )
    node = build_node(
        msgspec.structs.replace(config, strategies=[flattener], actors=[]), paper=False, loop=asyncio.new_event_loop()
    )
    loop = node.get_event_loop()
    try:
        return loop.run_until_complete(_run_until_flat(node, timeout_s))
    finally:
        _settle(loop)
        node.dispose()
