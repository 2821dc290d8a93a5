"""Where Binance data is downloaded from, and to: plain constants, cheap to import (the command line's help shows
them without loading the downloader)."""

from pathlib import Path

DEFAULT_BASE_URL = "https://data.binance.vision"
DEFAULT_API_URL = "https://fapi.binance.com"
DEFAULT_DEST = Path("data/downloads")
