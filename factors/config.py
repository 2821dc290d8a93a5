"""Weights, windows and thresholds of the factor model, as one Nautilus config.

``FactorConfig`` nests inside the strategy's ``StrategyConfig`` (``[strategy.config.factors]``) and loads
from a TOML/YAML dict, so every number the model uses is configuration. The defaults are those chosen by the
pre-registered walk-forward (docs/factors.md, "How the defaults were chosen"); the original design's numbers
are the profile nodes/configs/original.toml.
"""

from typing import Any

import msgspec
from nautilus_trader.common.config import NautilusConfig

# The signed factors that are summed into the score, and their default weights. T, M, C, S, V keep the original
# design's weights. O, B and Q count 0 (the original design: 20, 15, 10; nodes/configs/original.toml): O (open
# interest) and Q (liquidations) have no data in any backtest, so a weight would make the live score one that no
# backtest ever produced; B (funding and basis) carried no information on any data set in the factor study
# (docs/factors.md, "How the defaults were chosen").
DEFAULT_WEIGHTS: dict[str, float] = {
    "T": 25.0,
    "M": 15.0,
    "C": 20.0,
    "S": 10.0,
    "V": 15.0,
    "O": 0.0,
    "B": 0.0,
    "Q": 0.0,
}
SIGNED_FACTORS: tuple[str, ...] = tuple(DEFAULT_WEIGHTS)
# L (liquidity) and I (independence) are 0..100 quality measures; F modulates strength. None is summed.
QUALITY_FACTORS: tuple[str, ...] = ("L", "I")
MODULATOR: str = "F"
ALL_FACTORS: tuple[str, ...] = (*SIGNED_FACTORS, *QUALITY_FACTORS, MODULATOR)

# How the score reads the trend-type factors (``FactorConfig.direction``). "follow" (the original design): as
# measured, a rise is bullish. "fade": contrarian, a rise is bearish; the factor study found T, M, V and C
# negatively correlated with the returns that follow, at every bar size from 1m to 1h and every horizon from
# 15 minutes to a day (docs/factors.md, "What the data says").
DIRECTIONS: tuple[str, ...] = ("follow", "fade")
# The factors "fade" reads contrarian: those that measure the move so far (trend, momentum, taker flow, signed
# volume) and the F modulator (flow against price). S is not among them: it is already a reversion measure
# (high right above support after a fall), nor are O, B, Q (their own reasons in the docs) or L, I (unsigned).
FADED_FACTORS: tuple[str, ...] = ("T", "M", "C", "V", "F")

FACTOR_NAMES: dict[str, str] = {
    "T": "trend",
    "M": "momentum",
    "C": "cumulative volume delta",
    "S": "structure",
    "V": "volume",
    "O": "open interest",
    "L": "liquidity",
    "B": "basis + funding",
    "Q": "liquidations",
    "I": "independence",
    "F": "fund-leading",
}

_NS_PER_HOUR = 3_600_000_000_000

# The settings that are lengths of a window over bars (EMA spans, lookbacks, regression windows).
WINDOW_FIELDS: tuple[str, ...] = (
    "trend_ema_fast",
    "trend_ema_mid",
    "trend_ema_slow",
    "trend_macd_signal",
    "atr_period",
    "momentum_rsi_period",
    "momentum_roc_period",
    "cvd_window",
    "structure_window",
    "volume_window",
    "independence_window",
    "flow_window",
    "correlation_window",
)
# window_unit -> minutes per unit ("bars": the windows count bars of whatever size is fed)
WINDOW_UNITS: dict[str, float | None] = {"bars": None, "minutes": 1.0, "hours": 60.0}


def _default_weights() -> dict[str, float]:
    return dict(DEFAULT_WEIGHTS)


