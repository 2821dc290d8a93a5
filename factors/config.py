"""Weights, windows and thresholds of the factor model, as one Nautilus config.

``FactorConfig`` nests inside the strategy's ``StrategyConfig`` (``[strategy.config.factors]``) and loads
from a TOML/YAML dict, so every number the model uses is configuration. The defaults are the model of the
original design (docs/factors.md).
"""

from typing import Any

import msgspec
from nautilus_trader.common.config import NautilusConfig

# The signed factors that are summed into the score, and their default weights (original design).
DEFAULT_WEIGHTS: dict[str, float] = {
    "T": 25.0,
    "M": 15.0,
    "C": 20.0,
    "S": 10.0,
    "V": 15.0,
    "O": 20.0,
    "B": 15.0,
    "Q": 10.0,
}
SIGNED_FACTORS: tuple[str, ...] = tuple(DEFAULT_WEIGHTS)
# L (liquidity) and I (independence) are 0..100 quality measures; F modulates strength. None is summed.
QUALITY_FACTORS: tuple[str, ...] = ("L", "I")
MODULATOR: str = "F"
ALL_FACTORS: tuple[str, ...] = (*SIGNED_FACTORS, *QUALITY_FACTORS, MODULATOR)

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


def _default_weights() -> dict[str, float]:
    return dict(DEFAULT_WEIGHTS)


class FactorConfig(NautilusConfig, frozen=True):
    """Every parameter of the factor model. Windows are in bars of the bar type the factors are fed with.

    ``weights`` may name only some factors: the others keep their default (``weight(key)``). A weight of 0
    takes a factor out of the score.
    """

    weights: dict[str, float] = msgspec.field(default_factory=_default_weights)
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
