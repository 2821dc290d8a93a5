"""A loopback Binance USDT-M futures exchange that the unchanged Nautilus Binance adapter connects to."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.errors import BinanceApiError
    from simulator.server import BinanceSimulator, SimulatorConfig

__all__ = ["BinanceApiError", "BinanceSimulator", "SimulatorConfig"]
_WHERE = {
    "BinanceApiError": "simulator.errors",
    "BinanceSimulator": "simulator.server",
    "SimulatorConfig": "simulator.server",
}


def __getattr__(name: str) -> Any:
    # Imported on first use, so ``ats --help`` (which reads simulator.cli) does not load the web server.
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