class FactorConfig(NautilusConfig, frozen=True):
    """Every parameter of the factor model.

    Windows (``WINDOW_FIELDS``: the EMA spans, ATR/RSI/ROC periods, the CVD, structure, volume, independence,
    flow and correlation windows) are read in ``window_unit``:

    - "bars" (default): each window counts bars of the bar type the factors are fed with, so its length in time
      follows the bar size: ``trend_ema_slow = 50`` is 50 minutes on 1m bars, 50 hours on 1h bars.
    - "minutes" / "hours": each window is a duration; at a bar size of b minutes it becomes
      max(2, round(n x unit / b)) bars (``in_bars``), so the model looks back over the same time at every bar
      size (EMA fast < mid < slow kept apart by at least one bar). With "hours" and 1m bars, EMA50 spans 3,000
      bars (50 hours, the original design's hour-scale reading) and the warm-up grows with it.

    ``weights`` may name only some factors: the others keep their default (``weight(key)``). A weight of 0
    takes a factor out of the score.

    ``direction``: "follow" reads every factor as measured (the original design); "fade" reads the trend-type
    factors and the F modulator (``FADED_FACTORS``) with their sign flipped, so a strong rise scores bearish.
    The factors themselves, their values and the study's ICs do not change; only how the score reads them.
    """

    weights: dict[str, float] = msgspec.field(default_factory=_default_weights)
    direction: str = "follow"  # "follow" or "fade": how the score reads T, M, C, V and F (DIRECTIONS)
    window_unit: str = "bars"  # "bars", "minutes" or "hours": what the window lengths below count
    long_threshold: float = 10.0  # score above it -> LONG
    short_threshold: float = -10.0  # score below it -> SHORT
    # F modulation of strength: x (1 + boost * |F|/100) when F agrees with the score's sign,
    # x (1 - cut * |F|/100) when it contradicts.
    fund_lead_boost: float = 0.2
    fund_lead_cut: float = 0.3
    # Quality gates: a signal whose L (or I) is live and below the gate is FLAT. 0 switches a gate off.
    liquidity_gate: float = 0.0
    independence_gate: float = 0.0

    # T trend
    trend_ema_fast: int = 12
    trend_ema_mid: int = 26
    trend_ema_slow: int = 50
    trend_macd_signal: int = 9
    trend_dist_scale_atr: float = 2.0  # (close - EMA50)/ATR of this size -> tanh(1)
    trend_hist_scale_atr: float = 0.1  # MACD histogram/ATR of this size -> tanh(1)
    trend_w_dist: float = 0.4
    trend_w_stack: float = 0.35
    trend_w_macd: float = 0.25
    atr_period: int = 14

    # M momentum
    momentum_rsi_period: int = 14
    momentum_roc_period: int = 14
    momentum_roc_scale: float = 2.0  # ROC in units of sqrt(n) x mean |close change|; this size -> tanh(1)

    # C cumulative volume delta
    cvd_window: int = 20
    cvd_scale: float = 0.2  # regression slope of CVD per bar / mean volume per bar; this size -> tanh(1)
    cvd_r2_full: float = 0.5  # fits with R^2 below this are damped in proportion

    # S structure
    structure_window: int = 50
    structure_cap_atr: float = 3.0  # a wall this many ATRs away (or farther) no longer matters

    # V volume
    volume_window: int = 20
    volume_z_scale: float = 2.0
    volume_trigger_body: float = 0.6  # body >= 60% of range
    volume_trigger_mult: float = 1.5  # volume >= 1.5 x mean
    volume_w_z: float = 60.0
    volume_w_trigger: float = 40.0

    # O open interest
    oi_lookback_ns: int = 12 * _NS_PER_HOUR
    oi_mean_ns: int = 7 * 24 * _NS_PER_HOUR
    oi_scale_pct: float = 5.0  # |OI change| of this many percent -> tanh(1)
    oi_weak: float = 0.3  # falling OI: the price direction counts this much
    oi_extreme_ratio: float = 1.5  # OI / 7-day mean above it damps O
    oi_stale_ns: int = _NS_PER_HOUR // 2  # no OI update for this long -> O not available

    # L liquidity
    liquidity_notional: float = 100_000.0  # impact cost of an order of this size (USDT)
    liquidity_depth_bps: float = 10.0  # depth counted within this distance of the mid
    liquidity_spread_bad_bps: float = 10.0
    liquidity_depth_good: float = 1_000_000.0  # USDT within depth_bps on both sides that scores 100
    liquidity_impact_bad_bps: float = 20.0

    # B basis + funding
    basis_w_funding: float = 0.5
    basis_w_premium: float = 0.5

    # Q liquidations
    liquidation_window_ns: int = _NS_PER_HOUR

    # I independence
    independence_window: int = 60
    independence_beta_cap: float = 1.5

    # F fund-leading
    flow_window: int = 12
    flow_scale: float = 20.0  # F = 100 tanh((flow - price momentum) / flow_scale)
    flow_price_scale: float = 3.0  # price move over the window / (ATR sqrt(n)) of this size -> tanh(1)
    flow_oi_scale_pct: float = 2.0
    flow_frac_scale: float = 1.0  # net signed / taker volume share of this size -> tanh(1)

    # FactorBook
    correlation_window: int = 60

    def __post_init__(self) -> None:
        unknown = sorted(set(self.weights) - set(SIGNED_FACTORS))
        if unknown:
            raise ValueError(
                f"FactorConfig.weights has unknown factor(s) {unknown}; the weighted factors are "
                f"{list(SIGNED_FACTORS)} (L and I are gates, F a modulator)"
            )
        for key, w in self.weights.items():
            if not w >= 0:
                raise ValueError(f"FactorConfig.weights[{key!r}] = {w}: weights must be >= 0 (0 disables)")
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"direction: {self.direction!r} is not one of {list(DIRECTIONS)} (follow = the trend-type factors "
                f"read as measured, the original design; fade = read contrarian)"
            )
        if self.window_unit not in WINDOW_UNITS:
            raise ValueError(
                f"FactorConfig.window_unit = {self.window_unit!r}: use one of {list(WINDOW_UNITS)} (bars = windows "
                f"count bars of the fed bar size; minutes/hours = windows are durations)"
            )
        if not self.short_threshold < 0 < self.long_threshold:
            raise ValueError(
                f"FactorConfig thresholds: need short_threshold < 0 < long_threshold, got "
                f"{self.short_threshold} / {self.long_threshold}"
            )
        if not self.trend_ema_fast < self.trend_ema_mid < self.trend_ema_slow:
            raise ValueError("FactorConfig: need trend_ema_fast < trend_ema_mid < trend_ema_slow")
        for name in (
            "atr_period",
            "momentum_rsi_period",
            "momentum_roc_period",
            "trend_macd_signal",
            "cvd_window",
            "structure_window",
            "volume_window",
            "independence_window",
            "flow_window",
            "correlation_window",
        ):
            if getattr(self, name) < 2:
                raise ValueError(f"FactorConfig.{name} = {getattr(self, name)}: windows must be >= 2 bars")

    def in_bars(self, bar_minutes: float) -> "FactorConfig":
        """This config with every window counted in bars of ``bar_minutes``-minute bars (window_unit "bars").

        Unchanged when the windows already count bars.
        """
        minutes = WINDOW_UNITS[self.window_unit]
        if minutes is None:
            return self
        if not bar_minutes > 0:
            raise ValueError(f"in_bars: bar size must be positive minutes, got {bar_minutes}")
        scale = minutes / bar_minutes
        values = {name: max(2, round(getattr(self, name) * scale)) for name in WINDOW_FIELDS}
        values["trend_ema_mid"] = max(values["trend_ema_mid"], values["trend_ema_fast"] + 1)
        values["trend_ema_slow"] = max(values["trend_ema_slow"], values["trend_ema_mid"] + 1)
        return msgspec.structs.replace(self, window_unit="bars", **values)

    def weight(self, key: str) -> float:
        """The weight of a signed factor: the configured one, else the default."""
        return float(self.weights.get(key, DEFAULT_WEIGHTS[key]))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "FactorConfig":
        """Build from a plain dict (a TOML/YAML table), with a clear error on unknown keys."""
        unknown = sorted(set(raw) - set(cls.__struct_fields__))
        if unknown:
            raise ValueError(f"unknown FactorConfig key(s) {unknown}; known: {sorted(cls.__struct_fields__)}")
        return msgspec.convert(raw, cls)
