"""The factors' fast path gives the same scores: values computed when read equal values computed at each update.

Bar factors (T, M, C, S, V, F) and the event factors fed between scans (L from quotes, B from marks and funding)
keep their state current on every update and compute the value only when it is read. Two books are fed the same
real bars with open interest, funding, marks and quotes in between: one reads every value after every update
(what computing at the update did), the other only at its scans. Their scans must be equal to the last bit, and
the values read late must still equal the pandas reference (factors/reference.py).
"""

import gzip
import json
from math import sqrt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.model.data import Bar
from nautilus_trader.model.identifiers import InstrumentId

from factors import reference
from factors.book import FactorBook, make_factors
from factors.config import FactorConfig
from factors.scoring import ScoreResult, score
from tests.factors_data import bars_frame, book_ticker_quote, load_bars

TOL = 1e-9
ROWS = slice(0, 900)
SCAN_EVERY = 37  # bars of each symbol between two scans: lands anywhere in the windows
MIN = 60_000_000_000


def _capture_quotes(shared_data: Path, n: int) -> list[dict]:
    """The first ``n`` book tickers of the real websocket capture."""
    quotes = []
    with gzip.open(shared_data / "ws_capture" / "btcusdt_20240808.gz", "rt") as fh:
        for line in fh:
            data = json.loads(line.split(" ", 1)[1]).get("data", {})
            if data.get("e") == "bookTicker":
                quotes.append(data)
                if len(quotes) == n:
                    break
    return quotes


