"""Binance USDT-M perpetuals as Nautilus ``CryptoPerpetual`` instruments.

Binance's exchangeInfo is the source of truth: ``parse_exchange_info`` reads its JSON (a recorded response, or a
live one). For symbols not in the recording we keep a small table of their public exchange filters, read off
Binance's exchangeInfo in 2025 and cross-checked against the price and volume decimals of the real klines in
``../shared/data``: a live exchangeInfo JSON given to ``ats data ingest`` replaces the table's values.
"""

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

    @property
    def min_qty(self) -> str:
        return self.step_size


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


def filters_from_exchange_info(symbol_info: dict[str, Any]) -> SymbolFilters:
    by_type = {f["filterType"]: f for f in symbol_info.get("filters", [])}
    try:
        return SymbolFilters(
            tick_size=by_type["PRICE_FILTER"]["tickSize"],
            step_size=by_type["LOT_SIZE"]["stepSize"],
            min_notional=by_type["MIN_NOTIONAL"]["notional"],
            max_qty=by_type["LOT_SIZE"]["maxQty"],
            maint_margin=str(Decimal(symbol_info.get("maintMarginPercent", "2.5")) / 100),
        )
    except KeyError as exc:
        raise ValueError(
            f"exchangeInfo entry for {symbol_info.get('symbol')} lacks filter field {exc}"
        ) from exc


def parse_exchange_info(data: dict[str, Any]) -> list[CryptoPerpetual]:
    """Every USDT-margined PERPETUAL in a /fapi/v1/exchangeInfo answer."""
    if not isinstance(data, dict) or "symbols" not in data:
        raise ValueError("not a Binance futures exchangeInfo answer: no 'symbols' list")
    ts_ns = int(data.get("serverTime", 0)) * 1_000_000
    return [
        make_perpetual(info["symbol"], filters_from_exchange_info(info), ts_ns)
        for info in data["symbols"]
        if info.get("contractType") == "PERPETUAL" and info.get("quoteAsset") == "USDT"
    ]


def load_exchange_info(path: Path) -> list[CryptoPerpetual]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: exchangeInfo file not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    return parse_exchange_info(data)


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
    """The table's filters (current public values) for a symbol; the recording only where the table has none.

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
        f"unknown symbol {symbol!r}: not in the exchangeInfo recording nor in catalog/instruments.py "
        f"FILTERS_TABLE (known: {', '.join(sorted(FILTERS_TABLE))}); add its Binance filters there",
    )


def binance_perpetual(symbol: str) -> CryptoPerpetual:
    """The instrument for a USDT-M perpetual symbol such as ``BTCUSDT``."""
    return make_perpetual(symbol, known_filters(symbol))
