"""Binance USDT-M perpetuals as Nautilus ``CryptoPerpetual`` instruments.

Binance's exchangeInfo is the source of truth: ``read_exchange_info`` turns its JSON (fetched by ``ats data
download``, or any saved answer given to ``ats data ingest``) into one instrument per USDT perpetual, stamped at
the answer's ``serverTime``. The catalog keeps every such version, and a backtest uses the one nearest its
period (``nearest_version``). For data ingested with no exchangeInfo at all, a small offline table holds the
public filters of the shared data's symbols, read off Binance's exchangeInfo in 2025 and cross-checked against
the price and volume decimals of the real klines in ``../shared/data``.
"""

import functools
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.model.objects import Currency, Money, Price, Quantity

VENUE = Venue("BINANCE")
RECORDED_EXCHANGE_INFO = (
    Path(__file__).resolve().parents[2]
    / "shared/data/binance/api_recordings/rest/http_futures_market_exchange_info.json"
)

# Binance USDT-M VIP 0 commission rates (the recorded /fapi/v1/commissionRate answer for BTCUSDT says the same).
MAKER_FEE = Decimal("0.0002")
TAKER_FEE = Decimal("0.0005")


class UnknownSymbolError(ValueError):
    """A symbol that is neither in the exchangeInfo we have nor in the filters table."""


@dataclass(frozen=True)
class SymbolFilters:
    tick_size: str
    step_size: str
    min_notional: str
    max_qty: str = "1000000"
    maint_margin: str = "0.025"  # tier-1 maintenance margin rate
    min_quantity: str = ""  # LOT_SIZE minQty; empty: one step

    @property
    def min_qty(self) -> str:
        return self.min_quantity or self.step_size


# When the table's values were read off Binance: its instruments are stamped with this time, so an exchangeInfo
# ingested for another period is nearer that period than the table.
FILTERS_TABLE_AS_OF_NS = 1_751_241_600_000_000_000  # 2025-06-30 00:00 UTC

# Public PRICE_FILTER tickSize, LOT_SIZE stepSize and MIN_NOTIONAL of Binance USDT-M perpetuals (2025).
FILTERS_TABLE: dict[str, SymbolFilters] = {
    "BTCUSDT": SymbolFilters("0.10", "0.001", "100", "1000", "0.004"),
    "ETHUSDT": SymbolFilters("0.01", "0.001", "20", "10000", "0.005"),
    "SOLUSDT": SymbolFilters("0.01", "0.01", "5", "1000000", "0.005"),
    "XRPUSDT": SymbolFilters("0.0001", "0.1", "5", "10000000", "0.005"),
    "BNBUSDT": SymbolFilters("0.01", "0.01", "5", "10000", "0.005"),
    "ADAUSDT": SymbolFilters("0.0001", "1", "5", "10000000", "0.01"),
    "AVAXUSDT": SymbolFilters("0.001", "1", "5", "1000000", "0.01"),
    "BCHUSDT": SymbolFilters("0.01", "0.001", "5", "10000", "0.01"),
    "ENAUSDT": SymbolFilters("0.0001", "1", "5", "10000000", "0.01"),
    "ETCUSDT": SymbolFilters("0.001", "0.01", "5", "1000000", "0.01"),
    "LAYERUSDT": SymbolFilters("0.0001", "0.1", "5", "10000000", "0.025"),
    "LINKUSDT": SymbolFilters("0.001", "0.01", "5", "1000000", "0.01"),
    "LTCUSDT": SymbolFilters("0.01", "0.001", "5", "100000", "0.01"),
    "SUIUSDT": SymbolFilters("0.0001", "0.1", "5", "10000000", "0.01"),
    "XLMUSDT": SymbolFilters("0.00001", "1", "5", "10000000", "0.01"),
    "XMRUSDT": SymbolFilters("0.01", "0.001", "5", "10000", "0.01"),
    "ALGOUSDT": SymbolFilters("0.0001", "0.1", "5", "10000000", "0.01"),
    "DOTUSDT": SymbolFilters("0.001", "0.1", "5", "1000000", "0.01"),
    "FILUSDT": SymbolFilters("0.001", "0.1", "5", "1000000", "0.01"),
    "NEARUSDT": SymbolFilters("0.001", "1", "5", "1000000", "0.01"),
    "1000PEPEUSDT": SymbolFilters("0.0000001", "1", "5", "100000000", "0.01"),
    "BSVUSDT": SymbolFilters("0.01", "0.1", "5", "100000", "0.025"),
    "EOSUSDT": SymbolFilters("0.001", "0.1", "5", "1000000", "0.01"),
}


def instrument_id_for(symbol: str) -> InstrumentId:
    """``BTCUSDT`` -> ``BTCUSDT-PERP.BINANCE``, the id Nautilus's Binance adapter gives USDT-M perpetuals."""
    return InstrumentId(Symbol(f"{symbol.upper()}-PERP"), VENUE)


