"""FactorBook: every factor of every symbol of the universe, fed from Nautilus data, scored on demand.

The strategy holds one book, forwards its data handlers to it (bars, mark prices, funding, OI, quotes or
books, liquidations) and asks for ``score(instrument_id)`` or ``scan()``. All state is plain Python.

A bar fed is only queued; when the book is next read it takes the bars queued since, in the order they came
(``_take_bars``: unpacked, each return paired with the market's for I), and each symbol's bar factors (T, M, C,
S, V, F), I and O take theirs in one loop each (``_settle``): a backtest on 1m bars that scans hourly reads the
book once every sixty bars, and the work runs in tight loops instead of between the engine's own. Each factor's
state ends bit for bit where a bar-by-bar update leaves it (the same arithmetic in the same order); an event
that depends on the bars before it (a mark, open interest, a liquidation) takes them first. See
benchmarks/bench_factors.py for the cost.
"""

from collections import OrderedDict, deque
from math import isfinite, sqrt
from operator import mul

from nautilus_trader.adapters.binance.common.types import BinanceBar
from nautilus_trader.indicators.base import Indicator
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.identifiers import InstrumentId

from factors.base import BarFactor, FactorIndicator
from factors.basis import BasisFundingFactor
from factors.config import ALL_FACTORS, FactorConfig
from factors.cvd import CvdFactor
from factors.fund_leading import FundLeadingFactor
from factors.independence import NO_MARKET, IndependenceFactor
from factors.liquidations import LiquidationFactor
from factors.liquidity import LiquidityFactor
from factors.momentum import MomentumFactor
from factors.open_interest import OpenInterestFactor
from factors.scoring import ScoreModel, ScoreResult, rank
from factors.structure import StructureFactor
from factors.trend import TrendFactor
from factors.volume import VolumeFactor

_MARKET_MEMORY = 16  # bar timestamps kept while waiting for the BTC / ETH bar of the same time
_MAX_WAITING = 4_096  # bars a symbol keeps for its factors before they take them unread (a book never read)
_MAX_QUEUED = 65_536  # bars of all symbols queued before the book takes them unread
WARM_FACTORS = ("T", "M", "S", "V", "F")  # the bar factors every symbol has: a symbol is scored once they are warm
# A symbol's returns as the correlation reads them (``FactorBook._returns_of``).
_Returns = tuple[int, list[int], list[float], dict[int, float], list[float], float]


def make_factors(config: FactorConfig, share_atr: bool = False) -> dict[str, FactorIndicator]:
    """One symbol's eleven factor indicators, built from the config.

    share_atr: S and F read T's ATR instead of keeping their own (same numbers, less work); they must then be
    updated after T on every bar, as FactorBook does.
    """
    c = config
    trend = TrendFactor(
        c.trend_ema_fast, c.trend_ema_mid, c.trend_ema_slow, c.trend_macd_signal, c.atr_period,
        c.trend_dist_scale_atr, c.trend_hist_scale_atr, c.trend_w_dist, c.trend_w_stack, c.trend_w_macd,
    )  # fmt: skip
    shared = trend.atr_state if share_atr else None
    return {
        "T": trend,
        "M": MomentumFactor(c.momentum_rsi_period, c.momentum_roc_period, c.momentum_roc_scale),
        "C": CvdFactor(c.cvd_window, c.cvd_scale, c.cvd_r2_full),
        "S": StructureFactor(c.structure_window, c.atr_period, c.structure_cap_atr, shared),
        "V": VolumeFactor(
            c.volume_window,
            c.volume_z_scale,
            c.volume_trigger_body,
            c.volume_trigger_mult,
            c.volume_w_z,
            c.volume_w_trigger,
        ),  # fmt: skip
        "O": OpenInterestFactor(
            c.oi_lookback_ns, c.oi_mean_ns, c.oi_scale_pct, c.oi_weak, c.oi_extreme_ratio, c.oi_stale_ns
        ),
        "L": LiquidityFactor(
            c.liquidity_notional,
            c.liquidity_depth_bps,
            c.liquidity_spread_bad_bps,
            c.liquidity_depth_good,
            c.liquidity_impact_bad_bps,
        ),  # fmt: skip
        "B": BasisFundingFactor(c.basis_w_funding, c.basis_w_premium),
        "Q": LiquidationFactor(c.liquidation_window_ns),
        "I": IndependenceFactor(c.independence_window, c.independence_beta_cap),
        "F": FundLeadingFactor(
            c.flow_window,
            c.atr_period,
            c.flow_scale,
            c.flow_price_scale,
            c.flow_frac_scale,
            c.flow_oi_scale_pct,
            shared,
        ),  # fmt: skip
    }


