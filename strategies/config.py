"""The strategy's configuration: universe, scan, exits, sizing and risk limits, all in one Nautilus config."""

import msgspec
from nautilus_trader.config import StrategyConfig

from factors.config import FactorConfig
from strategies.exits import DynamicParams, ExitMode, ExitParams
from strategies.risk import RiskLimits


class AtsStrategyConfig(StrategyConfig, frozen=True):
    """Every number the strategy uses. Defaults are the original design's.

    instrument_ids: the universe, e.g. ["BTCUSDT-PERP.BINANCE", ...]; bar_spec: the bars the factors are fed
    with ("1-MINUTE", "1-HOUR", ...); scan_interval_minutes: scan when a bar closes on this boundary.
    """

    instrument_ids: tuple[str, ...] = ()
    bar_spec: str = "1-MINUTE"
    bar_source: str = "EXTERNAL"
    btc_id: str = "BTCUSDT-PERP.BINANCE"
    eth_id: str = "ETHUSDT-PERP.BINANCE"
    factors: FactorConfig = msgspec.field(default_factory=FactorConfig)
    scan_interval_minutes: int = 60
    # When some symbols' bars for a scan time have not arrived this long after it, scan without them (live).
    scan_grace_ms: int = 3_000
    min_score: float = 70.0
    manual_strength: float = 70.0  # strength used for a manual signal when the symbol has no warm score

    # sizing
    risk_fraction: float = 0.01
    max_position_size_usdt: float = 10_000.0
    max_leverage: int = 10
    fee_rate: float = 0.0005  # taker fee reserved on top of the margin in the balance check
    set_account_leverage: bool | None = None  # lock margin at the trade's leverage; None = backtest only

    # risk limits
    max_positions: int = 5
    daily_loss_limit_usdt: float = 2_000.0
    correlation_bound: float = 0.8

    # exits
    exit_mode: str = "PERCENT"  # "PERCENT" or "ATR"
    stop_pct: float = 0.02
    tp1_pct: float = 0.04
    tp2_pct: float = 0.08
    atr_stop_mult: float = 1.8
    atr_target_mult: float = 2.5
    tp_order: str = "LIMIT"  # "LIMIT" or "MARKET_IF_TOUCHED"

    # dynamic adjustment (score read along the trade: +100 fully for it, -100 fully against)
    dynamic_enabled: bool = True
    dynamic_tighten_below: float = -20.0
    dynamic_exit_below: float = -60.0
    dynamic_trail_above: float = 85.0
    dynamic_tighten_fraction: float = 0.5
    dynamic_trail_fraction: float = 0.25
    dynamic_max_trails: int = 2

    # None = decided by where it runs: backtest (a TestClock) yes, live no. Binance live has no funding-rate
    # subscription, and live leverage is set on the exchange at connect.
    subscribe_funding: bool | None = None
    mode: str | None = None  # for NodeEvent / status: "backtest", "live", "testnet", "paper"; None = auto
    adopt_positions: bool = True  # on start, take over open positions found in the cache and re-arm stops
    scan_once: bool = False  # one scan with entries at the first bars after start, then only manage (live CLI)
    warmup_bars: int = 0  # live: request this many past bars per symbol at start to warm the factors
    # live: Binance mark-price stream (funding, basis), quotes (liquidity) and liquidations (Q)
    live_market_streams: bool = True

    def exit_params(self) -> ExitParams:
        return ExitParams(
            mode=ExitMode(self.exit_mode.upper()),
            stop_pct=self.stop_pct,
            tp1_pct=self.tp1_pct,
            tp2_pct=self.tp2_pct,
            atr_stop_mult=self.atr_stop_mult,
            atr_target_mult=self.atr_target_mult,
        )

    def dynamic_params(self) -> DynamicParams:
        return DynamicParams(
            tighten_below=self.dynamic_tighten_below,
            exit_below=self.dynamic_exit_below,
            trail_above=self.dynamic_trail_above,
            tighten_fraction=self.dynamic_tighten_fraction,
            trail_fraction=self.dynamic_trail_fraction,
            max_trails=self.dynamic_max_trails,
        )

    def risk_limits(self) -> RiskLimits:
        return RiskLimits(
            max_positions=self.max_positions,
            max_position_notional=self.max_position_size_usdt,
            max_leverage=self.max_leverage,
            daily_loss_limit=self.daily_loss_limit_usdt,
            correlation_bound=self.correlation_bound,
        )