def _events(shared_data: Path) -> tuple[list[tuple[int, int, str, object]], dict[str, list[Bar]]]:
    """(ts, order, kind, payload), time-ordered: real bars of BTC, ETH, SOL (plain OHLCV) and LINK (Vision klines
    with taker-buy volume), and between the bars SOL's open interest, funding and marks, and real quotes."""
    folder = shared_data / "ohlcv_2025-03_2025-06"
    bars = {s: load_bars(folder / f"{s}USDT-1m.csv.gz", ROWS) for s in ("BTC", "ETH", "SOL")}
    bars["LINK"] = load_bars(shared_data / "klines_1m_vision" / "LINKUSDT-1m-2023-02.csv.gz", ROWS)
    events: list[tuple[int, int, str, object]] = []
    for series in bars.values():
        events += [(b.ts_event, 0, "bar", b) for b in series]
    sol = bars["SOL"]
    # Open interest: an explicit series (no OI data exists in ../shared/data), 30 s after every 5th bar.
    for k, b in enumerate(sol[::5]):
        events.append((b.ts_event + MIN // 2, 1, "oi", 1.0e6 * (1.0 + 0.05 * np.sin(k / 7.0))))
    # Funding and marks: the real 8h funding of SOL, a mark 20 s after every bar (the close moved by a real
    # funding-size premium), so B changes between scans.
    funding = pd.read_csv(folder / "SOLUSDT-funding_rate.csv.gz")
    rates = funding["funding_rate"].to_numpy()
    for k, b in enumerate(sol):
        events.append((b.ts_event + MIN // 3, 2, "mark", b.close.as_double() * (1.0 + rates[k % len(rates)])))
        if k % 30 == 0:
            events.append((b.ts_event + MIN // 3, 3, "funding", float(rates[(k // 30) % len(rates)])))
    # Quotes: real book tickers of the capture, two between every two BTC bars.
    quotes = _capture_quotes(shared_data, 2 * len(bars["BTC"]))
    btc = bars["BTC"]
    for k, q in enumerate(quotes):
        events.append((btc[k // 2].ts_event + (k % 2 + 1) * MIN // 4, 4, "quote", q))
    events.sort(key=lambda e: (e[0], e[1]))
    return events, bars


def _feed(book: FactorBook, kind: str, payload: object, ts: int) -> None:
    sol, btc = InstrumentId.from_str("SOLUSDT-PERP.BINANCE"), InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
    if kind == "bar":
        book.handle_bar(payload)  # type: ignore[arg-type]
    elif kind == "oi":
        book.handle_open_interest(sol, payload, ts)  # type: ignore[arg-type]
    elif kind == "mark":
        book.handle_mark_price(sol, payload, ts)  # type: ignore[arg-type]
    elif kind == "funding":
        book.handle_funding_rate(sol, payload, ts)  # type: ignore[arg-type]
    else:
        book.handle_quote_tick(book_ticker_quote(btc, payload, ts))  # type: ignore[arg-type]


def _as_tuple(r: ScoreResult) -> tuple:
    values, contributions = r.values, r.contributions  # their key order too: the JSON of a signal follows it
    return (r.instrument_id, r.direction, r.strength, r.score, contributions, values, r.notes, r.gated, r.ts_ns,
            tuple(values), tuple(contributions), r.available, r.missing)  # fmt: skip


@pytest.mark.parametrize(
    "config",
    [FactorConfig(), FactorConfig(direction="fade", liquidity_gate=50.0, weights={"O": 20.0, "B": 15.0})],
    ids=["defaults", "fade-gated-O-B-weighted"],
)
def test_values_read_late_score_the_same_as_values_read_at_every_update(shared_data: Path, config) -> None:
    events, bars = _events(shared_data)
    ids = [series[0].bar_type.instrument_id for series in bars.values()]
    eager, lazy = (FactorBook(config, ids, ids[0], ids[1]) for _ in range(2))
    frames = {s: bars_frame(series) for s, series in bars.items()}
    link_id = bars["LINK"][0].bar_type.instrument_id
    counts = {iid: 0 for iid in ids}
    scans = 0
    components: set[tuple[str, ...]] = set()
    for ts, _, kind, payload in events:
        _feed(eager, kind, payload, ts)
        _feed(lazy, kind, payload, ts)
        for iid in ids:  # what computing every value at its update did
            eager.values(iid)
        components.add(eager._syms[ids[2]].f.components)
        if kind != "bar":
            continue
        iid = payload.bar_type.instrument_id  # type: ignore[union-attr]
        counts[iid] += 1
        if iid == ids[0] and counts[iid] % SCAN_EVERY == 0:
            assert [_as_tuple(r) for r in lazy.scan()] == [_as_tuple(r) for r in eager.scan()]
            for r in lazy.scan():  # the book's cached model is the plain score() of the same values
                assert _as_tuple(r) == _as_tuple(score(r.values, config, r.instrument_id, r.ts_ns, r.notes))
            scans += 1
        if iid == link_id and counts[iid] % SCAN_EVERY == 0 and counts[iid] > 60:
            k = counts[iid] - 1  # the values read late are still the reference's at this bar
            for key in ("T", "M", "C", "S", "V", "F"):
                expected = reference.BAR_FACTORS[key](frames["LINK"].iloc[: k + 1], config).iloc[-1]
                assert lazy.factor_value(link_id, key) == pytest.approx(expected, abs=TOL), key
    assert scans >= 20
    # the run exercised what could tell a late value from one computed at the update
    assert ("volume", "oi") in components  # F took SOL's open interest
    last = {r.instrument_id: r for r in lazy.scan()}
    assert last["SOLUSDT-PERP.BINANCE"].values["B"] is not None and last["BTCUSDT-PERP.BINANCE"].values["L"] is not None
    assert last["LINKUSDT-PERP.BINANCE"].values["C"] is not None
    assert {r.direction for r in lazy.scan()} != {"FLAT"} or config.liquidity_gate > 0


def test_a_value_is_computed_once_when_read_not_at_every_bar(shared_data: Path) -> None:
    bars = load_bars(shared_data / "klines_1m_vision" / "LINKUSDT-1m-2023-02.csv.gz", slice(0, 300))
    iid = bars[0].bar_type.instrument_id
    book = FactorBook(FactorConfig(), [iid])
    computed: dict[str, int] = {}
    for key in ("T", "M", "C", "S", "V", "F"):
        ind = book._syms[iid].factors[key]

        class Counting(type(ind)):  # type: ignore[misc]  # the factors have slots: counted by a subclass
            __slots__ = ()

            def _compute_value(self, key=key) -> None:  # noqa: ANN001
                computed[key] = computed.get(key, 0) + 1
                super()._compute_value()

        ind.__class__ = Counting
    for bar in bars:
        book.handle_bar(bar)
    assert computed == {}
    first = book.values(iid)
    again = book.values(iid)
    assert first == again and all(first[k] is not None for k in ("T", "M", "C", "S", "V", "F"))
    assert computed == {k: 1 for k in ("T", "M", "C", "S", "V", "F")}


def _correlation_as_defined(book: FactorBook, a: InstrumentId, b: InstrumentId) -> float | None:
    """Pearson correlation over the common bar times, written out plainly: the fast path must equal it."""
    book._take_bars()  # the returns of every bar fed so far
    ra = dict(book._syms[a].returns)
    pairs = [(ra[ts], r) for ts, r in book._syms[b].returns if ts in ra]
    n = len(pairs)
    if n < 3:
        return None
    ma = sum(x for x, _ in pairs) / n
    mb = sum(y for _, y in pairs) / n
    sab = sum((x - ma) * (y - mb) for x, y in pairs)
    saa = sum((x - ma) ** 2 for x, _ in pairs)
    sbb = sum((y - mb) ** 2 for _, y in pairs)
    if saa <= 0.0 or sbb <= 0.0:
        return None
    return sab / sqrt(saa * sbb)


def test_returns_correlation_equals_its_definition_on_aligned_and_gapped_bars(shared_data: Path) -> None:
    folder = shared_data / "ohlcv_2025-03_2025-06"
    bars = {s: load_bars(folder / f"{s}USDT-1m.csv.gz", slice(0, 400)) for s in ("BTC", "ETH", "SOL", "XRP")}
    ids = [series[0].bar_type.instrument_id for series in bars.values()]
    book = FactorBook(FactorConfig(correlation_window=40), ids)
    checked = {"aligned": 0, "gapped": 0}
    for k in range(400):
        for s, series in bars.items():
            if s == "SOL" and k % 7 == 3:
                continue  # SOL misses bars: its bar times differ from the others'
            book.handle_bar(series[k])
            if s == "XRP" and k % 50 == 10:
                book.handle_bar(series[k])  # the same bar twice: one time holds two returns
        if k % 13 == 0:
            for a in ids:
                for b in ids:
                    expected = _correlation_as_defined(book, a, b)
                    assert book.returns_correlation(a, b) == expected, (a, b, k)
                    if expected is not None and a != b:
                        aligned = "SOL" not in (a.value[:3], b.value[:3]) and "XRP" not in (a.value[:3], b.value[:3])
                        checked["aligned" if aligned else "gapped"] += 1
    assert checked["aligned"] > 50 and checked["gapped"] > 100


def test_the_factor_indicators_keep_their_state_in_slots() -> None:
    """No instance __dict__: on these subclasses of Nautilus's Cython Indicator an attribute kept in a __dict__ reads
    and writes about three times slower than a slot, and a scan is mostly such reads. A factor that sets an attribute
    its class does not declare fails here (AttributeError) instead of slowing every scan down."""
    config = FactorConfig()
    for share_atr in (False, True):
        for key, factor in make_factors(config, share_atr=share_atr).items():
            assert not hasattr(factor, "__dict__"), key
            with pytest.raises(AttributeError):
                factor.undeclared = 1.0  # type: ignore[attr-defined]
