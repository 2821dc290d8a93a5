"""What a factor study was asked (``StudyOptions``) and what it found (``StudyResult``): shared by the study,
its tables and its plots."""

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from factors.config import FACTOR_NAMES, FactorConfig

DEFAULT_BARS = ("1-MINUTE", "5-MINUTE", "15-MINUTE", "1-HOUR")
DEFAULT_HORIZONS = ("1m", "5m", "15m", "1h", "4h", "12h", "1d")
DEFAULT_BUCKET_HORIZONS = ("1h", "4h")
SCORE_COLUMNS = ("score", "signal")  # score: weighted mean of the factors; signal: +-strength, 0 when FLAT
NAMES = {**FACTOR_NAMES, "score": "final score", "signal": "signal (+-strength, 0 = FLAT)"}


@dataclass(frozen=True)
class StudyOptions:
    catalog: Path
    symbols: tuple[str, ...]
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    factor_config: FactorConfig
    min_score: float  # the strategy's entry threshold on strength
    cost_bps: float  # round-trip cost subtracted in the bucket table's net column
    bar_specs: tuple[str, ...] = DEFAULT_BARS
    horizons: tuple[str, ...] = DEFAULT_HORIZONS
    bucket_horizons: tuple[str, ...] = DEFAULT_BUCKET_HORIZONS


@dataclass
class StudyResult:
    options: StudyOptions
    ic: pd.DataFrame
    decay: pd.DataFrame
    buckets: pd.DataFrame
    turnover: pd.DataFrame
    coverage: pd.DataFrame
    notes: list[str] = field(default_factory=list)
