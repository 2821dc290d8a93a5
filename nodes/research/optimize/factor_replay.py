"""Factor values computed once per worker and replayed by later trials that would compute the same numbers.

A trial of the main strategy spends about half its time updating the factor book on every bar of every symbol,
yet the book's raw values depend only on what it is fed and on the factor settings, never on the trial's
decisions: the strategy feeds it every bar, funding rate and mark price it receives, whatever its positions,
and the scoring settings (weights, direction, thresholds, gates) are applied only when a score is read. So a
worker records, the first time it runs a window, the state of every bar-driven factor (T, M, C, S, V, F and I)
after each bar of each symbol; a later trial with the same key replays them instead of computing them:

- the key is everything the fed data and the factor arithmetic depend on: the loaded engine (catalog, symbols,
  bar size, venue), the window, the strategy class and its whole config except the settings that only decide
  (``TRIAL_SETTINGS``: min_score, scan, exits, dynamic exits, sizing, risk, manual strength) and the factor
  settings that only score (``SCORING_SETTINGS``), the other actors, and the universe the book was built with.
  A trial searching ``factors.trend_w_dist`` or a window length makes a new key; one searching weights,
  direction, thresholds, min_score, exits or the scan interval replays;
- the replaying book is the strategy's own ``FactorBook`` with those seven indicators swapped for read-only
  views of the recording at the symbol's bar count; it still counts bars, keeps the closes and returns it
  needs for correlations and feeds O, L, B and Q (event-driven, cheap) as before. Reads are answered from the
  state after the symbol's last bar: the strategy and the coverage actor read the book only once every bar of a
  time is in (at a scan, its grace alert or an hourly sample), when I (which pairs each bar with the BTC/ETH
  bar of the same time) is also settled;
- a recording is kept only when its run replayed the whole window; recordings are held least recently used
  first within ``RECORDINGS_BUDGET_BYTES`` per worker, and a trial reports which it did (``computed``,
  ``recorded``, ``replayed``) and the bytes held.

Only ``strategies.ats.AtsStrategy`` itself (not a subclass, which may feed its book otherwise) is recorded or
replayed; ``tests/test_optimize_study.py`` holds replayed trials equal to fresh ``ats backtest`` runs.
"""

from array import array
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import msgspec
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.model.data import Bar

from factors.book import FactorBook
from factors.config import FactorConfig
from strategies.ats import AtsStrategy

REPLAYED = ("T", "M", "C", "S", "V", "F", "I")  # the factors fed by bars: the ones worth recording
# Settings that only decide what to do with the scores (never what the book is fed or computes).
TRIAL_SETTINGS = ("min_score", "manual_strength", "scan", "exits", "dynamic", "sizing", "risk")
# FactorConfig settings read only by the scoring (factors.scoring.score), never by an indicator.
SCORING_SETTINGS = (
    "weights",
    "direction",
    "long_threshold",
    "short_threshold",
    "fund_lead_boost",
    "fund_lead_cut",
    "liquidity_gate",
    "independence_gate",
)
RECORDINGS_BUDGET_BYTES = 512 * 2**20  # per worker; a 16-symbol x 20-day 1-minute recording is about 50 MB

COMPUTED, RECORDED, REPLAYED_MODE = "computed", "recorded", "replayed"


class _Series:
    """One symbol's recorded factor states: entry j is the state after the symbol's j-th bar."""

    __slots__ = ("values", "missing", "reasons", "atr", "market_ts", "columns")

    def __init__(self) -> None:
        self.values = {k: array("d") for k in REPLAYED}
        self.missing = {k: bytearray() for k in REPLAYED}  # 1 where the value was None
        self.reasons = {k: array("I") for k in REPLAYED}  # index into FactorRecording.reasons (0: None)
        self.atr = array("d")  # T's ATR (FactorBook.atr)
        self.market_ts = array("q")  # I's last pairing time (FactorBook.score's staleness check)
        self.columns = tuple(
            (k, self.values[k].append, self.missing[k].append, self.reasons[k].append) for k in REPLAYED
        )

    def __len__(self) -> int:
        return len(self.atr)

    @property
    def nbytes(self) -> int:
        arrays = (*self.values.values(), *self.reasons.values(), self.atr, self.market_ts)
        return sum(a.itemsize * len(a) for a in arrays) + sum(len(m) for m in self.missing.values())


