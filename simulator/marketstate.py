"""The live market of one symbol as the replay moves it, and its Binance stream and REST payloads.

Only bars are replayed, so the order book is synthetic: ``BOOK_LEVELS`` levels a tick apart on each side of
the last price, with sizes taken from the bar's volume. Mark price is an exponential average of the last price
(Binance's mark follows the index and is smoother than the last trade), so mark-price triggers fire later
than contract-price ones, as they do on the exchange.
"""

from bisect import bisect_right
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from simulator.instruments import SymbolSpec
from simulator.market import Kline, Step
from simulator.series import KlineSeries

BOOK_LEVELS = 10
MARK_SMOOTHING = Decimal("0.5")
FUNDING_INTERVAL_MS = 8 * 3_600_000
DEFAULT_FUNDING_RATE = Decimal("0.0001")


class FundingSchedule:
    """Funding times and rates of one symbol: recorded funding events, or every 8 h at the default rate."""

    def __init__(self, events: Sequence[tuple[int, Decimal]] = ()) -> None:
        # Recorded funding timestamps carry a few ms of jitter: round them to the second.
        self._times = [round(t / 1000) * 1000 for t, _ in sorted(events)]
        self._rates = [r for _, r in sorted(events)]

    def next_time(self, ts_ms: int) -> int:
        """The first funding time strictly after ``ts_ms``."""
        i = bisect_right(self._times, ts_ms)
        if i < len(self._times):
            return self._times[i]
        return (ts_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS

    def rate_at(self, funding_time_ms: int) -> Decimal:
        i = bisect_right(self._times, funding_time_ms) - 1
        if i >= 0 and self._times[i] == funding_time_ms:
            return self._rates[i]
        if self._rates and i >= 0:
            return self._rates[i]
        return DEFAULT_FUNDING_RATE


class SymbolMarket:
    """Last and mark price, the current kline, the synthetic book and the ids Binance streams carry."""

    def __init__(
        self, spec: SymbolSpec, funding: FundingSchedule, shift_ms: int = 0, series: KlineSeries | None = None
    ) -> None:
        self.spec = spec
        self.funding = funding
        self.shift_ms = shift_ms  # added to data timestamps on the way out (replay rebased to "now")
        self.last: Decimal | None = None
        self.mark: Decimal | None = None
        self.data_ts = 0
        self.kline: Kline | None = None
        self._k_high = Decimal(0)
        self._k_low = Decimal(0)
        self._k_volume = Decimal(0)
        self._k_quote = Decimal(0)
        self._k_count = 0
        self._k_taker = Decimal(0)
        self._k_taker_quote = Decimal(0)
        self.kline_closed = False
        self.update_id = 1_000_000
        self.prev_update_id = self.update_id
        self.agg_id = 1
        self.trade_id = 1
        self.last_qty = Decimal(0)
        self.last_buyer_maker = False
        self._book_prices: tuple[list[Decimal], list[Decimal]] = ([], [])
        self._sizes: list[Decimal] = []
        self._sizes_for: Kline | None = None
        # The replayed klines and their history; rows before ``closed`` are closed (served by GET klines).
        self.series = series
        self.closed = 0
        if series is not None:
            self.closed = series.replay_from
            self.prime(series.kline(series.replay_from))

    # --- state

    def prime(self, kline: Kline) -> None:
        """Price the market at a bar's open before the replay starts (clients may trade at once)."""
        self.last = kline.open
        self.mark = kline.open
        self.data_ts = kline.open_time

    def apply(self, step: Step) -> None:
        spec = self.spec
        k = step.kline
        if step.index == 0:
            self.kline = k
            self.kline_closed = False
            self._k_high = self._k_low = k.open
            self._k_volume = self._k_quote = self._k_taker = self._k_taker_quote = Decimal(0)
            self._k_count = 0
        share = Decimal(1) / 4
        qty = max(spec.step_size, (k.volume * share / spec.step_size).to_integral_value() * spec.step_size)
        self.last_qty = qty
        self.last_buyer_maker = step.end < step.start
        self._k_high = max(self._k_high, step.start, step.end)
        self._k_low = min(self._k_low, step.start, step.end)
        if step.closes_bar:
            self._k_volume, self._k_quote, self._k_count = k.volume, k.quote_volume, k.count
            self._k_taker, self._k_taker_quote = k.taker_buy_base, k.taker_buy_quote
            self._k_high, self._k_low = k.high, k.low
            self.kline_closed = True
            self.closed += 1
        else:
            self._k_volume += k.volume * share
            self._k_quote += k.quote_volume * share
            self._k_count += k.count // 4
            self._k_taker += k.taker_buy_base * share
            self._k_taker_quote += k.taker_buy_quote * share
        self.last = step.end
        assert self.mark is not None
        self.mark = spec.round_price_down(self.mark + (step.end - self.mark) * MARK_SMOOTHING)
        self.data_ts = step.ts_ms
        self.agg_id += 1
        self.trade_id += max(1, k.count // 4)
        self.prev_update_id = self.update_id
        self.update_id += 1 + BOOK_LEVELS

    @property
    def best_bid(self) -> Decimal:
        assert self.last is not None
        return self.spec.round_price_down(self.last)

    @property
    def best_ask(self) -> Decimal:
        bid = self.best_bid
        return bid + self.spec.tick_size

    def level_qty(self, i: int) -> Decimal:
        return self._level_sizes()[i]

    def _level_sizes(self) -> list[Decimal]:
        """Sizes of the book levels, best first: from the bar's volume, computed once per bar."""
        if self._sizes_for is not self.kline or not self._sizes:
            volume = self.kline.volume if self.kline else Decimal(100) * self.spec.step_size
            base = (volume / 400 / self.spec.step_size).to_integral_value() * self.spec.step_size
            base = max(self.spec.min_qty, base)
            self._sizes = [base * (1 + i) for i in range(BOOK_LEVELS)]
            self._sizes_for = self.kline
        return self._sizes

    def book(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        tick = self.spec.tick_size
        bid = self.best_bid
        ask = bid + tick
        sizes = self._level_sizes()
        bids = [(bid - i * tick, sizes[i]) for i in range(BOOK_LEVELS)]
        asks = [(ask + i * tick, sizes[i]) for i in range(BOOK_LEVELS)]
        return bids, asks

    def now_ms(self) -> int:
        return self.data_ts + self.shift_ms

    def closed_klines(self, interval: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[Kline]:
        """Closed klines whose open time (as sent: shifted) lies in [start_ms, end_ms], as ``GET klines``
        windows them: the first ``limit`` after a start, else the last ``limit``."""
        series = self.series
        if series is None or interval != series.interval:
            return []
        shift = self.shift_ms
        rows = series.closed_rows(
            self.closed,
            None if start_ms is None else start_ms - shift,
            None if end_ms is None else end_ms - shift,
            limit,
        )
        return [series.kline(i) for i in rows]

    # --- payloads

    def agg_trade(self) -> dict[str, Any]:
        ts = self.now_ms()
        return {
            "e": "aggTrade",
            "E": ts,
            "a": self.agg_id,
            "s": self.spec.symbol,
            "p": self.spec.fmt_price(self.last or Decimal(0)),
            "q": self.spec.fmt_qty(self.last_qty),
            "f": self.trade_id,
            "l": self.trade_id,
            "T": ts,
            "m": self.last_buyer_maker,
        }

    def book_ticker(self) -> dict[str, Any]:
        ts = self.now_ms()
        q = self.spec.fmt_qty(self.level_qty(0))
        return {
            "e": "bookTicker",
            "u": self.update_id,
            "s": self.spec.symbol,
            "b": self.spec.fmt_price(self.best_bid),
            "B": q,
            "a": self.spec.fmt_price(self.best_ask),
            "A": q,
            "T": ts,
            "E": ts,
            "ps": self.spec.symbol,
        }

    def depth_update(self) -> dict[str, Any]:
        """A diff with every level of the new synthetic book, and size 0 for levels that left it."""
        ts = self.now_ms()
        bids, asks = self.book()
        old_bids, old_asks = self._book_prices
        new_bid_prices = {p for p, _ in bids}
        new_ask_prices = {p for p, _ in asks}
        fp, fq = self.spec.fmt_price, self.spec.fmt_qty
        b = [[fp(p), fq(q)] for p, q in bids] + [[fp(p), "0"] for p in old_bids if p not in new_bid_prices]
        a = [[fp(p), fq(q)] for p, q in asks] + [[fp(p), "0"] for p in old_asks if p not in new_ask_prices]
        self._book_prices = ([p for p, _ in bids], [p for p, _ in asks])
        return {
            "e": "depthUpdate",
            "E": ts,
            "T": ts,
            "s": self.spec.symbol,
            "ps": self.spec.symbol,
            "U": self.prev_update_id + 1,
            "u": self.update_id,
            "pu": self.prev_update_id,
            "b": b,
            "a": a,
        }

    def depth_snapshot(self, limit: int) -> dict[str, Any]:
        ts = self.now_ms()
        bids, asks = self.book()
        self._book_prices = ([p for p, _ in bids], [p for p, _ in asks])
        fp, fq = self.spec.fmt_price, self.spec.fmt_qty
        return {
            "lastUpdateId": self.update_id,
            "E": ts,
            "T": ts,
            "bids": [[fp(p), fq(q)] for p, q in bids[:limit]],
            "asks": [[fp(p), fq(q)] for p, q in asks[:limit]],
        }

    def kline_event(self) -> dict[str, Any] | None:
        k = self.kline
        if k is None or self.last is None:
            return None
        fp, fq = self.spec.fmt_price, self.spec.fmt_qty
        ts = self.now_ms()
        return {
            "e": "kline",
            "E": ts,
            "s": k.symbol,
            "k": {
                "t": k.open_time + self.shift_ms,
                "T": k.close_time + self.shift_ms,
                "s": k.symbol,
                "i": k.interval,
                "f": self.trade_id - self._k_count,
                "L": self.trade_id,
                "o": fp(k.open),
                "c": fp(self.last),
                "h": fp(self._k_high),
                "l": fp(self._k_low),
                "v": fq(self._k_volume),
                "n": self._k_count,
                "x": self.kline_closed,
                "q": f"{self._k_quote:.4f}",
                "V": fq(self._k_taker),
                "Q": f"{self._k_taker_quote:.4f}",
                "B": "0",
            },
        }

    def mark_price_event(self) -> dict[str, Any]:
        ts = self.now_ms()
        next_funding = self.funding.next_time(self.data_ts)
        mark = self.spec.fmt_price(self.mark or Decimal(0))
        return {
            "e": "markPriceUpdate",
            "E": ts,
            "s": self.spec.symbol,
            "p": mark,
            "i": mark,
            "P": mark,
            "r": f"{self.funding.rate_at(next_funding):.8f}",
            "T": next_funding + self.shift_ms,
        }

    def premium_index(self) -> dict[str, Any]:
        event = self.mark_price_event()
        return {
            "symbol": self.spec.symbol,
            "markPrice": event["p"],
            "indexPrice": event["i"],
            "estimatedSettlePrice": event["P"],
            "lastFundingRate": event["r"],
            "interestRate": "0.00010000",
            "nextFundingTime": event["T"],
            "time": event["E"],
        }

    def open_interest(self) -> dict[str, Any]:
        """Replayed bars carry no open interest: report a steady figure of one hour of traded volume."""
        volume = self.kline.volume * 60 if self.kline else Decimal(0)
        return {"openInterest": self.spec.fmt_qty(volume), "symbol": self.spec.symbol, "time": self.now_ms()}
