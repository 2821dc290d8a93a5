"""Trading rules of the simulated symbols, taken from Nautilus ``CryptoPerpetual`` instruments, and the
``GET /fapi/v1/exchangeInfo`` answer built from them (same fields as Binance's, see the recorded response).
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from nautilus_trader.model.instruments import CryptoPerpetual

# The futures request-weight limit per minute (what X-MBX-USED-WEIGHT-1M counts against).
DEFAULT_WEIGHT_LIMIT = 2400


@dataclass(frozen=True)
class SymbolSpec:
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_price: Decimal
    max_price: Decimal
    min_notional: Decimal
    price_precision: int
    qty_precision: int
    maker_fee: Decimal
    taker_fee: Decimal
    maint_margin: Decimal
    init_margin: Decimal

    def fmt_price(self, value: Decimal) -> str:
        return f"{value:.{self.price_precision}f}"

    def fmt_qty(self, value: Decimal) -> str:
        return f"{value:.{self.qty_precision}f}"

    def round_price_down(self, value: Decimal) -> Decimal:
        return (value / self.tick_size).to_integral_value(rounding="ROUND_FLOOR") * self.tick_size

    def round_price_up(self, value: Decimal) -> Decimal:
        return (value / self.tick_size).to_integral_value(rounding="ROUND_CEILING") * self.tick_size


def spec_from_instrument(instrument: CryptoPerpetual) -> SymbolSpec:
    price_inc = Decimal(str(instrument.price_increment))
    size_inc = Decimal(str(instrument.size_increment))
    min_notional = Decimal(str(instrument.min_notional.as_decimal())) if instrument.min_notional else Decimal(5)
    max_qty = Decimal(str(instrument.max_quantity)) if instrument.max_quantity else Decimal(1_000_000)
    min_qty = Decimal(str(instrument.min_quantity)) if instrument.min_quantity else size_inc
    max_price = Decimal(str(instrument.max_price)) if instrument.max_price else Decimal(10_000_000)
    min_price = Decimal(str(instrument.min_price)) if instrument.min_price else price_inc
    return SymbolSpec(
        symbol=instrument.raw_symbol.value,
        base_asset=instrument.base_currency.code,
        quote_asset=instrument.quote_currency.code,
        tick_size=price_inc,
        step_size=size_inc,
        min_qty=min_qty,
        max_qty=max_qty,
        min_price=min_price,
        max_price=max_price,
        min_notional=min_notional,
        price_precision=instrument.price_precision,
        qty_precision=instrument.size_precision,
        maker_fee=Decimal(str(instrument.maker_fee)),
        taker_fee=Decimal(str(instrument.taker_fee)),
        maint_margin=Decimal(str(instrument.margin_maint)),
        init_margin=Decimal(str(instrument.margin_init)),
    )


def _plain(value: Decimal) -> str:
    """Binance prints filters without exponent and without trailing zeros beyond the step (e.g. "0.10")."""
    return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")


def symbol_info(spec: SymbolSpec) -> dict[str, Any]:
    return {
        "symbol": spec.symbol,
        "pair": spec.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "maintMarginPercent": f"{spec.maint_margin * 100:.4f}",
        "requiredMarginPercent": f"{spec.init_margin * 100:.4f}",
        "baseAsset": spec.base_asset,
        "quoteAsset": spec.quote_asset,
        "marginAsset": spec.quote_asset,
        "pricePrecision": spec.price_precision,
        "quantityPrecision": spec.qty_precision,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "filters": [
            {
                "minPrice": _plain(spec.min_price),
                "maxPrice": _plain(spec.max_price),
                "filterType": "PRICE_FILTER",
                "tickSize": _plain(spec.tick_size),
            },
            {
                "stepSize": _plain(spec.step_size),
                "filterType": "LOT_SIZE",
                "maxQty": _plain(spec.max_qty),
                "minQty": _plain(spec.min_qty),
            },
            {
                "stepSize": _plain(spec.step_size),
                "filterType": "MARKET_LOT_SIZE",
                "maxQty": _plain(spec.max_qty),
                "minQty": _plain(spec.min_qty),
            },
            {"limit": 200, "filterType": "MAX_NUM_ORDERS"},
            {"limit": 10, "filterType": "MAX_NUM_ALGO_ORDERS"},
            {"notional": _plain(spec.min_notional), "filterType": "MIN_NOTIONAL"},
            {
                "multiplierDown": "0.9500",
                "multiplierUp": "1.0500",
                "multiplierDecimal": "4",
                "filterType": "PERCENT_PRICE",
            },
        ],
        "orderTypes": [
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
            "TRAILING_STOP_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }


def exchange_info(specs: list[SymbolSpec], server_time_ms: int, weight_limit: dict[str, Any]) -> dict[str, Any]:
    """``weight_limit``: the REQUEST_WEIGHT row of rateLimits (``WeightCounter.rate_limit``)."""
    return {
        "timezone": "UTC",
        "serverTime": server_time_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            weight_limit,
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [symbol_info(s) for s in specs],
    }
