"""The bar factors take the bars that came since they were last read in one loop each: their state must end where
a bar-by-bar update leaves it, to the last bit, whatever the batch sizes.

Each factor is fed the same real bars twice, once ``update_bar`` per bar and once ``update_bars`` in batches of
assorted sizes (1 bar, a few, a window, more than a window), and its whole state (running sums, EMAs, windows,
ATR, value, reason, Nautilus flags) is compared by ``repr`` after every batch, so -0.0 against 0.0 would fail too.
"""

import random
from collections import deque
from pathlib import Path

import pytest

from factors.base import BarFactor, bar_floats
from factors.book import FactorBook, make_factors
from factors.config import FactorConfig
from factors.independence import IndependenceFactor
from tests.factors_data import load_bars

BAR_KEYS = ("T", "M", "C", "S", "V", "F")
WARM = ("T", "M", "S", "V", "F")  # C resets on bars without taker-buy volume
SIZES = (1, 2, 3, 7, 13, 1, 59, 60, 61, 120, 1, 5, 250)


def _state(obj: object) -> str:
    """Every attribute of an indicator (and of the ATR it holds), deques as lists, in a stable order."""
    names = sorted(set(getattr(obj, "__dict__", {})) | set(getattr(type(obj), "__slots__", ())))
    parts = []
    for name in names:
        if name.startswith("__") or not hasattr(obj, name):
            continue
        value = getattr(obj, name)
        if isinstance(value, deque):
            value = list(value)
        elif type(value).__module__.startswith("factors."):  # the ATR, AsOf lookups
            value = _state(value)
        elif callable(value):
            continue
        parts.append(f"{name}={value!r}")
    if hasattr(obj, "initialized"):
        parts.append(f"initialized={obj.initialized!r} has_inputs={obj.has_inputs!r}")
    return "; ".join(parts)


def _batches(rows: list, sizes: tuple[int, ...] = SIZES) -> list[list]:
    out, k, i = [], 0, 0
    while k < len(rows):
        n = sizes[i % len(sizes)]
        out.append(rows[k : k + n])
        k += n
        i += 1
    return out


def _rows(shared_data: Path, path: str, n: int) -> list[tuple]:
    return [(*bar_floats(b), b.ts_event) for b in load_bars(shared_data / path, slice(0, n))]


@pytest.mark.parametrize(
    "path",
    ["klines_1m_vision/LINKUSDT-1m-2023-02.csv.gz", "ohlcv_2025-03_2025-06/SOLUSDT-1m.csv.gz"],
    ids=["taker-buy-volume", "ohlcv-only"],
)
@pytest.mark.parametrize("share_atr", [True, False], ids=["atr-shared", "own-atr"])
def test_a_batch_of_bars_leaves_every_factor_where_bar_by_bar_updates_do(
    shared_data: Path, path: str, share_atr: bool
) -> None:
    rows = _rows(shared_data, path, 1_500)
    config = FactorConfig(structure_window=30, flow_window=9)  # windows the batch sizes straddle
    single, batched = make_factors(config, share_atr), make_factors(config, share_atr)
    oi = 1.0e6
    for k, batch in enumerate(_batches(rows)):
        for row in batch:
            for key in BAR_KEYS:  # T first: S and F read its ATR when they share it
                single[key].update_bar(*row)
        for key in BAR_KEYS:
            batched[key].update_bars(batch)
        for key in BAR_KEYS:
            assert _state(batched[key]) == _state(single[key]), (key, k)
            assert repr(batched[key].value) == repr(single[key].value), (key, k)
            assert _state(batched[key]) == _state(single[key]), (key, k)  # reading changed nothing else
        if k % 3 == 0:  # open interest between two batches: F takes it at the bars after it
            oi *= 1.0 + 0.01 * ((k % 7) - 3)
            single["F"].update_oi(batch[-1][6] + 1, oi)
            batched["F"].update_oi(batch[-1][6] + 1, oi)
    assert single["T"].value is not None and single["F"].value is not None
    assert "oi" in batched["F"].components


def test_the_generic_batch_is_the_bar_by_bar_update(shared_data: Path) -> None:
    """A factor without its own loop falls back to ``update_bar`` per bar (BarFactor.update_bars)."""
    rows = _rows(shared_data, "klines_1m_vision/LINKUSDT-1m-2023-02.csv.gz", 400)
    single, batched = make_factors(FactorConfig())["C"], make_factors(FactorConfig())["C"]
    for batch in _batches(rows):
        for row in batch:
            single.update_bar(*row)
        BarFactor.update_bars(batched, batch)  # type: ignore[arg-type]
        assert _state(batched) == _state(single)


def test_a_batch_of_market_pairs_leaves_independence_where_pair_by_pair_updates_do(shared_data: Path) -> None:
    folder = shared_data / "ohlcv_2025-03_2025-06"
    closes = {s: [b.close.as_double() for b in load_bars(folder / f"{s}USDT-1m.csv.gz", slice(0, 2_000))] for s in
              ("BTC", "ETH", "SOL")}  # fmt: skip
    returns = {s: [c[k] / c[k - 1] - 1.0 for k in range(1, len(c))] for s, c in closes.items()}
    pairs = [(returns["SOL"][k], (returns["BTC"][k] + returns["ETH"][k]) / 2, k) for k in range(len(returns["SOL"]))]
    single, batched = IndependenceFactor(window=25), IndependenceFactor(window=25)  # re-summed every 25 pairs
    for k, batch in enumerate(_batches(pairs)):
        for r, m, ts in batch:
            single.update_pair(r, m, ts)
        batched.update_pairs(batch)
        assert _state(batched) == _state(single), k
    assert single.value is not None