class FactorRecording:
    """Every bar-driven factor state of one book over one window, per symbol."""

    def __init__(self, instrument_ids: list[Any]) -> None:
        self.series = {iid: _Series() for iid in instrument_ids}
        self.reasons: list[str | None] = [None]
        self._reason_ids: dict[str, int] = {}
        self.complete = False

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.series.values()) + sum(len(r or "") for r in self.reasons)

    def _new_reason(self, reason: str) -> int:
        self._reason_ids[reason] = len(self.reasons)
        self.reasons.append(reason)
        return self._reason_ids[reason]

    def snapshot(self, sym: Any) -> None:
        """Append the symbol's state now (after ``sym.count`` bars)."""
        series = self.series[sym.instrument_id]
        if len(series.atr) != sym.count:
            raise RuntimeError(f"{sym.instrument_id}: recording holds {len(series)} states at bar {sym.count}")
        factors = sym.factors
        reason_id = self._reason_ids.get
        for key, add_value, add_missing, add_reason in series.columns:
            indicator = factors[key]
            value = indicator.value
            if value is None:
                add_missing(1)
                add_value(0.0)
            else:
                add_missing(0)
                add_value(value)
            reason = indicator.reason
            add_reason(0 if reason is None else (reason_id(reason) or self._new_reason(reason)))
        series.atr.append(sym.t.atr)
        series.market_ts.append(sym.i.last_ts)


class RecordingFactorBook(FactorBook):
    """A ``FactorBook`` that also keeps each bar-driven factor's state before every bar (and at ``finish``)."""

    _recording: FactorRecording

    def update_bar(
        self, sym: Any, o: float, h: float, lo: float, c: float, v: float, tb: float | None, ts: int
    ) -> None:
        # The state before this bar is the state after the symbol's previous bar and everything of that time:
        # I pairs a bar with the BTC/ETH bar of its time, which may come after it.
        self._settle(sym)
        self._recording.snapshot(sym)
        super().update_bar(sym, o, h, lo, c, v, tb, ts)

    def finish(self) -> FactorRecording:
        """The recording, with every symbol's state after its last bar."""
        self._take_bars()
        for sym in self._syms.values():
            self._settle(sym)
            self._recording.snapshot(sym)
        self._recording.complete = True
        return self._recording


class _ReplayedFactor:
    """A factor's recorded value and reason at its symbol's current bar count (read-only)."""

    __slots__ = ("_series", "_key", "_sym", "_reasons")

    def __init__(self, series: _Series, key: str, sym: Any, reasons: list[str | None]) -> None:
        self._series, self._key, self._sym, self._reasons = series, key, sym, reasons

    @property
    def value(self) -> float | None:
        at = self._sym.count
        try:
            return None if self._series.missing[self._key][at] else self._series.values[self._key][at]
        except IndexError:
            raise RuntimeError(f"{self._sym.instrument_id}: bar {at} is past the recording replayed") from None

    @property
    def reason(self) -> str | None:
        at = self._sym.count
        try:
            return self._reasons[self._series.reasons[self._key][at]]
        except IndexError:
            raise RuntimeError(f"{self._sym.instrument_id}: bar {at} is past the recording replayed") from None

    # the book's hot paths read the attributes behind the properties
    _value = value
    _reason = reason
    _outdated = False  # nothing to compute when read


class _ReplayedTrend(_ReplayedFactor):
    __slots__ = ()

    @property
    def atr(self) -> float:
        return self._series.atr[self._sym.count]


class _ReplayedIndependence(_ReplayedFactor):
    __slots__ = ()

    @property
    def last_ts(self) -> int:
        return self._series.market_ts[self._sym.count]


_KINDS = {"T": _ReplayedTrend, "I": _ReplayedIndependence}


class ReplayingFactorBook(FactorBook):
    """A ``FactorBook`` whose bar-driven factors read a recording instead of updating (see the module notes)."""

    _recording: FactorRecording

    def _install(self, sym: Any) -> None:
        series = self._recording.series[sym.instrument_id]
        reasons = self._recording.reasons
        replayed = {k: _KINDS.get(k, _ReplayedFactor)(series, k, sym, reasons) for k in REPLAYED}
        sym.set_factors({k: replayed.get(k, indicator) for k, indicator in sym.factors.items()})
        sym.bar_factors = ()
        sym.t, sym.i, sym.f = replayed["T"], replayed["I"], replayed["F"]

    def _register(self, bar_type: Any) -> Any:
        sym = super()._register(bar_type)
        if not isinstance(sym.t, _ReplayedTrend):  # the first bar may rebuild the factors (window durations)
            self._install(sym)
        return sym

    def handle_bar(self, bar: Bar, instrument_id: Any = None) -> None:
        """``FactorBook.handle_bar`` without unpacking what only the replayed factors read (open, high, low,
        volume, taker-buy volume): the rest of the bar path takes the close and the time, at once."""
        bar_type = bar.bar_type
        sym = self._syms.get(bar_type.instrument_id if instrument_id is None else instrument_id)
        if sym is None or sym.bar_type is None or not sym.count & 63:
            sym = self._register(bar_type)
        c = bar.close.as_double()
        self.update_bar(sym, c, c, c, c, 0.0, None, bar.ts_event)

    def _feed_market(self, sym: Any, ts: int, r: float) -> None:
        pass  # the market's returns only feed I, which is replayed


