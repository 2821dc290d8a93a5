"""The incremental factor indicators equal the pandas reference (factors/reference.py) on real bars."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.model.identifiers import InstrumentId

from factors import reference
from factors.book import FactorBook, make_factors
from factors.config import FactorConfig
from factors.inputs import bar_type_for
from tests.factors_data import bars_frame, load_bars

TOL = 1e-9
ROWS = slice(0, 6000)  # 100 hours of 1m bars per file keeps the test fast


def run_indicator(key: str, bars: list, config: FactorConfig) -> pd.Series:
    ind = make_factors(config)[key]
    out = []
    for bar in bars:
        ind.handle_bar(bar)
        out.append(np.nan if ind.value is None else ind.value)
    return pd.Series(out)


def assert_equal_after_warmup(incremental: pd.Series, ref: pd.Series, key: str) -> None:
    inc, exp = incremental.to_numpy(), ref.to_numpy()
    # The warm-up boundary is part of the definition: both sides must agree on which bars have a value.
    assert np.array_equal(np.isnan(inc), np.isnan(exp)), (
        f"{key}: warm-up differs: incremental first value at {np.argmax(~np.isnan(inc))}, "
        f"reference at {np.argmax(~np.isnan(exp))}"
    )
    live = ~np.isnan(exp)
    assert live.sum() > len(exp) // 2, f"{key}: too few live values ({live.sum()}) to compare"
    diff = np.abs(inc[live] - exp[live])
    worst = int(np.argmax(diff))
    assert diff.max() <= TOL, f"{key}: max |incremental - reference| = {diff.max():.3g} at live bar {worst}"
    # The factor must actually move over real data, or the comparison proves nothing.
    assert np.std(exp[live]) > 1.0, f"{key}: reference is nearly constant on real data"


@pytest.mark.parametrize(
    "file",
    ["klines_1m_vision/LINKUSDT-1m-2023-02.csv.gz", "klines_1m_vision/NEARUSDT-1m-2024-02.csv.gz"],
)
@pytest.mark.parametrize("key", ["T", "M", "C", "S", "V", "F"])
def test_bar_factor_matches_reference_on_vision_klines(shared_data: Path, file: str, key: str) -> None:
    config = FactorConfig()
    bars = load_bars(shared_data / file, ROWS)
    assert type(bars[0]).__name__ == "BinanceBar"
    ref = reference.BAR_FACTORS[key](bars_frame(bars), config)
    assert_equal_after_warmup(run_indicator(key, bars, config), ref, key)


@pytest.mark.parametrize("key", ["T", "M", "S", "V", "F"])
def test_bar_factor_matches_reference_on_plain_ohlcv(shared_data: Path, key: str) -> None:
    config = FactorConfig(trend_ema_slow=30, structure_window=20, volume_window=30, flow_window=8)
    bars = load_bars(shared_data / "ohlcv_2025-03_2025-06/SOLUSDT-1m.csv.gz", ROWS)
    assert type(bars[0]).__name__ == "Bar"
    ref = reference.BAR_FACTORS[key](bars_frame(bars), config)
    assert_equal_after_warmup(run_indicator(key, bars, config), ref, key)


def test_cvd_is_not_available_on_plain_bars(shared_data: Path) -> None:
    bars = load_bars(shared_data / "ohlcv_2025-03_2025-06/SOLUSDT-1m.csv.gz", slice(0, 100))
    ind = make_factors(FactorConfig())["C"]
    for bar in bars:
        ind.handle_bar(bar)
    assert ind.value is None
    assert "taker-buy" in (ind.reason or "")
    assert not ind.initialized


def test_independence_matches_reference_through_the_book(shared_data: Path) -> None:
    config = FactorConfig(independence_window=45)
    folder = shared_data / "ohlcv_2025-03_2025-06"
    rows = slice(0, 3000)
    data = {s: load_bars(folder / f"{s}USDT-1m.csv.gz", rows) for s in ("BTC", "ETH", "LINK")}
    ids = {s: bars[0].bar_type.instrument_id for s, bars in data.items()}
    book = FactorBook(config, list(ids.values()), btc_id=ids["BTC"], eth_id=ids["ETH"])
    # Bars of one time arrive in varying instrument order, as they do live: the book must line them up.
    by_ts: dict[int, list] = {}
    for bars in data.values():
        for b in bars:
            by_ts.setdefault(b.ts_event, []).append(b)
    got: dict[str, dict[int, float]] = {s: {} for s in data}
    for i, ts in enumerate(sorted(by_ts)):
        group = by_ts[ts] if i % 2 else list(reversed(by_ts[ts]))
        for b in group:
            book.handle_bar(b)
        for s, iid in ids.items():
            v = book.factor_value(iid, "I")
            if v is not None and any(b.bar_type.instrument_id == iid for b in group):
                got[s][ts] = v
    frames = {s: bars_frame(b) for s, b in data.items()}
    for s in data:
        ref = reference.independence(frames[s], [frames["BTC"], frames["ETH"]], config).dropna()
        inc = pd.Series(got[s]).reindex(ref.index)
        assert inc.notna().all(), f"{s}: incremental I missing where the reference has a value"
        assert (inc - ref).abs().max() <= TOL, f"{s}: I differs by {(inc - ref).abs().max():.3g}"
        assert ref.std() > 1.0


def test_book_feeds_the_same_values_as_standalone_indicators(shared_data: Path) -> None:
    config = FactorConfig()
    bars = load_bars(shared_data / "klines_1m_vision/FILUSDT-1m-2023-02.csv.gz", slice(0, 400))
    iid = bars[0].bar_type.instrument_id
    book = FactorBook(config, [iid])
    standalone = make_factors(config)
    for bar in bars:
        book.handle_bar(bar)
        for key in ("T", "M", "C", "S", "V", "F"):
            standalone[key].handle_bar(bar)
    for key in ("T", "M", "C", "S", "V", "F"):
        assert book.factor_value(iid, key) == standalone[key].value
    assert book.is_warm(iid)
    other = bar_type_for(iid, "5-MINUTE")
    assert other != bars[0].bar_type
    with pytest.raises(ValueError, match="one bar type per instrument"):
        book._register(other)
    with pytest.raises(ValueError, match="not in this FactorBook"):
        book.score(InstrumentId.from_str("XYZUSDT-PERP.BINANCE"))