class _Symbol:
    """One instrument's factors and the little bar history the book itself needs."""

    __slots__ = (
        "instrument_id",
        "factors",
        "bar_factors",
        "t",
        "o",
        "b",
        "q",
        "i",
        "f",
        "l",
        "bar_type",
        "close",
        "ts",
        "returns",
        "count",
        "config",
        "returns_cache",
        "waiting_bars",
        "waiting_pairs",
        "is_market",
        "scored",
    )

    def __init__(self, instrument_id: InstrumentId, config: FactorConfig) -> None:
        self.instrument_id = instrument_id
        self.bar_type: BarType | None = None
        self.close = 0.0
        self.ts = 0
        self.count = 0
        self.returns_cache: _Returns | None = None
        # what the bar factors and I have not taken yet (``FactorBook._settle``): (o, h, l, c, v, tb, ts) and
        # (r, m, ts); the lists are cleared in place (the book's market wait holds this one)
        self.waiting_bars: list[tuple[float, float, float, float, float, float | None, int]] = []
        self.waiting_pairs: list[tuple[float, float, int]] = []
        self.is_market = False
        self.use_config(config)

    def use_config(self, config: FactorConfig) -> None:
        """Build the factors from ``config`` (windows in bars). Only before the first bar: it resets every
        factor's state except the event-fed ones (O, L, B, Q), which have no bar windows and may already hold
        funding, marks, OI or quotes that came first."""
        keep = {k: self.factors[k] for k in ("O", "L", "B", "Q")} if hasattr(self, "factors") else {}
        self.config = config
        self.set_factors({**make_factors(config, share_atr=True), **keep})
        f = self.factors
        self.bar_factors: tuple[BarFactor, ...] = (f["T"], f["M"], f["C"], f["S"], f["V"], f["F"])  # type: ignore
        self.t: TrendFactor = f["T"]  # type: ignore[assignment]
        self.o: OpenInterestFactor = f["O"]  # type: ignore[assignment]
        self.b: BasisFundingFactor = f["B"]  # type: ignore[assignment]
        self.q: LiquidationFactor = f["Q"]  # type: ignore[assignment]
        self.i: IndependenceFactor = f["I"]  # type: ignore[assignment]
        self.f: FundLeadingFactor = f["F"]  # type: ignore[assignment]
        self.l: LiquidityFactor = f["L"]  # type: ignore[assignment]
        self.returns: deque[tuple[int, float]] = deque(maxlen=config.correlation_window)

    def set_factors(self, factors: dict[str, FactorIndicator]) -> None:
        """The symbol's factor indicators by key (all of ``ALL_FACTORS``), and the same in ALL_FACTORS order, the
        order ``FactorBook.score`` reads them in."""
        self.factors = factors
        self.scored = tuple((k, factors[k]) for k in ALL_FACTORS)


def warmup_bars(config: FactorConfig) -> int:
    """Bars a symbol needs before it is warm (``FactorBook.is_warm``) under this config."""
    factors = make_factors(config)
    return max(getattr(factors[k], "warmup", 0) for k in WARM_FACTORS)


