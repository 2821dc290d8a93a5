"""The live trading node: the backtest's strategy config, unchanged, on Nautilus's Binance USDT-M clients.

Modes: ``live`` (Binance mainnet, keys required), ``testnet`` (Binance futures testnet, testnet keys), and
``paper`` (live Binance market data, Nautilus's sandbox execution: no keys, no order reaches Binance).
Keys come only from the environment, and a missing one is reported before anything connects.
"""

import asyncio
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from nautilus_trader.adapters.binance import (
    BINANCE,
    BinanceAccountType,
    BinanceDataClientConfig,
    BinanceExecClientConfig,
)
from nautilus_trader.adapters.binance.common.enums import BinanceEnvironment
from nautilus_trader.adapters.binance.common.symbol import BinanceSymbol
from nautilus_trader.adapters.binance.futures.enums import BinanceFuturesMarginType
from nautilus_trader.adapters.sandbox.config import SandboxExecutionClientConfig
from nautilus_trader.adapters.sandbox.factory import SandboxLiveExecClientFactory
from nautilus_trader.config import (
    CacheConfig,
    ImportableActorConfig,
    ImportableStrategyConfig,
    InstrumentProviderConfig,
    LiveDataEngineConfig,
    LiveExecEngineConfig,
    LoggingConfig,
    TradingNodeConfig,
)
from nautilus_trader.live.node import TradingNode

from catalog.instruments import instrument_id_for
from nodes.backtest.speed import BufferedPortfolioAnalyzer
from nodes.live.liquidations import ws_base_url
from nodes.live.market_streams import attach_data_engine, market_streams_of
from nodes.live.order_path import direct_commands
from nodes.live.paced_clients import PacedBinanceLiveDataClientFactory, PacedBinanceLiveExecClientFactory
from nodes.live.preflight import http_base_url
from nodes.live.stream_watch import StreamGapWatch
from nodes.live.warm_start import prime_node
from nodes.paths import DEFAULT_LIVE_CONFIG, PACKAGE_DIR
from nodes.settings import (
    ConfigError,
    check_actors,
    check_keys,
    did_you_mean,
    load_backtest_settings,
    read_config_file,
)
from strategies.config import AtsStrategyConfig, parse_strategy_config
from strategies.downtime import RestartFacts
from strategies.scan import ScanEntries

MODES = ("live", "testnet", "paper")
KEY_VARIABLES = {
    "live": ("BINANCE_API_KEY", "BINANCE_API_SECRET"),
    "testnet": ("BINANCE_FUTURES_TESTNET_API_KEY", "BINANCE_FUTURES_TESTNET_API_SECRET"),
}


class MissingCredentialsError(RuntimeError):
    """An exchange key the chosen mode needs is not in the environment."""


@dataclass(frozen=True)
class LiveSettings:
    config_path: Path
    mode: str
    trader_id: str
    symbols: tuple[str, ...]
    strategy_path: str
    strategy_config_path: str
    strategy_config: dict[str, Any]
    leverage: int  # set per symbol at connect; the strategy's per-trade leverage never exceeds it
    margin_type: str
    base_url_http: str | None
    base_url_ws: str | None
    base_url_ws_stream: str | None
    paper_balance: float
    scan_once: bool
    reconciliation_lookback_mins: int
    log_level: str
    log_level_file: str
    log_directory: Path | None
    rate_limit_pause_s: float = 60.0
    # past bars per symbol requested at start: the factors settle after ~400 bars (docs/factors.md); one request
    warmup_bars: int = 500
    open_interest_interval_s: float = 300.0  # each symbol's open interest polled at most once per this
    check_weight_per_min: float = 12.0  # REST weight per minute the continuous checks against the exchange may use
    state_file: Path | None = None  # the strategy's open trades, remembered across restarts (not in paper mode)
    actors: tuple[dict[str, Any], ...] = field(default=())


