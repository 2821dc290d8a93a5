"""L liquidity: a 0..100 quality score from the spread, the depth near the touch and the impact of an
order."""

from collections.abc import Sequence

from factors.base import FactorIndicator

NO_BOOK = "no quote ticks or order book (bars-only data): liquidity not available"

Level = tuple[float, float]  # (price, size in base units)


def _impact_bps(levels: Sequence[Level], notional: float, mid: float, buy: bool, full_book: bool) -> float | None:
    """Average-price slippage from mid (bps) of taking ``notional`` USDT; inf / None when the levels run
    out."""
    filled = 0.0
    qty = 0.0
    for p, s in levels:
        take = p * s
        if filled + take >= notional:
            qty += (notional - filled) / p
            vwap = notional / qty
            return (vwap / mid - 1.0) * 1e4 if buy else (1.0 - vwap / mid) * 1e4
        filled += take
        qty += s
    # A full book that cannot fill the order is as bad as it gets; a top-of-book quote just does not tell.
    return float("inf") if full_book else None


def liquidity_parts(
    bids: Sequence[Level],
    asks: Sequence[Level],
    notional: float,
    depth_bps: float,
    full_book: bool,
) -> tuple[float, float, float | None]:
    """(spread_bps, depth_usdt within depth_bps of mid on both sides, impact_bps or None). Best levels
    first."""
    bid, ask = bids[0][0], asks[0][0]
    mid = 0.5 * (bid + ask)
    spread = (ask - bid) / mid * 1e4
    lo = mid * (1.0 - depth_bps * 1e-4)
    hi = mid * (1.0 + depth_bps * 1e-4)
    depth = 0.0
    for p, s in bids:
        if p < lo:
            break
        depth += p * s
    for p, s in asks:
        if p > hi:
            break
        depth += p * s
    ib = _impact_bps(asks, notional, mid, True, full_book)
    isell = _impact_bps(bids, notional, mid, False, full_book)
    impact = None if ib is None or isell is None else 0.5 * (ib + isell)
    return spread, depth, impact


def liquidity_score(
    spread_bps: float,
    depth_usdt: float,
    impact_bps: float | None,
    spread_bad_bps: float,
    depth_good: float,
    impact_bad_bps: float,
) -> float:
    """Mean of the part scores: spread 100 (1 - spread/bad), depth 100 min(1, depth/good), impact like
    spread."""
    parts = [
        100.0 * max(0.0, 1.0 - spread_bps / spread_bad_bps),
        100.0 * min(1.0, depth_usdt / depth_good),
    ]
    if impact_bps is not None:
        parts.append(100.0 * max(0.0, 1.0 - impact_bps / impact_bad_bps))
    return sum(parts) / len(parts)


class LiquidityFactor(FactorIndicator):
    """Updated from quote ticks (book ticker: top level only, no impact part) or a full order book."""

    key = "L"
    __slots__ = (
        "_depth_bps",
        "_depth_good",
        "_impact_bad",
        "_max_levels",
        "_notional",
        "_parts",
        "_quote",
        "_spread_bad",
        "source",
    )

    def __init__(
        self,
        notional: float = 100_000.0,
        depth_bps: float = 10.0,
        spread_bad_bps: float = 10.0,
        depth_good: float = 1_000_000.0,
        impact_bad_bps: float = 20.0,
        max_levels: int = 100,
    ) -> None:
        super().__init__([notional, depth_bps])
        self._notional = notional
        self._depth_bps = depth_bps
        self._spread_bad = spread_bad_bps
        self._depth_good = depth_good
        self._impact_bad = impact_bad_bps
        self._max_levels = max_levels
        self._reset()

    def _reset(self) -> None:
        self._value = None
        self._reason = NO_BOOK
        self._outdated = False
        self._parts: tuple[float, float, float | None] | None = None
        self._quote = (0.0, 0.0, 0.0, 0.0)
        self.source = ""

    @property
    def parts(self) -> tuple[float, float, float | None] | None:
        """(spread bps, depth USDT, impact bps or None) of the last quote or book."""
        if self._outdated:
            self._outdated = False
            self._compute_value()
        return self._parts

    def handle_quote_tick(self, tick) -> None:  # noqa: ANN001
        """The best bid and ask: kept, and scored when L is read (quotes come far more often than scans)."""
        bid, ask = tick.bid_price.as_double(), tick.ask_price.as_double()
        self._quote = (bid, tick.bid_size.as_double(), ask, tick.ask_size.as_double())
        self.source = "quote"
        self._outdated = True
        if bid > 0.0 and ask >= bid and not self.initialized:  # what update_levels would set for this quote
            self._set_has_inputs(True)
            self._set_initialized(True)

    def _compute_value(self) -> None:
        bid, bid_size, ask, ask_size = self._quote
        self.update_levels([(bid, bid_size)], [(ask, ask_size)], full_book=False)

    def handle_order_book(self, book) -> None:  # noqa: ANN001
        """A Nautilus ``OrderBook`` (L2): walks up to ``max_levels`` per side."""
        k = self._max_levels
        bids = [(lv.price.as_double(), lv.size()) for lv in book.bids()[:k]]
        asks = [(lv.price.as_double(), lv.size()) for lv in book.asks()[:k]]
        if bids and asks:
            self.update_levels(bids, asks, full_book=True)
            self.source = "book"

    def update_levels(self, bids: Sequence[Level], asks: Sequence[Level], full_book: bool) -> None:
        self._outdated = False
        if not bids or not asks or bids[0][0] <= 0.0 or asks[0][0] < bids[0][0]:
            self._value = None
            self._reason = f"unusable book: best bid {bids[:1]}, best ask {asks[:1]}"
            return
        parts = liquidity_parts(bids, asks, self._notional, self._depth_bps, full_book)
        self._parts = parts
        self._value = liquidity_score(*parts, self._spread_bad, self._depth_good, self._impact_bad)
        self._reason = None
        self._set_has_inputs(True)
        self._set_initialized(True)
