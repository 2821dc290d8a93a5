"""Where the package's own files are: cheap to import (no pandas, no Nautilus), so ``ats --help`` stays quick."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_BACKTEST_CONFIG = PACKAGE_DIR / "configs" / "backtest.toml"
DEFAULT_LIVE_CONFIG = PACKAGE_DIR / "configs" / "live.toml"