LIVE_KEYS = (
    "strategy_from",
    "mode",
    "trader_id",
    "symbols",
    "leverage",
    "margin_type",
    "paper_balance",
    "scan_once",
    "reconciliation_lookback_mins",
    "log_level",
    "log_level_file",
    "log_directory",
    "warmup_bars",
    "open_interest_interval_s",
    "rate_limit_pause_s",
    "base_url_http",
    "base_url_ws",
    "base_url_ws_stream",
    "check_weight_per_min",
    "state_file",
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _typed(path: Path, live: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any, what: str) -> Any:
    value = live.get(key, default)
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise ConfigError(path, f"[live] {key} = {value!r}: {what}")
    return value


def _url(path: Path, live: dict[str, Any], key: str, schemes: tuple[str, ...]) -> str | None:
    value = live.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not value.startswith(schemes) or "://" not in value or value.endswith("://"):
        raise ConfigError(path, f"[live] {key} = {value!r}: a URL starting with {' or '.join(schemes)}")
    return value


def load_live_settings(
    path: Path | None = None, mode: str | None = None, scan_once: bool | None = None
) -> LiveSettings:
    """The checked settings of a live config file: unknown keys and wrong values are one-line errors, raised
    before any key is read from the environment or any connection is made."""
    path, raw = read_config_file(path, DEFAULT_LIVE_CONFIG)
    live = raw.get("live")
    if not isinstance(live, dict):
        raise ConfigError(path, "missing section [live]")
    unknown = sorted(set(raw) - {"live", "actors"})
    if unknown:
        raise ConfigError(
            path, f"unknown section(s) {unknown}{did_you_mean(unknown[0], ('live', 'actors'))}; known: live, actors"
        )
    check_keys(path, live, LIVE_KEYS, "[live]")
    base = PACKAGE_DIR.parent if path.is_relative_to(PACKAGE_DIR) else path.parent
    # The strategy comes from a backtest config file, so what was backtested is what trades.
    strategy_file = live.get("strategy_from")
    if not isinstance(strategy_file, str):
        raise ConfigError(path, "[live] strategy_from must name the backtest config whose [strategy] trades live")
    backtest_path = Path(strategy_file) if Path(strategy_file).is_absolute() else path.parent / strategy_file
    backtest = load_backtest_settings(backtest_path, check_catalog=False)
    mode = mode or live.get("mode", "live")
    if mode not in MODES:
        raise ConfigError(path, f"[live] mode = {mode!r}: one of {', '.join(MODES)}")
    margin_type = live.get("margin_type", "ISOLATED")
    if margin_type not in ("ISOLATED", "CROSSED"):
        raise ConfigError(path, f"[live] margin_type = {margin_type!r}: ISOLATED (recommended) or CROSSED")
    leverage = live.get("leverage", 5)
    max_leverage = (
        parse_strategy_config(backtest.strategy_config).sizing.max_leverage
        if backtest.strategy_config_path == AtsStrategyConfig.fully_qualified_name()
        else 125
    )
    if isinstance(leverage, bool) or not isinstance(leverage, int) or not 1 <= leverage <= max_leverage:
        raise ConfigError(path, f"[live] leverage = {leverage!r}: a whole number from 1 to max_leverage {max_leverage}")
    symbols = _typed(path, live, "symbols", list, list(backtest.symbols), 'a list of symbols like ["BTCUSDT"]')
    if not symbols or not all(isinstance(s, str) and s.upper().endswith("USDT") for s in symbols):
        raise ConfigError(path, f'[live] symbols = {symbols!r}: a non-empty list of symbols like ["BTCUSDT"]')
    log_level = live.get("log_level", "INFO")
    log_level_file = live.get("log_level_file", log_level)
    for key, level in (("log_level", log_level), ("log_level_file", log_level_file)):
        if level not in LOG_LEVELS:
            raise ConfigError(path, f"[live] {key} = {level!r}: one of {', '.join(LOG_LEVELS)}")
    number = (int, float)
    paper_balance = _typed(path, live, "paper_balance", number, 10_000, "a positive number of USDT")
    lookback = _typed(path, live, "reconciliation_lookback_mins", int, 7 * 24 * 60, "a whole number of minutes")
    pause = _typed(path, live, "rate_limit_pause_s", number, 60.0, "a number of seconds")
    oi_interval = _typed(path, live, "open_interest_interval_s", number, 300.0, "a number of seconds")
    for key, value in (
        ("paper_balance", paper_balance),
        ("reconciliation_lookback_mins", lookback),
        ("open_interest_interval_s", oi_interval),
    ):
        if value <= 0:
            raise ConfigError(path, f"[live] {key} = {value!r}: must be positive")
    if pause < 0:
        raise ConfigError(path, f"[live] rate_limit_pause_s = {pause!r}: must not be negative")
    trader_id = _typed(path, live, "trader_id", str, "ATS-001", "a name like ATS-001")
    if not re.fullmatch(r"[A-Za-z0-9_]+-[A-Za-z0-9_]+", trader_id):
        raise ConfigError(path, f"[live] trader_id = {trader_id!r}: a name with one hyphen, like ATS-001")
    scan_once_value = _typed(path, live, "scan_once", bool, False, "true or false")
    log_directory = _typed(path, live, "log_directory", str, "", "a folder")
    actors = check_actors(path, raw.get("actors", []))
    state_file = live.get("state_file", "state/trades.json")
    if not isinstance(state_file, str) or not state_file:
        raise ConfigError(path, f"[live] state_file = {state_file!r}: the file the open trades are remembered in")
    return LiveSettings(
        config_path=path,
        mode=mode,
        trader_id=trader_id,
        symbols=tuple(s.upper() for s in symbols),
        strategy_path=backtest.strategy_path,
        strategy_config_path=backtest.strategy_config_path,
        strategy_config=dict(backtest.strategy_config),
        leverage=leverage,
        margin_type=margin_type,
        base_url_http=_url(path, live, "base_url_http", ("http://", "https://")),
        base_url_ws=_url(path, live, "base_url_ws", ("ws://", "wss://")),
        base_url_ws_stream=_url(path, live, "base_url_ws_stream", ("ws://", "wss://")),
        paper_balance=float(paper_balance),
        scan_once=bool(scan_once_value if scan_once is None else scan_once),
        reconciliation_lookback_mins=lookback,
        log_level=log_level,
        log_level_file=log_level_file,
        log_directory=(base / log_directory) if log_directory else None,
        rate_limit_pause_s=float(pause),
        warmup_bars=_warmup_bars(path, live.get("warmup_bars", 500)),
        open_interest_interval_s=float(oi_interval),
        actors=actors,
        check_weight_per_min=_check_weight(path, live.get("check_weight_per_min", 12.0)),
        state_file=None if mode == "paper" else base / state_file,
    )


def _warmup_bars(path: Path, value: Any) -> int:
    # Binance weighs a klines request by its limit: up to 499 bars cost 2 each, so 50 symbols warm for 100.
    if not isinstance(value, int) or not 0 <= value <= 1500:
        raise ConfigError(path, f"[live] warmup_bars = {value!r}: a whole number of past bars from 0 to 1500")
    return value


def _check_weight(path: Path, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 6 <= value <= 600:
        raise ConfigError(
            path, f"[live] check_weight_per_min = {value!r}: REST weight per minute for the checks, from 6 to 600"
        )
    return float(value)


# Weights of the continuous checks on Binance: positionRisk (all symbols) 5; openOrders and openAlgoOrders
# without a symbol 40 each, plus the positionRisk the client adds to find the active symbols.
POSITION_CHECK_WEIGHT = 5
OPEN_ORDER_CHECK_WEIGHT = 85


@dataclass(frozen=True)
class CheckIntervals:
    positions_s: float  # positions compared with the exchange (missing fills fetched on a difference)
    open_orders_s: float  # open orders, regular and algo, compared with the exchange


def check_intervals(weight_per_min: float) -> CheckIntervals:
    """Intervals of Nautilus's continuous checks that spend ``weight_per_min`` of Binance's request weight,
    half on positions (cheap: a lost fill shows there first) and half on open orders."""
    half = weight_per_min / 2
    return CheckIntervals(
        positions_s=round(60 * POSITION_CHECK_WEIGHT / half, 1),
        open_orders_s=round(60 * OPEN_ORDER_CHECK_WEIGHT / half, 1),
    )


def credentials(mode: str, environ: dict[str, str] | None = None) -> tuple[str, str] | None:
    """(key, secret) for the mode from the environment; None in paper mode. Never logged or printed."""
    if mode == "paper":
        return None
    environ = os.environ if environ is None else environ
    names = KEY_VARIABLES[mode]
    missing = [name for name in names if not environ.get(name)]
    if missing:
        raise MissingCredentialsError(
            f"{mode} trading needs {' and '.join(missing)} in the environment "
            f"(export {names[0]}=... {names[1]}=...); or run with --paper for sandbox orders on live data",
        )
    return environ[names[0]], environ[names[1]]


def build_node_config(
    settings: LiveSettings,
    environ: dict[str, str] | None = None,
    keep_margin_type: tuple[str, ...] = (),
    account_settings: bool = True,
    restart: RestartFacts | None = None,
    symbol_settings: dict[str, tuple[int, str]] | None = None,
) -> TradingNodeConfig:
    """The node's config. ``keep_margin_type``: symbols whose margin type must not be touched (a position is
    open: Binance refuses the change and the client's connect would fail). ``account_settings=False`` leaves
    leverage and margin type alone altogether (``ats flatten`` only closes). ``symbol_settings``: the
    (leverage, margin type) each symbol already has on the account; only the ones that differ are set."""
    keys = credentials(settings.mode, environ)
    environment = BinanceEnvironment.TESTNET if settings.mode == "testnet" else BinanceEnvironment.LIVE
    instrument_ids = [instrument_id_for(s) for s in settings.symbols]
    provider = InstrumentProviderConfig(load_ids=frozenset(instrument_ids))
    data_client = BinanceDataClientConfig(
        account_type=BinanceAccountType.USDT_FUTURES,
        environment=environment,
        base_url_http=settings.base_url_http,
        base_url_ws=settings.base_url_ws,
        instrument_provider=provider,
    )
    exec_clients: dict[str, Any]
    if keys is None:
        exec_clients = {
            BINANCE: SandboxExecutionClientConfig(
                venue=BINANCE,
                starting_balances=[f"{settings.paper_balance} USDT"],
                base_currency="USDT",
                oms_type="NETTING",
                account_type="MARGIN",
                # The same leverage the live account gets at connect, so sizing and margin match.
                default_leverage=Decimal(settings.leverage),
                use_position_ids=False,
                instrument_provider=provider,
            ),
        }
    else:
        symbols = [BinanceSymbol(s) for s in settings.symbols]
        known = symbol_settings or {}

        def current(symbol: str) -> tuple[int | None, str | None]:
            return known.get(symbol, (None, None))

        exec_clients = {
            BINANCE: BinanceExecClientConfig(
                api_key=keys[0],
                api_secret=keys[1],
                account_type=BinanceAccountType.USDT_FUTURES,
                environment=environment,
                base_url_http=settings.base_url_http,
                base_url_ws=settings.base_url_ws_stream or settings.base_url_ws,
                base_url_ws_stream=settings.base_url_ws_stream,
                # One-way mode: NETTING with venue position ids off is what ran clean on Binance.
                use_position_ids=False,
                use_reduce_only=True,
                futures_leverages={s: settings.leverage for s in symbols if current(s)[0] != settings.leverage}
                if account_settings
                else None,
                futures_margin_types={
                    s: BinanceFuturesMarginType[settings.margin_type]
                    for s in symbols
                    if s not in keep_margin_type and current(s)[1] != settings.margin_type
                }
                if account_settings
                else None,
                instrument_provider=provider,
            ),
        }
    intervals = check_intervals(settings.check_weight_per_min)
    strategy_config = {
        "instrument_ids": [i.value for i in instrument_ids],
        **settings.strategy_config,
        "oms_type": "NETTING",
        # After a restart, reconciliation reports our open orders as external: claiming them routes their
        # fills and cancels to the strategy, which recovers each one's role (stop, TP) from the exchange state.
        "external_order_claims": [i.value for i in instrument_ids],
        "mode": settings.mode,
    }
    # Live only: warm the factors from past klines at start (the backtest warms on its own data). A value
    # in the strategy config itself wins.
    strategy_config.setdefault("warmup_bars", settings.warmup_bars)
    # Live only: the trades remembered across restarts, and what happened on the exchange while the node was down.
    sync = dict(strategy_config.get("sync", {}))
    if settings.state_file is not None:
        sync["memory_path"] = str(settings.state_file)
    if restart is not None:
        sync["restart"] = msgspec.to_builtins(restart)
    if sync:
        strategy_config["sync"] = sync
    if settings.scan_once:
        strategy_config["scan"] = {**strategy_config.get("scan", {}), "entries": ScanEntries.FIRST_SCAN.value}
    return TradingNodeConfig(
        trader_id=settings.trader_id,
        logging=LoggingConfig(
            log_level=settings.log_level,
            log_directory=str(settings.log_directory) if settings.log_directory else None,
            log_level_file=settings.log_level_file if settings.log_directory else None,
        ),
        data_engine=LiveDataEngineConfig(),
        exec_engine=LiveExecEngineConfig(
            reconciliation=True,
            reconciliation_lookback_mins=settings.reconciliation_lookback_mins,
            # Lost stream messages (a silence, a gap before a reconnect) leave the cache behind the exchange:
            # Nautilus compares positions and open orders (regular and algo) with the exchange at these
            # intervals, fetches the missing fills and applies them. Within 2 s of an order's or position's last
            # event it waits: the stream may still bring it.
            # Paper: the sandbox reports nothing, so every position would look lost: no checks.
            position_check_interval_secs=intervals.positions_s if keys is not None else None,
            position_check_threshold_ms=2_000,
            open_check_interval_secs=intervals.open_orders_s if keys is not None else None,
            open_check_open_only=True,
            open_check_threshold_ms=2_000,
            reconciliation_startup_delay_secs=1.0,
        ),
        cache=CacheConfig(),
        data_clients={BINANCE: data_client},
        exec_clients=exec_clients,
        strategies=[
            ImportableStrategyConfig(
                strategy_path=settings.strategy_path,
                config_path=settings.strategy_config_path,
                config=strategy_config,
            ),
        ],
        actors=[
            # Pauses new entries after a 429 / 418 until Binance's limit resets, and says so.
            ImportableActorConfig(
                actor_path="nodes.live.backoff:RateLimitBackoff",
                config_path="nodes.live.backoff:RateLimitBackoffConfig",
                config={"pause_after_429_s": settings.rate_limit_pause_s, "mode": settings.mode},
            ),
            # Binance streams no open interest: polled over REST, each symbol at most once per interval.
            ImportableActorConfig(
                actor_path="nodes.live.open_interest:OpenInterestPoller",
                config_path="nodes.live.open_interest:OpenInterestPollerConfig",
                config={
                    "instrument_ids": [i.value for i in instrument_ids],
                    "base_url_http": settings.base_url_http or http_base_url(settings.mode, None),
                    "interval_s": settings.open_interest_interval_s,
                },
            ),
            # Nor liquidations: Nautilus's adapter has no forceOrder stream, so this actor reads it itself.
            ImportableActorConfig(
                actor_path="nodes.live.liquidations:LiquidationStream",
                config_path="nodes.live.liquidations:LiquidationStreamConfig",
                config={
                    "instrument_ids": [i.value for i in instrument_ids],
                    "base_url_ws": ws_base_url(settings.mode, settings.base_url_ws),
                },
            ),
            # A pause in market data is a stream gap: reported, and the account checked against the exchange.
            ImportableActorConfig(
                actor_path="nodes.live.stream_watch:StreamGapWatch",
                config_path="nodes.live.stream_watch:StreamGapWatchConfig",
                config={"mode": settings.mode},
            ),
            *(ImportableActorConfig(**actor) for actor in settings.actors),
        ],
        timeout_connection=30.0,
        timeout_reconciliation=30.0,
        timeout_portfolio=10.0,
        timeout_disconnection=10.0,
        timeout_post_stop=5.0,
    )


def build_node(config: TradingNodeConfig, paper: bool, loop: asyncio.AbstractEventLoop | None = None) -> TradingNode:
    """A built node; pass a fresh ``loop`` when several nodes live one after another in one process (a
    disposed node closes its loop)."""
    node = TradingNode(config=config, loop=loop)
    # Every Binance request of the node waits for room in the process's weight budget (nodes/live/weight_budget.py).
    node.add_data_client_factory(BINANCE, PacedBinanceLiveDataClientFactory)
    node.add_exec_client_factory(BINANCE, SandboxLiveExecClientFactory if paper else PacedBinanceLiveExecClientFactory)
    node.build()
    # The portfolio records each closed position's PnL with two pandas concats (1-4 ms, growing with the trades
    # so far), inside the fill's handler and so inside the close burst that fills an exit; buffered, the same
    # series are built when something reads them.
    BufferedPortfolioAnalyzer.adopt(node.kernel.portfolio.analyzer)
    attach_data_engine(node)
    streams = market_streams_of(node)
    for actor in node.trader.actors():
        if streams and isinstance(actor, StreamGapWatch):  # a count, not a handler on every mark and bar
            actor.count_from(lambda: sum(s.received for s in streams))
    direct_commands(node)  # an order reaches its exec client within the strategy's submit_order
    prime_node(node)  # before anything subscribes: the first minute's close pays no first-use costs
    return node
