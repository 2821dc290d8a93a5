"""Request authentication as Binance does it: the API-key header, an HMAC-SHA256 signature of the query,
and the ``timestamp`` / ``recvWindow`` freshness check."""

import hashlib
import hmac
import time

from simulator import errors

MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
FUTURE_TOLERANCE_MS = 1_000


def check_api_key(header_value: str | None, api_key: str) -> None:
    if not header_value:
        raise errors.missing_api_key()
    if not hmac.compare_digest(header_value, api_key):
        raise errors.invalid_api_key()


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def check_signature(raw_query: str, body: str, secret: str) -> None:
    """``signature`` (last in the query) must be the HMAC of all before it, then the body, as on Binance."""
    head, sep, signature = raw_query.rpartition("signature=")
    if not sep or not signature:
        raise errors.mandatory_param("signature")
    if "&" in signature:
        raise errors.invalid_signature()
    payload = head.removesuffix("&") + body
    if not hmac.compare_digest(sign(secret, payload), signature.lower()):
        raise errors.invalid_signature()


def check_timestamp(params: dict[str, str], now_ms: int | None = None) -> None:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    raw_ts = params.get("timestamp")
    if not raw_ts:
        raise errors.mandatory_param("timestamp")
    if not raw_ts.isdigit():
        raise errors.bad_param("timestamp")
    raw_window = params.get("recvWindow") or str(DEFAULT_RECV_WINDOW_MS)
    if not raw_window.isdigit():
        raise errors.bad_param("recvWindow")
    window = int(raw_window)
    if window > MAX_RECV_WINDOW_MS:
        raise errors.BinanceApiError(400, -1131, "recvWindow must be less than 60000")
    ts = int(raw_ts)
    if ts > now_ms + FUTURE_TOLERANCE_MS or now_ms - ts > window:
        raise errors.outside_recv_window()
