"""Shared fixtures: where the real Binance data lives, and a signed client of a simulator test's ``sim``."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance"


def require_shared_data() -> Path:
    """The real-data folder; in CI its absence is a failure, elsewhere a skip with the reason."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    message = f"real Binance data not found at {SHARED_DATA} (the README says where the data lives: ../shared/data)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_shared_data()


@pytest.fixture()
def client(sim: Any) -> Iterator[Any]:
    """A signed REST client of the module's ``sim`` fixture (a started ``BinanceSimulator``)."""
    from tests.simulator_support import SignedClient

    c = SignedClient(sim.http_url)
    yield c
    c.close()
