"""Start, run and stop live nodes: the trading node and the one-shot flatten node."""

import asyncio
import gc
import time

import msgspec
from nautilus_trader.config import ImportableStrategyConfig, TradingNodeConfig
from nautilus_trader.live.node import TradingNode

from nodes.live.config import LiveSettings, build_node, build_node_config, credentials
from nodes.live.preflight import preflight


def checked_node_config(
    settings: LiveSettings, environ: dict[str, str] | None = None, account_settings: bool = True
) -> TradingNodeConfig:
    """The node config, after every check that can fail before an order: keys, symbols, position mode.

    A missing key fails first, before anything connects; then the preflight asks the exchange.
    """
    keys = credentials(settings.mode, environ)
    result = asyncio.run(preflight(settings.symbols, settings.mode, keys, settings.base_url_http))
    return build_node_config(settings, environ, result.open_positions, account_settings)


# How long after the trader starts the start-up's objects are frozen: connect, reconciliation and the warm-up
# klines of a few hundred symbols are done by then.
FREEZE_AFTER_START_S = 30.0


def freeze_startup_objects(node: TradingNode, after_s: float = FREEZE_AFTER_START_S) -> None:
    """Once the node has run ``after_s``, collect, then keep every object alive at that moment out of later
    collections (``gc.freeze``).

    What exists then (modules, instruments, clients, the warm-up history in the cache and the factors) lives
    as long as the node, yet each full collection of the cyclic garbage collector would sweep all of it
    again: with 200 symbols that was a 300-400 ms pause of the event loop every minute or so at 10x replay
    (``benchmarks live-load``). Objects created later are collected as usual. Scheduled with loop callbacks
    (no task), so a node stopped before then leaves nothing pending.
    """
    loop = node.get_event_loop()
    assert loop is not None

    def freeze() -> None:
        gc.collect()
        gc.freeze()

    def when_running() -> None:
        if node.trader.is_running:
            loop.call_later(after_s, freeze)
        else:
            loop.call_later(0.5, when_running)

    loop.call_soon(when_running)


def run_live_node(settings: LiveSettings) -> int:
    """Run until Ctrl-C (SIGINT) or SIGTERM. Stopping cancels nothing: positions keep their exchange-side stops
    and take-profits, and the next start adopts them."""
    node = build_node(checked_node_config(settings), paper=settings.mode == "paper")
    freeze_startup_objects(node)
    try:
        node.run()
    except KeyboardInterrupt:
        pass
    finally:
        try:
            node.stop()
        finally:
            node.dispose()
    return 0


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
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]  # the clients' leftover workers
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        node.dispose()
