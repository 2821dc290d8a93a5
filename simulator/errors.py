"""Binance error codes and messages, as the USDT-M futures REST API returns them.

The adapter reads ``code`` and ``msg`` from the JSON body of a 4xx answer (``BinanceClientError``), and its
retry logic keys on the code, so the codes and texts here follow Binance's documented ones.
"""

from dataclasses import dataclass, field


@dataclass
class BinanceApiError(Exception):
    """An error answer: HTTP status, Binance ``code`` and ``msg``, and extra headers (e.g. Retry-After)."""

    status: int
    code: int
    msg: str
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, int | str]:
        return {"code": self.code, "msg": self.msg}

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.code}: {self.msg}"


def invalid_signature() -> BinanceApiError:
    return BinanceApiError(400, -1022, "Signature for this request is not valid.")


def invalid_api_key() -> BinanceApiError:
    return BinanceApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")


def missing_api_key() -> BinanceApiError:
    return BinanceApiError(401, -2014, "API-key format invalid.")


def outside_recv_window() -> BinanceApiError:
    return BinanceApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")


def mandatory_param(name: str) -> BinanceApiError:
    return BinanceApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def bad_param(name: str) -> BinanceApiError:
    return BinanceApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]*$'.")


def invalid_symbol() -> BinanceApiError:
    return BinanceApiError(400, -1121, "Invalid symbol.")


def precision_over_max() -> BinanceApiError:
    return BinanceApiError(400, -1111, "Precision is over the maximum defined for this asset.")


def margin_insufficient() -> BinanceApiError:
    return BinanceApiError(400, -2019, "Margin is insufficient.")


def reduce_only_rejected() -> BinanceApiError:
    return BinanceApiError(400, -2022, "ReduceOnly Order is rejected.")


def unknown_order() -> BinanceApiError:
    return BinanceApiError(400, -2011, "Unknown order sent.")


def order_does_not_exist() -> BinanceApiError:
    return BinanceApiError(400, -2013, "Order does not exist.")


def duplicate_order() -> BinanceApiError:
    return BinanceApiError(400, -4015, "Client order id is not valid.")


def quantity_not_positive() -> BinanceApiError:
    return BinanceApiError(400, -4003, "Quantity less than or equal to zero.")


def quantity_too_large() -> BinanceApiError:
    return BinanceApiError(400, -4005, "Quantity greater than max quantity.")


def price_not_positive() -> BinanceApiError:
    return BinanceApiError(400, -4001, "Price less than 0.")


def price_out_of_range() -> BinanceApiError:
    return BinanceApiError(400, -4016, "Limit price can't be higher than max price.")


def price_too_low() -> BinanceApiError:
    return BinanceApiError(400, -4013, "Price less than min price.")


def tick_size() -> BinanceApiError:
    return BinanceApiError(400, -4014, "Price not increased by tick size.")


def step_size() -> BinanceApiError:
    return BinanceApiError(400, -4023, "Quantity not increased by step size.")


def min_notional(notional: str) -> BinanceApiError:
    return BinanceApiError(
        400, -4164, f"Order's notional must be no smaller than {notional} (unless you choose reduce only)."
    )


def stop_order_switch_algo() -> BinanceApiError:
    return BinanceApiError(
        400,
        -4120,
        "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
    )


def immediately_trigger() -> BinanceApiError:
    return BinanceApiError(400, -2021, "Order would immediately trigger.")


def no_need_to_change_margin_type() -> BinanceApiError:
    return BinanceApiError(400, -4046, "No need to change margin type.")


def margin_type_with_position() -> BinanceApiError:
    return BinanceApiError(400, -4048, "Margin type cannot be changed if there exists position.")


def invalid_leverage() -> BinanceApiError:
    return BinanceApiError(400, -4028, "Leverage is not valid.")


def no_need_to_change_position_side() -> BinanceApiError:
    return BinanceApiError(400, -4059, "No need to change position side.")


def position_side_not_match() -> BinanceApiError:
    return BinanceApiError(400, -4061, "Order's position side does not match user's setting.")


def invalid_listen_key() -> BinanceApiError:
    return BinanceApiError(400, -1125, "This listenKey does not exist.")


def too_many_requests(limit: int, retry_after: int) -> BinanceApiError:
    return BinanceApiError(
        429,
        -1003,
        f"Too many requests; current limit of IP is {limit} requests per minute. "
        "Please use the websocket for live updates to avoid polling the API.",
        {"Retry-After": str(retry_after)},
    )


def too_many_orders(limit: int, interval: str) -> BinanceApiError:
    return BinanceApiError(429, -1015, f"Too many new orders; current limit is {limit} orders per {interval}.")


def ip_banned(until_ms: int, retry_after: int) -> BinanceApiError:
    return BinanceApiError(
        418,
        -1003,
        f"Way too many requests; IP banned until {until_ms}. Please use the websocket for live updates to avoid bans.",
        {"Retry-After": str(retry_after)},
    )


def unknown_route() -> BinanceApiError:
    return BinanceApiError(404, -5000, "Path not found.")


def unsupported_method() -> BinanceApiError:
    return BinanceApiError(405, -1014, "Unsupported order combination.")