def symbol_of(instrument_id: InstrumentId | str) -> str:
    """``BTCUSDT-PERP.BINANCE`` -> ``BTCUSDT``."""
    value = instrument_id.value if isinstance(instrument_id, InstrumentId) else instrument_id
    return value.split(".")[0].removesuffix("-PERP")


def _precision(step: str) -> int:
    exponent = Decimal(step).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def make_perpetual(symbol: str, filters: SymbolFilters, ts_ns: int = 0) -> CryptoPerpetual:
    """A USDT-margined linear perpetual with Binance's filters and fees.

    ``margin_init`` is 1: Nautilus's leveraged margin model locks notional / leverage x margin_init, and Binance
    locks notional / leverage, so the leverage the strategy sets carries the whole requirement.
    """
    symbol = symbol.upper()
    if not symbol.endswith("USDT"):
        raise UnknownSymbolError(f"{symbol}: only USDT-margined perpetuals are supported (e.g. BTCUSDT)")
    base = symbol.removesuffix("USDT")
    tick = Decimal(filters.tick_size).normalize()
    step = Decimal(filters.step_size).normalize()
    price_precision, size_precision = _precision(filters.tick_size), _precision(filters.step_size)
    return CryptoPerpetual(
        instrument_id=instrument_id_for(symbol),
        raw_symbol=Symbol(symbol),
        base_currency=Currency.from_str(base),
        quote_currency=USDT,
        settlement_currency=USDT,
        is_inverse=False,
        price_precision=price_precision,
        size_precision=size_precision,
        price_increment=Price(tick, price_precision),
        size_increment=Quantity(step, size_precision),
        max_quantity=Quantity(Decimal(filters.max_qty), size_precision),
        min_quantity=Quantity(Decimal(filters.min_qty), size_precision),
        min_notional=Money(Decimal(filters.min_notional), USDT),
        margin_init=Decimal(1),
        margin_maint=Decimal(filters.maint_margin),
        maker_fee=MAKER_FEE,
        taker_fee=TAKER_FEE,
        ts_event=ts_ns,
        ts_init=ts_ns,
    )


class ExchangeInfoError(ValueError):
    """A JSON file that is not a Binance USDT-M exchangeInfo answer, or defines no usable USDT perpetual."""


EXCHANGE_INFO_HINT = "the answer of GET https://fapi.binance.com/fapi/v1/exchangeInfo, saved as a .json file"
# contractType values of USDT-margined perpetual swaps (TRADIFI_PERPETUAL: Binance's gold, silver... perpetuals)
PERPETUAL_CONTRACTS = ("PERPETUAL", "TRADIFI_PERPETUAL")


@dataclass(frozen=True)
class ExchangeInfo:
    """The USDT perpetuals of one exchangeInfo answer, stamped at its ``serverTime``."""

    instruments: list[CryptoPerpetual]
    server_time_ns: int
    skipped: list[tuple[str, str]]  # (symbol, why) of USDT perpetual entries that cannot be used
    other_contracts: int  # quarterlies, USDC-margined...: not ours, not an error


def filters_from_exchange_info(symbol_info: dict[str, Any]) -> SymbolFilters:
    by_type = {f.get("filterType"): f for f in symbol_info.get("filters", []) if isinstance(f, dict)}
    try:
        filters = SymbolFilters(
            tick_size=str(by_type["PRICE_FILTER"]["tickSize"]),
            step_size=str(by_type["LOT_SIZE"]["stepSize"]),
            min_notional=str(by_type["MIN_NOTIONAL"]["notional"]),
            max_qty=str(by_type["LOT_SIZE"]["maxQty"]),
            maint_margin=str(Decimal(str(symbol_info.get("maintMarginPercent", "2.5"))) / 100),
            min_quantity=str(by_type["LOT_SIZE"].get("minQty", "")),
        )
    except KeyError as exc:
        raise ValueError(f"lacks filter field {exc}") from None
    except (ArithmeticError, ValueError) as exc:
        raise ValueError(f"maintMarginPercent is not a number ({exc})") from None
    for name in ("tick_size", "step_size", "min_notional", "max_qty"):
        value = getattr(filters, name)
        try:
            number = Decimal(value)
        except ArithmeticError:
            raise ValueError(f"{name} {value!r} is not a number") from None
        if not number.is_finite() or number <= 0:
            raise ValueError(f"{name} {value!r} must be a positive number")
    return filters


