"""I independence: how little a symbol moves with the market (BTC and ETH), 0..100."""

from collections import deque

from factors.base import FactorIndicator

NO_MARKET = "no BTC/ETH bars at this symbol's bar times (the book needs btc_id / eth_id and their bars)"


class IndependenceFactor(FactorIndicator):
    """I = 100 (1 - min(1, max(beta, 0) / beta_cap)).

    beta = cov(r, m) / var(m) over the last ``window`` bars, r = the symbol's close-to-close return, m = the
    market return (mean of the BTC and ETH returns of the same bar; one of them when only one is given).
    One market regressor instead of two: BTC and ETH returns are so collinear that two separate betas are
    unstable, while their sum is what the original's beta stood for. var(m) = 0 gives beta 0.
    """

    key = "I"
    __slots__ = (
        "_cap",
        "_n",
        "_pairs",
        "_since_resum",
        "_sm",
        "_smm",
        "_sr",
        "_srm",
        "beta",
        "last_ts",
    )

    def __init__(self, window: int = 60, beta_cap: float = 1.5) -> None:
        super().__init__([window, beta_cap])
        self._n = window
        self._cap = beta_cap
        self._pairs: deque[tuple[float, float]] = deque()
        self._reset()

    def _reset(self) -> None:
        self._value = None
        self._reason = NO_MARKET
        self._pairs.clear()
        self._sr = self._sm = self._srm = self._smm = 0.0
        self._since_resum = 0
        self.beta: float | None = None
        self.last_ts = 0

    def update_pair(self, r: float, m: float, ts: int = 0) -> None:
        """One bar's symbol return r and market return m (ts: the bar time, kept to detect a stalled market)."""
        self.last_ts = ts
        pairs = self._pairs
        pairs.append((r, m))
        self._sr += r
        self._sm += m
        self._srm += r * m
        self._smm += m * m
        n = self._n
        if len(pairs) > n:
            r0, m0 = pairs.popleft()
            self._sr -= r0
            self._sm -= m0
            self._srm -= r0 * m0
            self._smm -= m0 * m0
            self._since_resum += 1
            if self._since_resum >= n:
                # exact re-sum once per window length: add/remove drift never builds up (amortised O(1))
                self._since_resum = 0
                self._sr = sum(p[0] for p in pairs)
                self._sm = sum(p[1] for p in pairs)
                self._srm = sum(p[0] * p[1] for p in pairs)
                self._smm = sum(p[1] * p[1] for p in pairs)
        elif len(pairs) < n:
            self._set_has_inputs(True)
            self._reason = f"warming up: {len(pairs)}/{n} bars aligned with the market"
            return
        den = n * self._smm - self._sm * self._sm
        beta = (n * self._srm - self._sr * self._sm) / den if den > 0.0 else 0.0
        self.beta = beta
        b = beta / self._cap if beta > 0.0 else 0.0
        self._value = 100.0 * (1.0 - (b if b < 1.0 else 1.0))
        if self._reason is not None:
            self._reason = None
            self._set_initialized(True)

    def update_pairs(self, pairs: list[tuple[float, float, int]]) -> None:
        """``update_pair`` for each (r, m, ts) in order, in one loop: the same sums, re-summed at the same
        pairs, so the state ends the same bit for bit."""
        if not pairs:
            return
        window = self._pairs
        n = self._n
        sr, sm, srm, smm, since = self._sr, self._sm, self._srm, self._smm, self._since_resum
        if len(window) + 1 < n:  # the first pair leaves it warming up
            self._set_has_inputs(True)
        for r, m, _ts in pairs:
            window.append((r, m))
            sr += r
            sm += m
            srm += r * m
            smm += m * m
            if len(window) > n:
                r0, m0 = window.popleft()
                sr -= r0
                sm -= m0
                srm -= r0 * m0
                smm -= m0 * m0
                since += 1
                if since >= n:
                    since = 0
                    sr = sum(p[0] for p in window)
                    sm = sum(p[1] for p in window)
                    srm = sum(p[0] * p[1] for p in window)
                    smm = sum(p[1] * p[1] for p in window)
        self._sr, self._sm, self._srm, self._smm, self._since_resum = sr, sm, srm, smm, since
        self.last_ts = pairs[-1][2]
        if len(window) < n:
            self._reason = f"warming up: {len(window)}/{n} bars aligned with the market"
            return
        den = n * smm - sm * sm
        beta = (n * srm - sr * sm) / den if den > 0.0 else 0.0
        self.beta = beta
        b = beta / self._cap if beta > 0.0 else 0.0
        self._value = 100.0 * (1.0 - (b if b < 1.0 else 1.0))
        if self._reason is not None:
            self._reason = None
            self._set_initialized(True)