class FactorBook:
    """Per-universe factor state. ``btc_id`` / ``eth_id`` are the market for I (their bars must be fed
    too).

    ``eager``: take each bar as it comes instead of queueing it until the book is read. The state and every read
    are the same either way; eager spreads the work over the bars' arrival (live, where the time from a minute's
    last bar to its scan counts more than the CPU), queued runs it in tight loops at the read (backtests).
    """

    eager = False

    def __init__(
        self,
        config: FactorConfig,
        instrument_ids: list[InstrumentId],
        btc_id: InstrumentId | None = None,
        eth_id: InstrumentId | None = None,
    ) -> None:
        if not instrument_ids:
            raise ValueError("FactorBook needs at least one instrument id")
        self.config = config
        self._model = ScoreModel(config)
        self._syms: dict[InstrumentId, _Symbol] = {iid: _Symbol(iid, config) for iid in instrument_ids}
        self._market_ids = tuple(m for m in (btc_id, eth_id) if m is not None)
        missing = [str(m) for m in self._market_ids if m not in self._syms]
        if missing:
            raise ValueError(
                f"FactorBook: market instrument(s) {missing} are not in instrument_ids; add them (their bars "
                f"feed factor I) or pass btc_id/eth_id=None"
            )
        if not self._market_ids:
            for s in self._syms.values():
                s.i._reason = NO_MARKET
        for m in self._market_ids:
            self._syms[m].is_market = True
        self._mkt_partial: dict[int, dict[InstrumentId, float]] = {}
        self._mkt_done: OrderedDict[int, float] = OrderedDict()
        self._pending: OrderedDict[int, list[tuple[list[tuple[float, float, int]], float]]] = OrderedDict()
        self._queued: list[tuple[_Symbol, Bar]] = []  # bars fed and not taken yet, in the order they came

    # ----------------------------------------------------------------------------------------------- feeding

    def _symbol(self, instrument_id: InstrumentId) -> _Symbol:
        try:
            return self._syms[instrument_id]
        except KeyError:
            raise ValueError(
                f"{instrument_id} is not in this FactorBook's universe ({len(self._syms)} instruments); "
                f"add it to the instrument_ids the book is built with"
            ) from None

    def _register(self, bar_type: BarType) -> _Symbol:
        sym = self._symbol(bar_type.instrument_id)
        if sym.bar_type is not None and sym.bar_type != bar_type:
            raise ValueError(
                f"FactorBook got {bar_type} but already follows {sym.bar_type} for {sym.instrument_id}: "
                f"feed one bar type per instrument (the factor windows are in bars of that type)"
            )
        if sym.bar_type is None and self.config.window_unit != "bars":
            # windows given as durations: now that the bar size is known, count them in bars of it
            if sym.count:
                raise ValueError(f"{sym.instrument_id}: bars fed before the bar type was known")
            sym.use_config(self.config.in_bars(bar_type.spec.timedelta.total_seconds() / 60.0))
            if not self._market_ids:
                sym.i._reason = NO_MARKET
        sym.bar_type = bar_type
        return sym

    def handle_bar(self, bar: Bar, instrument_id: InstrumentId | None = None) -> None:
        """Feed a bar to every bar-driven factor of its instrument (Bar, or BinanceBar with taker-buy volume).
        ``instrument_id``: the bar's, when the caller has it already (each ``bar.bar_type`` builds new objects).
        The bar is queued; the book takes it when next read (``_take_bars``). An instrument outside the universe
        is refused here.
        """
        iid = bar.bar_type.instrument_id if instrument_id is None else instrument_id
        sym = self._syms.get(iid)
        if sym is None:
            sym = self._symbol(iid)  # raises: not in the universe
        queued = self._queued
        queued.append((sym, bar))
        if self.eager:
            self._take_bars()
            self._settle(sym)
        elif len(queued) >= _MAX_QUEUED:
            self._take_bars()

    def _take_bars(self) -> None:
        """Take the queued bars in the order they came: unpack each and feed it (``update_bar``), in one loop.

        The full bar type is checked on a symbol's first bar and then every 64th: comparing BarTypes costs more than
        all the factor math, and a second bar type on one instrument would be a wiring error caught early.
        """
        queued = self._queued
        if not queued:
            return
        self._queued = []
        update_bar = self.update_bar
        for k, (sym, bar) in enumerate(queued):
            try:
                if sym.bar_type is None or not sym.count & 63:
                    sym = self._register(bar.bar_type)
                update_bar(
                    sym,
                    bar.open.as_double(),
                    bar.high.as_double(),
                    bar.low.as_double(),
                    bar.close.as_double(),
                    bar.volume.as_double(),
                    float(bar.taker_buy_base_volume) if isinstance(bar, BinanceBar) else None,
                    bar.ts_event,
                )
            except Exception:
                self._queued = queued[k + 1 :] + self._queued  # the bars after a refused one are still taken
                raise

    def update_bar(
        self, sym: _Symbol, o: float, h: float, lo: float, c: float, v: float, tb: float | None, ts: int
    ) -> None:
        """The bar path on plain floats (the book unpacks each Nautilus bar once and calls this). The bar factors
        and O take the bar when the book is next read (``_settle``); B the close when a mark comes."""
        waiting = sym.waiting_bars
        waiting.append((o, h, lo, c, v, tb, ts))
        if len(waiting) >= _MAX_WAITING:
            self._settle(sym)
        if sym.q.live:
            sym.q.advance(ts)
        prev = sym.close
        sym.close = c
        sym.ts = ts
        sym.count += 1
        if prev > 0.0:
            r = c / prev - 1.0
            sym.returns.append((ts, r))
            if self._market_ids:
                self._feed_market(sym, ts, r)

    def _current(self, instrument_id: InstrumentId) -> _Symbol:
        """The symbol with every bar fed so far taken by its factors: what each read starts with (a scan, a coverage
        sample and an entry read a symbol several times in a row: the calls are skipped when nothing waits)."""
        if self._queued:
            self._take_bars()
        sym = self._syms.get(instrument_id)
        if sym is None:
            sym = self._symbol(instrument_id)  # raises: not in the universe
        if sym.waiting_bars or sym.waiting_pairs:
            self._settle(sym)
        return sym

    def _settle(self, sym: _Symbol) -> None:
        """Hand the symbol's bar factors the bars they have not taken, and I its market pairs."""
        bars = sym.waiting_bars
        if bars:
            if len(bars) == 1:  # read at every bar (live, a scan each bar): one update costs less than a batch
                bar = bars[0]
                for f in sym.bar_factors:
                    f.update_bar(*bar)
            else:
                for f in sym.bar_factors:
                    f.update_bars(bars)
            sym.o.update_prices(bars)
            bars.clear()
        pairs = sym.waiting_pairs
        if pairs:
            if len(pairs) == 1:
                sym.i.update_pair(*pairs[0])
            else:
                sym.i.update_pairs(pairs)
            pairs.clear()

    def _feed_market(self, sym: _Symbol, ts: int, r: float) -> None:
        if sym.is_market:
            part = self._mkt_partial.setdefault(ts, {})
            part[sym.instrument_id] = r
            if len(part) == len(self._market_ids):
                del self._mkt_partial[ts]
                m = sum(part.values()) / len(part)
                self._mkt_done[ts] = m
                if len(self._mkt_done) > _MARKET_MEMORY:
                    self._mkt_done.popitem(last=False)
                for waiting, r_sym in self._pending.pop(ts, ()):
                    waiting.append((r_sym, m, ts))
                for old in [k for k in self._mkt_partial if k < ts]:
                    del self._mkt_partial[old]
        m = self._mkt_done.get(ts)
        if m is not None:
            sym.waiting_pairs.append((r, m, ts))
        else:
            self._pending.setdefault(ts, []).append((sym.waiting_pairs, r))
            while len(self._pending) > _MARKET_MEMORY:
                self._pending.popitem(last=False)

    def handle_mark_price(self, instrument_id: InstrumentId, mark: float, ts_ns: int) -> None:
        self._take_bars()
        sym = self._symbol(instrument_id)
        sym.b.update_last(sym.close)  # the premium is over the last bar's close (0.0 before any bar: none)
        sym.b.update_mark(float(mark))

    def handle_funding_rate(self, instrument_id: InstrumentId, rate: float, ts_ns: int) -> None:
        self._symbol(instrument_id).b.update_funding(float(rate))

    def handle_open_interest(self, instrument_id: InstrumentId, oi: float, ts_ns: int) -> None:
        sym = self._current(instrument_id)  # F takes the OI at each bar: the bars before this OI see the OI before it
        sym.o.update_oi(ts_ns, float(oi))
        sym.f.update_oi(ts_ns, float(oi))

    def handle_quote_tick(self, tick) -> None:  # noqa: ANN001
        self._symbol(tick.instrument_id).l.handle_quote_tick(tick)

    def handle_order_book(self, book) -> None:  # noqa: ANN001
        """A Nautilus ``OrderBook`` (e.g. from ``subscribe_order_book_deltas`` + the cache, or
        on_order_book)."""
        self._symbol(book.instrument_id).l.handle_order_book(book)

    def handle_liquidation(
        self, instrument_id: InstrumentId, side: object, qty: float, price: float, ts_ns: int
    ) -> None:
        """side: the forced order's side (OrderSide or "BUY"/"SELL"); SELL = a long was liquidated."""
        self._take_bars()  # Q moves its window on at each bar
        self._symbol(instrument_id).q.update_liquidation(ts_ns, side, float(qty), float(price))

    def set_liquidation_feed(self, live: bool = True) -> None:
        """Declare that a liquidation stream is attached, so a quiet window reads 0 instead of "not
        available"."""
        self._take_bars()
        for s in self._syms.values():
            s.q.set_feed_live(live)

    # ----------------------------------------------------------------------------------------------- reading

    @property
    def instrument_ids(self) -> list[InstrumentId]:
        return list(self._syms)

    def prepare(self, instrument_id: InstrumentId) -> None:
        """Compute the symbol's bar factor values now. They read only what the bar left (F takes its open interest at
        the bar), so a later read computes the same floats; the live strategy calls this at each bar of a scan time
        but the one that completes it, so the scan after the minute's last bar computes one symbol's values, not
        every symbol's."""
        for f in self._current(instrument_id).bar_factors:
            if f._outdated:  # what ``value`` does
                f._outdated = False
                f._compute_value()

    def is_warm(self, instrument_id: InstrumentId) -> bool:
        """True when the bar factors every symbol has (T, M, S, V, F) are past their warm-up."""
        f = self._current(instrument_id).factors
        for k in WARM_FACTORS:  # a loop, not all(generator): read for each candidate of a scan and each sample
            if f[k].value is None:
                return False
        return True

    def factor_value(self, instrument_id: InstrumentId, key: str) -> float | None:
        if key not in ALL_FACTORS:
            raise ValueError(f"unknown factor {key!r}; known: {list(ALL_FACTORS)}")
        return self._current(instrument_id).factors[key].value

    def values(self, instrument_id: InstrumentId) -> dict[str, float | None]:
        return {k: ind.value for k, ind in self._current(instrument_id).factors.items()}

    def reasons(self, instrument_id: InstrumentId) -> dict[str, str]:
        """Why each missing factor is missing."""
        factors = self._current(instrument_id).factors
        return {k: ind.reason or "" for k, ind in factors.items() if ind.value is None}

    def missing_factors(self, instrument_id: InstrumentId) -> dict[str, str] | None:
        """None while the symbol warms up (``is_warm``); then each factor without a value and why: what a coverage
        sample counts, in one read of the symbol instead of ``is_warm``, ``values`` and ``reasons``."""
        missing: dict[str, str] = {}
        for k, ind in self._current(instrument_id).factors.items():
            if ind._outdated:  # what ``value`` does
                ind._outdated = False
                ind._compute_value()
            if ind._value is None:
                missing[k] = ind._reason or "not available"
        for k in WARM_FACTORS:
            if k in missing:
                return None
        return missing

    def score(self, instrument_id: InstrumentId) -> ScoreResult:
        sym = self._current(instrument_id)
        # One pass over the factors in ALL_FACTORS order reads each value once (computing it if the state moved on,
        # as ``value`` does) and builds what ``ScoreModel.score`` would check and sort again: a scan scores every
        # symbol, and the reads and the score's own pass were each a third of its time.
        clean: dict[str, float | None] = {}
        available: list[str] = []
        missing: list[str] = []
        notes: dict[str, str] = {}
        for k, ind in sym.scored:
            if ind._outdated:
                ind._outdated = False
                ind._compute_value()
            v = ind._value
            if v is None:
                missing.append(k)
                notes[k] = ind._reason or "not available"
            else:
                if not isfinite(v):
                    raise ValueError(f"score(): factor {k} is {v}; a factor must be finite or None (not available)")
                v = float(v)
                available.append(k)
            clean[k] = v
        if clean["I"] is not None and len(sym.returns) > _MARKET_MEMORY:
            if sym.i.last_ts < sym.returns[-_MARKET_MEMORY][0]:
                return self._score_stale_market(sym)
        return self._model.combine(clean, available, missing, notes, instrument_id.value, sym.ts or None)

    def _score_stale_market(self, sym: _Symbol) -> ScoreResult:
        """The score when the BTC/ETH bars stopped coming: I's last beta is not today's, so I counts as missing."""
        vals: dict[str, float | None] = {}
        notes: dict[str, str] = {}
        for k, ind in sym.factors.items():
            v = ind.value
            vals[k] = v
            if v is None:
                notes[k] = ind._reason or "not available"
        vals["I"] = None
        notes["I"] = f"stale: no BTC/ETH bar matched this symbol's last {_MARKET_MEMORY} bars"
        return self._model.score(vals, sym.instrument_id.value, sym.ts or None, notes)

    def scan(self) -> list[ScoreResult]:
        """Every symbol's score, best first (signals before FLAT, strongest first)."""
        return rank([self.score(iid) for iid in self._syms])

    def atr(self, instrument_id: InstrumentId) -> float | None:
        """Wilder ATR(atr_period) of the fed bars, None before atr_period bars."""
        sym = self._current(instrument_id)
        return sym.t.atr if sym.count >= sym.config.atr_period else None

    def atr_pct(self, instrument_id: InstrumentId) -> float | None:
        """ATR in percent of the last close."""
        a = self.atr(instrument_id)
        sym = self._syms[instrument_id]
        return None if a is None or sym.close <= 0.0 else 100.0 * a / sym.close

    def last_closes(self) -> dict[InstrumentId, float]:
        """The last close of each symbol that has had a bar. Eager books have taken every bar already, and are read
        from other threads (live: a test, a report) while their own thread feeds them: they take nothing here."""
        if not self.eager:
            self._take_bars()
        return {iid: sym.close for iid, sym in self._syms.items() if sym.count}

    def close_of(self, instrument_id: InstrumentId) -> float | None:
        """``last_closes().get(instrument_id)``: the symbol's last close, None before its first bar or outside the
        universe (a position the trader opened by hand); bars are taken as ``last_closes`` takes them."""
        if not self.eager:
            self._take_bars()
        sym = self._syms.get(instrument_id)
        return sym.close if sym is not None and sym.count else None

    def returns_correlation(self, a: InstrumentId, b: InstrumentId) -> float | None:
        """Pearson correlation of the bar returns of a and b over their last ``correlation_window``
        common bars.

        None with fewer than 3 common bars or a constant series.
        """
        self._take_bars()
        _, ts_a, xa, by_ts_a, da, saa = self._returns_of(self._symbol(a))
        _, ts_b, xb, _, db, sbb = self._returns_of(self._symbol(b))
        if ts_a == ts_b and len(by_ts_a) == len(ts_a):
            # the same bar times: each side's deviations from its mean are the symbol's own, kept for the bar
            if len(xa) < 3 or saa <= 0.0 or sbb <= 0.0:
                return None
            return sum(map(mul, da, db)) / sqrt(saa * sbb)
        # not the same bar times (or a time twice): b's returns in order, each with a's return of its time
        pairs = [(by_ts_a[ts], r) for ts, r in zip(ts_b, xb, strict=True) if ts in by_ts_a]
        xa = [p[0] for p in pairs]
        xb = [p[1] for p in pairs]
        n = len(xa)
        if n < 3:
            return None
        ma = sum(xa) / n
        mb = sum(xb) / n
        da = [x - ma for x in xa]
        db = [y - mb for y in xb]
        sab = sum(map(mul, da, db))
        saa = sum([d**2 for d in da])
        sbb = sum([d**2 for d in db])
        if saa <= 0.0 or sbb <= 0.0:
            return None
        return sab / sqrt(saa * sbb)

    @staticmethod
    def _returns_of(sym: _Symbol) -> "_Returns":
        """(version, bar times, returns, return by time, deviations from the mean, their sum of squares) of a
        symbol, built once per bar: an entry checks the correlation of each candidate with every open trade of
        its side, many candidates a scan (the same floats as computing them for each pair)."""
        cached = sym.returns_cache
        if cached is None or cached[0] != sym.count:
            returns = sym.returns
            xs = [r for _, r in returns]
            mean = sum(xs) / len(xs) if xs else 0.0
            dev = [x - mean for x in xs]
            cached = sym.returns_cache = (
                sym.count, [t for t, _ in returns], xs, dict(returns), dev, sum([d**2 for d in dev])
            )  # fmt: skip
        return cached

    def indicators(self, instrument_id: InstrumentId) -> list[Indicator]:
        """The symbol's factor indicators, in factor order (T M C S V O L B Q I F), up to date now (a later bar
        reaches them when the book is next read)."""
        f = self._current(instrument_id).factors
        return [f[k] for k in ALL_FACTORS]
