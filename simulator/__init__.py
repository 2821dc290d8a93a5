"""A loopback Binance USDT-M futures exchange that the unchanged Nautilus Binance adapter connects to."""

from simulator.errors import BinanceApiError
from simulator.server import BinanceSimulator, SimulatorConfig

__all__ = ["BinanceApiError", "BinanceSimulator", "SimulatorConfig"]
