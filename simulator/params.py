"""Reading and checking request parameters the way Binance does: mandatory fields, numbers, and the symbol's
PRICE_FILTER / LOT_SIZE / MIN_NOTIONAL filters, each failure with Binance's own error code.
"""

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from simulator import errors
from simulator.errors import BinanceApiError
from simulator.instruments import SymbolSpec

Params = Mapping[str, str]


def required(params: Params, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise errors.mandatory_param(name)
    return value


def decimal(params: Params, name: str, default: Decimal | None = None) -> Decimal | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        out = Decimal(value)
    except InvalidOperation:
        raise errors.mandatory_param(name) from None
    if not out.is_finite():
        raise errors.mandatory_param(name)
    return out


def integer(params: Params, name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if not value.lstrip("-").isdigit():
        raise errors.bad_param(name)
    return int(value)


def boolean(params: Params, name: str) -> bool:
    value = params.get(name, "false").lower()
    if value not in ("true", "false"):
        raise BinanceApiError(400, -1116, f"Invalid {name}.")
    return value == "true"


def one_of(params: Params, name: str, allowed: frozenset[str] | set[str], default: str | None = None) -> str:
    value = params.get(name, default)
    if value is None:
        raise errors.mandatory_param(name)
    if value not in allowed:
        code = {"side": -1117, "type": -1116, "timeInForce": -1115}.get(name, -1100)
        raise BinanceApiError(400, code, f"Invalid {name}.")
    return value


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def check_quantity(spec: SymbolSpec, qty: Decimal) -> None:
    if _decimals(qty) > spec.qty_precision:
        raise errors.precision_over_max()
    if qty <= 0:
        raise errors.quantity_not_positive()
    if qty % spec.step_size != 0:
        raise errors.step_size()
    if qty < spec.min_qty:
        raise BinanceApiError(400, -4004, "Quantity less than min quantity.")
    if qty > spec.max_qty:
        raise errors.quantity_too_large()


def check_price(spec: SymbolSpec, price: Decimal) -> None:
    if _decimals(price) > spec.price_precision:
        raise errors.precision_over_max()
    if price <= 0:
        raise errors.price_not_positive()
    if price % spec.tick_size != 0:
        raise errors.tick_size()
    if price < spec.min_price:
        raise errors.price_too_low()
    if price > spec.max_price:
        raise errors.price_out_of_range()


def check_notional(spec: SymbolSpec, qty: Decimal, price: Decimal, reduce_only: bool) -> None:
    if not reduce_only and qty * price < spec.min_notional:
        raise errors.min_notional(format(spec.min_notional.normalize(), "f"))
