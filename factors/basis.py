"""B basis + funding: the premium of mark over last price and the funding rate, on the same scale."""

from factors.base import FactorIndicator

NO_FUNDING = "no funding rate received (no mark-price / funding feed)"


def rate_score(rate: float) -> float:
    """A rate (0.001 = 0.1%) to -100..100: 0.1% -> 33, 0.2% -> 100, linear in between and below, capped."""
    x = abs(rate) * 100.0  # percent
    s = 330.0 * x if x <= 0.1 else 33.0 + 670.0 * (x - 0.1)
    if s > 100.0:
        s = 100.0
    return s if rate >= 0.0 else -s


class BasisFundingFactor(FactorIndicator):
    """B = (w_f rate_score(funding) + w_p rate_score(premium)) / (w_f + w_p); funding alone without a mark.

    premium = (mark - last) / last, with last the latest bar close when the mark arrived. Positive premium and
    funding (longs paying) read as bullish pressure, as in the original design. Available once a funding rate
    has been received.
    """

    key = "B"
    __slots__ = (
        "_funding",
        "_last",
        "_premium",
        "_wf",
        "_wp",
    )

    def __init__(self, w_funding: float = 0.5, w_premium: float = 0.5) -> None:
        super().__init__([w_funding, w_premium])
        self._wf = w_funding
        self._wp = w_premium
        self._reset()

    def _reset(self) -> None:
        self._value = None
        self._reason = NO_FUNDING
        self._outdated = False
        self._last = 0.0
        self._funding: float | None = None
        self._premium: float | None = None

    def handle_bar(self, bar) -> None:  # noqa: ANN001
        self.update_last(bar.close.as_double())

    def update_last(self, close: float) -> None:
        self._last = close

    def update_mark(self, mark: float) -> None:
        if self._last > 0.0:
            self._premium = (mark - self._last) / self._last
            self._set_has_inputs(True)
            self._outdated = self._funding is not None

    def update_funding(self, rate: float) -> None:
        self._funding = rate
        self._set_has_inputs(True)
        self._set_initialized(True)
        self._outdated = True

    def _compute_value(self) -> None:
        fs = rate_score(self._funding)  # type: ignore[arg-type]
        if self._premium is None:
            self._value = fs
        else:
            self._value = (self._wf * fs + self._wp * rate_score(self._premium)) / (self._wf + self._wp)
        self._reason = None

    @property
    def premium(self) -> float | None:
        return self._premium

    @property
    def funding(self) -> float | None:
        return self._funding