def _recording_book(book: FactorBook) -> RecordingFactorBook:
    book.__class__ = RecordingFactorBook  # the strategy's own book, changed in place (it holds no state yet)
    assert isinstance(book, RecordingFactorBook)
    book._recording = FactorRecording(book.instrument_ids)
    return book


def _replaying_book(book: FactorBook, recording: FactorRecording) -> ReplayingFactorBook:
    book.__class__ = ReplayingFactorBook
    assert isinstance(book, ReplayingFactorBook)
    book._recording = recording
    for sym in book._syms.values():
        book._install(sym)
    return book


def indicator_settings(config: FactorConfig) -> dict[str, Any]:
    """The factor settings the indicators compute with: ``config`` without the scoring-only ones."""
    table = msgspec.json.decode(config.json())
    for name in SCORING_SETTINGS:
        table.pop(name, None)
    return table


def strategy_key(strategy: Any) -> str | None:
    """What the strategy feeds its book and computes it with, as one string; None when it is not replayable."""
    if type(strategy) is not AtsStrategy:
        return None
    table = msgspec.json.decode(strategy.config.json())
    for name in TRIAL_SETTINGS:
        table.pop(name, None)
    table["factors"] = indicator_settings(strategy.config.factors)
    return msgspec.json.encode(table, order="sorted").decode()


class FactorRecordings:
    """A worker's recordings, least recently used first, within a byte budget."""

    def __init__(self, budget_bytes: int = RECORDINGS_BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self._held: OrderedDict[Hashable, FactorRecording] = OrderedDict()

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self._held.values())

    def __len__(self) -> int:
        return len(self._held)

    def get(self, key: Hashable) -> FactorRecording | None:
        found = self._held.get(key)
        if found is not None:
            self._held.move_to_end(key)
        return found

    def put(self, key: Hashable, recording: FactorRecording) -> bool:
        """Keep a complete recording that fits the budget, dropping the least recently used; whether it was kept."""
        if not recording.complete or recording.nbytes > self.budget_bytes:
            return False
        self._held[key] = recording
        self._held.move_to_end(key)
        while self.nbytes > self.budget_bytes:
            self._held.popitem(last=False)
        return True

    def for_trial(self, run_key: Hashable) -> "TrialFactors":
        return TrialFactors(self, run_key)


class TrialFactors:
    """One trial's use of the recordings: ``attach`` before the engine runs, ``finish`` after it."""

    def __init__(self, recordings: FactorRecordings, run_key: Hashable) -> None:
        self.recordings = recordings
        self.run_key = run_key  # the loaded engine and the window
        self.mode = COMPUTED
        self._key: Hashable = None
        self._book: FactorBook | None = None

    def attach(self, engine: BacktestEngine) -> None:
        """Give the run's strategy a recording or replaying book, if it has one strategy that can."""
        strategies = engine.trader.strategies()
        if len(strategies) != 1 or (settings := strategy_key(strategies[0])) is None:
            return
        actors = tuple(sorted((type(a).__qualname__, a.config.json().decode()) for a in engine.trader.actors()))
        market = strategies[0].market
        make_book = market.factor_book  # the one place the strategy builds its book (in on_start)

        def factor_book(*args: Any, **kwargs: Any) -> FactorBook:
            return self._adopt(make_book(*args, **kwargs), (self.run_key, settings, actors))

        market.factor_book = factor_book

    def _adopt(self, book: FactorBook, run: Hashable) -> FactorBook:
        self._key = (run, tuple(str(i) for i in book.instrument_ids))
        recording = self.recordings.get(self._key)
        if recording is not None:
            self.mode = REPLAYED_MODE
            self._book = _replaying_book(book, recording)
        else:
            self._book = _recording_book(book)  # computed as ever, and recorded
        return self._book

    def finish(self, complete: bool) -> None:
        """Keep a recording made by this trial when its run went through the whole window."""
        if isinstance(self._book, RecordingFactorBook) and complete:
            if self.recordings.put(self._key, self._book.finish()):
                self.mode = RECORDED
