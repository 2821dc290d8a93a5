"""``ats simulator``: the loopback Binance USDT-M exchange; the command lives with the simulator."""

from simulator.cli import add_parser

__all__ = ["add_parser"]
