"""Recorded factor values replayed by a research worker: every read equals a book that computes them.

Real Binance 1-minute bars (BTC and ETH, the market of I; SOL with its real funding rates and mark prices,
starting late; FIL Vision klines with taker-buy volume), fed in time order with BTC and ETH after the others
at each time, as the engine delivers them when the universe lists them later. The book whose factors are
replayed is scored with other scoring settings than the recorded one, as a trial that searches them would be.
"""

from pathlib import Path

import msgspec
import pytest
from nautilus_trader.model.data import Bar, FundingRateUpdate, MarkPriceUpdate
from nautilus_trader.model.identifiers import InstrumentId

from catalog.convert import convert_file
from catalog.files import identify
from catalog.instruments import binance_perpetual
from factors.book import FactorBook
from factors.config import FactorConfig
from nodes.research.optimize.factor_replay import (
    SCORING_SETTINGS,
    FactorRecordings,
    RecordingFactorBook,
    ReplayingFactorBook,
    TrialFactors,
    _recording_book,
    _replaying_book,
    indicator_settings,
)
from tests.factors_data import load_bars

START_NS = 1_748_736_000_000_000_000  # 2025-06-01 00:00 UTC: FIL's Vision month starts here
BARS = 1_500  # 25 hours: three funding times
ORDER = ("FILUSDT", "SOLUSDT", "BTCUSDT", "ETHUSDT")  # the market last at each time: I waits for it
SCORING = FactorConfig(
    direction="fade",
    weights={"T": 5.0, "M": 30.0, "C": 10.0, "S": 25.0, "V": 0.0, "B": 10.0},
    long_threshold=5.0,
    short_threshold=-20.0,
    fund_lead_boost=0.5,
    fund_lead_cut=0.1,
    liquidity_gate=10.0,
    independence_gate=40.0,
)


def _iid(symbol: str) -> InstrumentId:
    return InstrumentId.from_str(f"{symbol}-PERP.BINANCE")


@pytest.fixture(scope="module")
def stream(shared_data: Path) -> list[tuple[int, list]]:
    """(time, the data of that time in the engine's order) for the window."""
    folder = shared_data / "ohlcv_2025-03_2025-06"
    files = {
        "FILUSDT": shared_data / "klines_1m_vision/FILUSDT-1m-2025-06.csv.gz",
        **{s: folder / f"{s}-1m.csv.gz" for s in ("SOLUSDT", "BTCUSDT", "ETHUSDT")},
    }
    end_ns = START_NS + BARS * 60_000_000_000
    late = START_NS + 300 * 60_000_000_000  # SOL's bars start five hours in: read before its first bar too
    data: list[tuple[int, int, object]] = []
    for rank, symbol in enumerate(ORDER):
        first = late if symbol == "SOLUSDT" else START_NS
        data += [(b.ts_init, rank, b) for b in load_bars(files[symbol]) if first <= b.ts_init < end_ns]
    for name in ("SOLUSDT-funding_rate.csv.gz", "SOLUSDT-mark-8h.csv.gz"):
        for item in convert_file(identify(folder / name), binance_perpetual("SOLUSDT")):
            if isinstance(item, FundingRateUpdate | MarkPriceUpdate) and START_NS <= item.ts_init < end_ns:
                data.append((item.ts_init, ORDER.index("SOLUSDT"), item))
    data.sort(key=lambda row: (row[0], row[1]))
    times: dict[int, list] = {}
    for ts, _, item in data:
        times.setdefault(ts, []).append(item)
    assert any(isinstance(i, FundingRateUpdate) for items in times.values() for i in items)
    return list(times.items())


def _book(config: FactorConfig) -> FactorBook:
    return FactorBook(config, [_iid(s) for s in ORDER], _iid("BTCUSDT"), _iid("ETHUSDT"))


def _feed(book: FactorBook, items: list) -> None:
    for item in items:
        if isinstance(item, Bar):
            book.handle_bar(item)
        elif isinstance(item, FundingRateUpdate):
            book.handle_funding_rate(item.instrument_id, float(item.rate), item.ts_event)
        else:
            book.handle_mark_price(item.instrument_id, item.value.as_double(), item.ts_event)


def _reads(book: FactorBook) -> dict:
    """Everything the strategy and the coverage actor read from a book."""
    reads: dict = {"scan": book.scan()}
    for iid in book.instrument_ids:
        reads[iid] = (
            book.score(iid),
            book.values(iid),
            book.reasons(iid),
            book.is_warm(iid),
            [book.factor_value(iid, k) for k in ("T", "L", "I")],
            book.atr(iid),
            book.atr_pct(iid),
            book.close_of(iid),
            book.returns_correlation(_iid("BTCUSDT"), iid),
            book.missing_factors(iid),
        )
    return reads


def _record(stream: list[tuple[int, list]], config: FactorConfig) -> RecordingFactorBook:
    book = _recording_book(_book(config))
    for _, items in stream:
        _feed(book, items)
    return book