def test_the_book_runs_the_factors_when_read_not_at_every_bar(shared_data: Path) -> None:
    """Bars wait as floats until the book is read; a read hands each factor all of them in one batch."""
    folder = shared_data / "ohlcv_2025-03_2025-06"
    bars = {s: load_bars(folder / f"{s}USDT-1m.csv.gz", slice(0, 240)) for s in ("BTC", "ETH", "SOL")}
    ids = [series[0].bar_type.instrument_id for series in bars.values()]
    book = FactorBook(FactorConfig(), ids, ids[0], ids[1])
    calls: list[tuple[str, str, int]] = []
    for iid in ids:
        for key, ind in zip(("T", "M", "C", "S", "V", "F"), book._syms[iid].bar_factors, strict=True):
            # the factors have slots, no instance dict: the counting ``update_bars`` comes from a subclass
            class Counting(type(ind)):  # type: ignore[misc]
                __slots__ = ()

                def update_bars(self, batch, key=key, iid=iid) -> None:  # noqa: ANN001
                    calls.append((iid.value, key, len(batch)))
                    super().update_bars(batch)

            ind.__class__ = Counting
    for k in range(180):
        for series in bars.values():
            book.handle_bar(series[k])
    assert calls == []  # 180 bars of each symbol fed, nothing read: no factor ran
    sol = ids[2]
    assert book.is_warm(sol)
    assert sorted(calls) == sorted((sol.value, key, 180) for key in BAR_KEYS)  # one batch each, this symbol only
    calls.clear()
    book.scan()
    assert len(calls) == 12 and {n for _, _, n in calls} == {180}
    calls.clear()
    book.scan()
    assert calls == []  # nothing new came
    book.eager = True  # live: each bar is taken as it comes
    book.handle_bar(bars["SOL"][180])
    sym = book._syms[sol]
    assert book._queued == [] and sym.waiting_bars == [] and all(sym.factors[k]._count == 181 for k in WARM)


@pytest.mark.parametrize("lazy_takes_at_once", [False, True], ids=["queued", "eager"])
def test_a_book_read_at_every_bar_and_one_read_rarely_hold_the_same_state(
    shared_data: Path, lazy_takes_at_once: bool
) -> None:
    folder = shared_data / "ohlcv_2025-03_2025-06"
    bars = {s: load_bars(folder / f"{s}USDT-1m.csv.gz", slice(0, 700)) for s in ("BTC", "ETH", "SOL", "XRP")}
    ids = [series[0].bar_type.instrument_id for series in bars.values()]
    config = FactorConfig(independence_window=30)
    eager, lazy = (FactorBook(config, ids, ids[0], ids[1]) for _ in range(2))
    lazy.eager = lazy_takes_at_once
    rng = random.Random(7)
    next_read = 1
    for k in range(700):
        order = list(bars)
        rng.shuffle(order)  # the symbols' bars of one minute come in any order (BTC/ETH late or early)
        for s in order:
            eager.handle_bar(bars[s][k])
            lazy.handle_bar(bars[s][k])
            for iid in ids:
                eager.values(iid)
        if k == next_read:
            next_read += rng.choice((1, 3, 17, 60, 90))
            for iid in ids:
                assert repr(lazy.values(iid)) == repr(eager.values(iid)), (iid, k)
                a, b = eager._syms[iid], lazy._syms[iid]
                for key in (*BAR_KEYS, "I"):
                    assert _state(b.factors[key]) == _state(a.factors[key]), (iid, key, k)
    assert all(eager.values(iid)["I"] is not None for iid in ids)


def test_the_event_factors_see_the_bars_before_each_event(shared_data: Path) -> None:
    """O takes the closes and B the last close when the book is read or an OI / mark comes: what they see is what
    feeding them at every bar gave (B's premium over the close before the mark, O's look-back prices)."""
    folder = shared_data / "ohlcv_2025-03_2025-06"
    bars = load_bars(folder / "SOLUSDT-1m.csv.gz", slice(0, 1_500))
    iid = bars[0].bar_type.instrument_id
    config = FactorConfig(oi_lookback_ns=3_600_000_000_000, oi_mean_ns=6 * 3_600_000_000_000)
    book = FactorBook(config, [iid])
    single = make_factors(config)
    o, b = single["O"], single["B"]
    rng = random.Random(3)
    oi = 2.0e7
    for k, bar in enumerate(bars):
        book.handle_bar(bar)
        o.update_price(bar.ts_event, bar.close.as_double())
        b.update_last(bar.close.as_double())
        ts = bar.ts_event + 30_000_000_000
        if k % 5 == 2:  # a poll of open interest half a minute after the bar
            oi *= 1.0 + rng.uniform(-0.004, 0.0045)
            book.handle_open_interest(iid, oi, ts)
            o.update_oi(ts, oi)
        if k % 3 == 1:  # a mark: the close moved a little
            mark = bar.close.as_double() * (1.0 + rng.uniform(-5e-4, 5e-4))
            book.handle_mark_price(iid, mark, ts)
            b.update_mark(mark)
        if k % 97 == 0:
            book.handle_funding_rate(iid, rng.uniform(-1e-4, 3e-4), ts)
            b.update_funding(book._syms[iid].b.funding)  # type: ignore[arg-type]
        if rng.random() < 0.05:
            assert repr(book.factor_value(iid, "O")) == repr(o.value), k
            assert repr(book.factor_value(iid, "B")) == repr(b.value), k
            assert repr(book._syms[iid].b.premium) == repr(b.premium), k
            assert _state(book._syms[iid].o) == _state(o), k
    assert o.value is not None and b.value is not None
