"""Shared helpers of the simulator tests: real replay data, a started simulator, a signed REST client."""

import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from simulator import BinanceSimulator, SimulatorConfig
from simulator.sources import ReplayData, from_files

API_KEY = "sim-test-key-0123456789"
API_SECRET = "sim-test-secret-9876543210"
BTC_1M = "ohlcv_2025-03_2025-06/BTCUSDT-1m.csv.gz"
BTC_FUNDING = "ohlcv_2025-03_2025-06/BTCUSDT-funding_rate.csv.gz"

_cache: dict[tuple[str, ...], ReplayData] = {}


def btc_data(shared_data: Path, bars: int = 200, start_ms: int | None = None, history: int = 0) -> ReplayData:
    key = (str(shared_data),)
    if key not in _cache:
        _cache[key] = from_files([shared_data / BTC_1M, shared_data / BTC_FUNDING])
    return _cache[key].window(start_ms=start_ms, limit=bars, history=history)


@contextmanager
def running_simulator(data: ReplayData, **overrides: Any) -> Iterator[BinanceSimulator]:
    settings: dict[str, Any] = {"bar_seconds": 0.4, "autostart": False}
    settings.update(overrides)
    config = SimulatorConfig(data.instruments, data.series, API_KEY, API_SECRET, funding=dict(data.funding), **settings)
    with BinanceSimulator(config) as sim:
        yield sim


class SignedClient:
    """A minimal Binance REST client: API-key header and HMAC-SHA256 signature, as the adapter sends."""

    def __init__(self, base_url: str, key: str = API_KEY, secret: str = API_SECRET) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)
        self.key, self.secret = key, secret

    def public(self, method: str, path: str, **params: Any) -> httpx.Response:
        return self.http.request(method, path, params=params)

    def signed(self, method: str, path: str, timestamp: int | None = None, **params: Any) -> httpx.Response:
        params["timestamp"] = timestamp if timestamp is not None else int(time.time() * 1000)
        query = urllib.parse.urlencode(params)
        signature = hmac.new(self.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        return self.http.request(method, f"{path}?{query}&signature={signature}", headers={"X-MBX-APIKEY": self.key})

    def keyed(self, method: str, path: str) -> httpx.Response:
        return self.http.request(method, path, headers={"X-MBX-APIKEY": self.key})

    def close(self) -> None:
        self.http.close()