def test_a_replayed_book_reads_what_a_computing_book_reads_at_every_time(stream: list) -> None:
    recorded = _record(stream, FactorConfig())
    recording = recorded.finish()
    computing, replaying = _book(SCORING), _replaying_book(_book(SCORING), recording)
    assert isinstance(replaying, ReplayingFactorBook)
    signals = 0
    for _, items in stream:
        _feed(computing, items)
        _feed(replaying, items)
        reads = _reads(replaying)
        assert reads == _reads(computing)
        signals += sum(r.direction != "FLAT" for r in reads["scan"])
    # the reads cover what matters: signals, live and missing factors, the late symbol before its bars
    fil, sol = computing.values(_iid("FILUSDT")), computing.values(_iid("SOLUSDT"))
    assert signals > 0 and fil["C"] is not None and fil["I"] is not None and sol["B"] is not None
    assert "taker-buy" in computing.reasons(_iid("SOLUSDT"))["C"]
    # the replaying book computed none of them: its bar factors are views of the recording
    assert replaying.indicators(_iid("FILUSDT"))[0] is not computing.indicators(_iid("FILUSDT"))[0]
    assert not any(hasattr(i, "update_bar") for i in replaying.indicators(_iid("FILUSDT")))


def test_the_missing_factors_a_coverage_sample_counts_are_what_the_three_reads_say(stream: list) -> None:
    """``missing_factors`` (the coverage actor's one read of a symbol) against ``is_warm``, ``values`` and
    ``reasons`` read on a second book fed the same data, at every time, for cold, warming and warm symbols."""
    one_read, three_reads = _book(FactorConfig()), _book(FactorConfig())
    seen: set[str] = set()
    for _, items in stream:
        _feed(one_read, items)
        _feed(three_reads, items)
        for iid in three_reads.instrument_ids:
            expected = None
            if three_reads.is_warm(iid):
                reasons = three_reads.reasons(iid)
                expected = {k: reasons[k] or "not available" for k, v in three_reads.values(iid).items() if v is None}
            missing = one_read.missing_factors(iid)
            assert missing == expected
            assert missing is None or list(missing) == list(expected)  # the order the counts are kept in
            seen.update(["cold"] if missing is None else [f"{iid.symbol}:{k}:{why[:7]}" for k, why in missing.items()])
    # cold symbols, a factor missing for want of data (SOL's C), one warming (I) and one not missing (FIL's C)
    assert "cold" in seen and "SOLUSDT-PERP:C:bars ca" in seen and "FILUSDT-PERP:I:warming" in seen
    assert not any(s.startswith("FILUSDT-PERP:C") for s in seen)


def test_scoring_settings_leave_the_factor_values_alone(stream: list) -> None:
    """Every setting the replay treats as scoring-only changes no indicator value (else it must be in the key)."""
    default = FactorConfig()
    changed = {
        "weights": {"T": 1.0},
        "direction": "fade",
        "long_threshold": 30.0,
        "short_threshold": -30.0,
        "fund_lead_boost": 0.9,
        "fund_lead_cut": 0.9,
        "liquidity_gate": 50.0,
        "independence_gate": 50.0,
    }
    assert set(changed) == set(SCORING_SETTINGS)
    books = [_book(default), *(_book(msgspec.structs.replace(default, **{k: v})) for k, v in changed.items())]
    for _, items in stream[:400]:
        for book in books:
            _feed(book, items)
    for iid in books[0].instrument_ids:
        assert all(b.values(iid) == books[0].values(iid) for b in books[1:])
    # and they are what the key leaves out, while an indicator setting stays in it
    assert indicator_settings(msgspec.structs.replace(default, **changed)) == indicator_settings(default)
    assert indicator_settings(msgspec.structs.replace(default, trend_w_dist=0.5)) != indicator_settings(default)


def test_a_replay_refuses_to_read_past_its_recording(stream: list) -> None:
    recorded = _book(FactorConfig())
    recording_book = _recording_book(recorded)
    for _, items in stream[:100]:
        _feed(recording_book, items)
    replaying = _replaying_book(_book(FactorConfig()), recording_book.finish())
    for _, items in stream[:100]:
        _feed(replaying, items)
    assert replaying.scan()
    _feed(replaying, stream[100][1])
    with pytest.raises(RuntimeError, match="past the recording replayed"):
        replaying.scan()


def test_recordings_are_kept_within_their_budget(stream: list) -> None:
    recordings = [_record(stream[:n], FactorConfig()).finish() for n in (200, 300, 400)]
    incomplete = _record(stream[:300], FactorConfig())._recording  # a run that did not reach its end
    sizes = [r.nbytes for r in recordings]
    assert sizes[0] < sizes[1] < sizes[2]
    held = FactorRecordings(budget_bytes=sizes[1] + sizes[2])
    assert held.put("a", recordings[0]) and held.put("b", recordings[1])
    assert not held.put("never", incomplete)
    assert held.get("never") is None and held.get("a") is recordings[0]  # "a" is now the most recently used
    held.put("c", recordings[2])  # over budget: the least recently used ("b") goes
    assert held.get("b") is None and held.get("a") is recordings[0] and held.get("c") is recordings[2]
    assert held.nbytes == sizes[0] + sizes[2] <= held.budget_bytes
    assert not held.put("too big", _record(stream, FactorConfig()).finish())
    assert held.get("too big") is None and len(held) == 2
    assert TrialFactors(held, "window").mode == "computed"  # until a strategy it can replay is attached
