"""Start, run and stop live nodes: the trading node and the one-shot flatten node."""

import asyncio
import time

import msgspec
from nautilus_trader.common.component import LiveClock
from nautilus_trader.config import ImportableStrategyConfig, TradingNodeConfig
from nautilus_trader.live.node import TradingNode

from nodes.live.config import LiveSettings, build_node, build_node_config, credentials
from nodes.live.preflight import PreflightResult, preflight, rest_client
from nodes.live.recovery import recover
from strategies.downtime import RestartFacts


def checked_node_config(
    settings: LiveSettings, environ: dict[str, str] | None = None, account_settings: bool = True
) -> TradingNodeConfig:
    """The node config, after every check that can fail before an order: keys, symbols, position mode.

    A missing key fails first, before anything connects; then the preflight asks the exchange. A trading node
    (``account_settings``) also gets what happened while it was down (``nodes/live/recovery.py``).
    """
    keys = credentials(settings.mode, environ)

    async def ask() -> tuple[PreflightResult, RestartFacts | None]:
        result = await preflight(settings.symbols, settings.mode, keys, settings.base_url_http)
        if keys is None or not account_settings:
            return result, None
        clock = LiveClock()
        client = rest_client(clock, settings.mode, keys, settings.base_url_http)
        return result, await recover(client, clock, settings.state_file)

    result, restart = asyncio.run(ask())
    return build_node_config(settings, environ, result.open_positions, account_settings, restart)


def run_live_node(settings: LiveSettings) -> int:
    """Run until Ctrl-C (SIGINT) or SIGTERM. Stopping cancels nothing: positions keep their exchange-side stops
    and take-profits, and the next start adopts them."""
    node = build_node(checked_node_config(settings), paper=settings.mode == "paper")
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
