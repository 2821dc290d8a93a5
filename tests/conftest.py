"""Shared fixtures: where the real Binance data lives, and a catalog built from it once per test session."""

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance"


def require_shared_data() -> Path:
    """The real-data folder; in CI its absence is a failure, elsewhere a skip with the reason."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    message = f"real Binance data not found at {SHARED_DATA} (see DEVELOPERS.md: ../shared/data)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_shared_data()


# The research tools' small real-data catalog (tests/research_data.py), built once per session for every module.
pytest_plugins = ["tests.research_data"]