def read_exchange_info(data: Any, source: object = "exchangeInfo") -> ExchangeInfo:
    """The USDT perpetuals of a /fapi/v1/exchangeInfo answer; entries that cannot be used are listed, not fatal.

    Raises ``ExchangeInfoError`` when ``data`` is not an exchangeInfo answer or yields no usable perpetual.
    """
    symbols = data.get("symbols") if isinstance(data, dict) else None
    if not isinstance(symbols, list) or not all(isinstance(s, dict) for s in symbols):
        raise ExchangeInfoError(
            f"{source}: not a Binance USDT-M futures exchangeInfo answer (no 'symbols' list of objects); "
            f"expected {EXCHANGE_INFO_HINT}"
        )
    server_time = data.get("serverTime")
    if not isinstance(server_time, int) or server_time <= 0:
        raise ExchangeInfoError(
            f"{source}: exchangeInfo without a 'serverTime' (epoch ms): it cannot say when its filters were "
            f"valid; use {EXCHANGE_INFO_HINT}"
        )
    ts_ns = server_time * 1_000_000
    instruments: list[CryptoPerpetual] = []
    skipped: list[tuple[str, str]] = []
    other = 0
    for info in symbols:
        symbol = str(info.get("symbol", "?"))
        usdt = info.get("quoteAsset") == "USDT" or symbol.endswith("USDT")
        if info.get("contractType") not in PERPETUAL_CONTRACTS or not usdt:
            other += 1
            continue
        try:
            if not symbol.endswith("USDT") or symbol == "USDT" or not symbol.isprintable() or " " in symbol:
                raise ValueError("not a USDT perpetual symbol name")
            instruments.append(make_perpetual(symbol, filters_from_exchange_info(info), ts_ns))
        except (ValueError, TypeError) as exc:
            skipped.append((symbol, str(exc)))
    if not instruments:
        reasons = "; ".join(f"{s}: {why}" for s, why in skipped[:5]) or "it lists no USDT perpetual"
        raise ExchangeInfoError(f"{source}: no usable USDT-M perpetual in this exchangeInfo ({reasons})")
    return ExchangeInfo(instruments, ts_ns, skipped, other)


def parse_exchange_info(data: dict[str, Any]) -> list[CryptoPerpetual]:
    """Every usable USDT-margined perpetual in a /fapi/v1/exchangeInfo answer."""
    return read_exchange_info(data).instruments


def load_exchange_info(path: Path) -> ExchangeInfo:
    """An exchangeInfo JSON file read and checked; every problem is an ``ExchangeInfoError`` naming the file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExchangeInfoError(f"{path}: exchangeInfo file not found") from None
    except UnicodeDecodeError as exc:
        raise ExchangeInfoError(f"{path}: not UTF-8 text (byte {exc.start}); is this a JSON file?") from None
    except json.JSONDecodeError as exc:
        raise ExchangeInfoError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return read_exchange_info(data, path)


def nearest_version(
    versions: list[CryptoPerpetual], start_ns: int | None = None, end_ns: int | None = None
) -> CryptoPerpetual:
    """The instrument definition whose exchangeInfo time is nearest the period (the newest without a period).

    Binance changes tick sizes, lot steps and minimum notionals over time; a backtest of 2023 uses the filters
    Binance had then when an exchangeInfo of that time was ingested.
    """
    if not versions:
        raise ValueError("no instrument versions")
    if start_ns is None and end_ns is None:
        return max(versions, key=lambda i: i.ts_init)
    low = start_ns if start_ns is not None else end_ns
    high = end_ns if end_ns is not None else start_ns

    def distance(instrument: CryptoPerpetual) -> tuple[int, int]:
        ts = instrument.ts_init
        gap = low - ts if ts < low else (ts - high if ts > high else 0)
        return gap, -ts  # on a tie the newer definition

    return min(versions, key=distance)


@functools.cache
def _recorded_filters() -> dict[str, SymbolFilters]:
    if not RECORDED_EXCHANGE_INFO.is_file():
        return {}
    data = json.loads(RECORDED_EXCHANGE_INFO.read_text())
    return {
        info["symbol"]: filters_from_exchange_info(info)
        for info in data["symbols"]
        if info.get("contractType") == "PERPETUAL"
    }


def known_filters(symbol: str) -> SymbolFilters:
    """The offline filters of a symbol: the table's (2025 public values), the recording only where it has none.

    The table wins over the 2022 recording because Binance has since raised BTCUSDT's minimum notional
    (10 -> 100 USDT) and ETHUSDT's (10 -> 20): a backtest must refuse what the exchange refuses today.
    """
    symbol = symbol.upper()
    if symbol in FILTERS_TABLE:
        return FILTERS_TABLE[symbol]
    recorded = _recorded_filters()
    if symbol in recorded:
        return recorded[symbol]
    raise UnknownSymbolError(
        f"unknown symbol {symbol!r}: no exchangeInfo defines it and the offline table has only "
        f"{', '.join(sorted(FILTERS_TABLE))}; ingest a Binance exchangeInfo that lists it "
        f"(`ats data ingest exchangeInfo.json`, or `ats data download {symbol} ...`, which fetches one)",
    )


def offline_symbols() -> set[str]:
    """Symbols the offline table (and the recorded exchangeInfo) define."""
    return set(FILTERS_TABLE) | set(_recorded_filters())


def binance_perpetual(symbol: str) -> CryptoPerpetual:
    """The offline instrument for a USDT-M perpetual symbol such as ``BTCUSDT`` (stamped at the table's date)."""
    return make_perpetual(symbol, known_filters(symbol), FILTERS_TABLE_AS_OF_NS)
