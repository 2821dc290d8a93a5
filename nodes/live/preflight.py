"""Checks before a live node connects: the config's symbols exist and trade, the account is in one-way mode.

They run with Nautilus's own Binance HTTP client and schemas, so what they accept is what the node will accept,
and they fail with a message that says what to change before any order can be sent.
"""

from dataclasses import dataclass
from decimal import Decimal

from nautilus_trader.adapters.binance.common.enums import BinanceAccountType, BinanceEnvironment
from nautilus_trader.adapters.binance.common.urls import get_http_base_url
from nautilus_trader.adapters.binance.futures.enums import BinanceFuturesContractStatus
from nautilus_trader.adapters.binance.futures.http.account import BinanceFuturesAccountHttpAPI
from nautilus_trader.adapters.binance.futures.http.market import BinanceFuturesMarketHttpAPI
from nautilus_trader.adapters.binance.http.client import BinanceHttpClient
from nautilus_trader.adapters.binance.http.error import BinanceError
from nautilus_trader.common.component import LiveClock
from nautilus_trader.core.nautilus_pyo3 import HttpError, HttpTimeoutError


class PreflightError(RuntimeError):
    """The exchange or the account does not fit the config; the message says what to change."""


@dataclass(frozen=True)
class PreflightResult:
    symbols: tuple[str, ...]
    hedge_mode_checked: bool
    # Symbols of the config with a position or open orders on the account. Binance refuses to change their
    # margin type (-4048 / -4047), which would abort the execution client's connect: the node leaves it as is.
    open_positions: tuple[str, ...] = ()


def http_base_url(mode: str, override: str | None) -> str:
    if override:
        return override
    environment = BinanceEnvironment.TESTNET if mode == "testnet" else BinanceEnvironment.LIVE
    return get_http_base_url(BinanceAccountType.USDT_FUTURES, environment, is_us=False)


def rest_client(
    clock: LiveClock, mode: str, keys: tuple[str, str] | None, base_url_http: str | None
) -> BinanceHttpClient:
    """Nautilus's Binance HTTP client for the mode (signed when given keys)."""
    return BinanceHttpClient(
        clock=clock,
        api_key=keys[0] if keys else None,
        api_secret=keys[1] if keys else None,
        base_url=http_base_url(mode, base_url_http),
    )


async def preflight(
    symbols: tuple[str, ...], mode: str, keys: tuple[str, str] | None, base_url_http: str | None
) -> PreflightResult:
    try:
        return await _preflight(symbols, mode, keys, base_url_http)
    except (HttpError, HttpTimeoutError, OSError) as e:
        url = http_base_url(mode, base_url_http)
        raise PreflightError(
            f"cannot reach the exchange at {url} ({e}); check the network and the config's URLs"
        ) from None
    except BinanceError as e:
        raise PreflightError(f"the exchange refused a check: {e.message}") from None


async def _preflight(
    symbols: tuple[str, ...], mode: str, keys: tuple[str, str] | None, base_url_http: str | None
) -> PreflightResult:
    clock = LiveClock()
    client = rest_client(clock, mode, keys, base_url_http)
    market = BinanceFuturesMarketHttpAPI(client, BinanceAccountType.USDT_FUTURES)
    info = await market.query_futures_exchange_info()
    trading = {
        s.symbol
        for s in info.symbols
        if s.status == BinanceFuturesContractStatus.TRADING and s.contractType == "PERPETUAL"
    }
    unknown = [s for s in symbols if s not in trading]
    if unknown:
        raise PreflightError(
            f"{', '.join(unknown)} not trading as a USDT-M perpetual on this exchange; remove "
            f"{'it' if len(unknown) == 1 else 'them'} from the config's symbols",
        )
    if keys is not None:
        account = BinanceFuturesAccountHttpAPI(client, clock, BinanceAccountType.USDT_FUTURES)
        mode_answer = await account.query_futures_hedge_mode()
        if mode_answer.dualSidePosition:
            raise PreflightError(
                "the account is in hedge mode (dual side position); ats trades in one-way mode. Switch it in "
                "Binance Futures > Preferences > Position Mode > One-way, with no open positions, then start again",
            )
        busy = {r.symbol for r in await account.query_futures_position_risk() if Decimal(r.positionAmt)}
        busy |= {o.symbol for o in await account.query_open_orders()}  # weight 40, once at start
        busy |= {o.symbol for o in await account.query_open_algo_orders()}
        open_positions = tuple(sorted(busy & set(symbols)))
        return PreflightResult(symbols=symbols, hedge_mode_checked=True, open_positions=open_positions)
    return PreflightResult(symbols=symbols, hedge_mode_checked=False)
