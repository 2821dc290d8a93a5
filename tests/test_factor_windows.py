"""Factor windows in bars or in time (FactorConfig.window_unit): the conversion and the book that applies it."""

from pathlib import Path

import numpy as np
import pytest
from nautilus_trader.model.identifiers import InstrumentId

from factors.book import FactorBook
from factors.config import WINDOW_FIELDS, FactorConfig
from nodes.research.study_data import aggregate_bars
from nodes.research.study_factors import factor_frame
from tests.factors_data import bars_frame, load_bars

FIVE_MINUTES = 300_000_000_000


def test_windows_in_bars_are_the_default_and_do_not_move() -> None:
    config = FactorConfig()
    assert config.window_unit == "bars"
    assert config.in_bars(1) is config and config.in_bars(60) is config


def test_windows_in_time_become_bars_of_the_fed_size() -> None:
    hours = FactorConfig(window_unit="hours").in_bars(1.0)  # the original design's hour-scale reading, on 1m bars
    assert (hours.trend_ema_fast, hours.trend_ema_slow, hours.atr_period) == (720, 3000, 840)
    assert hours.window_unit == "bars"
    minutes = FactorConfig(window_unit="minutes")
    assert minutes.in_bars(1.0) == FactorConfig(window_unit="bars")  # at 1m bars, minutes are bars
    five = minutes.in_bars(5.0)
    assert (five.trend_ema_fast, five.trend_ema_mid, five.trend_ema_slow, five.structure_window) == (2, 5, 10, 10)
    coarse = minutes.in_bars(60.0)  # 12/26/50 minutes on 1h bars: all one bar, kept apart and >= 2
    assert coarse.trend_ema_fast < coarse.trend_ema_mid < coarse.trend_ema_slow
    assert min(getattr(coarse, f) for f in WINDOW_FIELDS) >= 2
    with pytest.raises(ValueError, match="window_unit"):
        FactorConfig(window_unit="fortnights")


def test_book_and_study_apply_time_windows_to_the_bar_size(shared_data: Path) -> None:
    """5m bars with windows in minutes give what 5m bars with the converted bar windows give, in both the
    FactorBook (which learns the bar size from the first bar) and the study's reference pipeline."""
    minute_bars = load_bars(shared_data / "ohlcv_2025-03_2025-06/SOLUSDT-1m.csv.gz", slice(0, 6000))
    frame = aggregate_bars(bars_frame(minute_bars), FIVE_MINUTES)
    from nautilus_trader.model.data import Bar, BarType

    bar_type = BarType.from_str("SOLUSDT-PERP.BINANCE-5-MINUTE-LAST-EXTERNAL")
    ts = frame["ts"].to_numpy(dtype=np.uint64)
    bars = Bar.from_raw_arrays_to_list(
        bar_type, 2, 2, *(frame[c].to_numpy(dtype=np.float64).copy() for c in ("open", "high", "low", "close")),
        frame["volume"].to_numpy(dtype=np.float64).copy(), ts.copy(), ts.copy(),
    )  # fmt: skip
    timed = FactorConfig(window_unit="minutes", trend_ema_slow=100, structure_window=60)
    counted = timed.in_bars(5.0)
    iid = InstrumentId.from_str("SOLUSDT-PERP.BINANCE")
    books = {"timed": FactorBook(timed, [iid]), "counted": FactorBook(counted, [iid])}
    for bar in bars:
        for book in books.values():
            book.handle_bar(bar)
    values = {name: book.values(iid) for name, book in books.items()}
    for key in ("T", "M", "S", "V", "F"):
        assert values["timed"][key] is not None and values["timed"][key] == values["counted"][key], key
    assert books["timed"].atr(iid) == books["counted"].atr(iid)
    study = factor_frame(frame, timed, FIVE_MINUTES)
    for key in ("T", "M", "S", "V", "F"):
        assert study[key].iloc[-1] == pytest.approx(values["timed"][key], abs=1e-9), key
    # and the windows really are shorter in bars than the numbers say: EMA100 minutes = 20 bars of 5m
    assert counted.trend_ema_slow == 20 and counted.structure_window == 12
