"""Risk limits and the daily loss guard, without an engine."""

from strategies.risk import NANOS_PER_DAY, DailyLossGuard, OpenExposure, RiskConfig, check_entry


def no_corr(a: str, b: str) -> float | None:
    return None


def test_entry_allowed_when_nothing_blocks() -> None:
    assert check_entry("A", "LONG", [], 0, RiskConfig(), False, False, no_corr) == ""


def test_paused_and_daily_limit_block() -> None:
    assert "paused" in check_entry("A", "LONG", [], 0, RiskConfig(), True, False, no_corr)
    assert "daily loss" in check_entry("A", "LONG", [], 0, RiskConfig(), False, True, no_corr)


def test_one_position_per_symbol_and_max_positions() -> None:
    open_ = [OpenExposure(f"S{i}", "LONG") for i in range(4)]
    assert "already open" in check_entry("S1", "SHORT", open_, 0, RiskConfig(), False, False, no_corr)
    assert check_entry("X", "SHORT", open_, 0, RiskConfig(), False, False, no_corr) == ""
    # pending entries count toward the limit
    assert "max concurrent" in check_entry("X", "SHORT", open_, 1, RiskConfig(), False, False, no_corr)
    assert "max concurrent" in check_entry(
        "X", "SHORT", open_, 0, RiskConfig(max_positions=4), False, False, no_corr
    )


def test_correlation_only_against_same_direction() -> None:
    def corr(a: str, b: str) -> float | None:
        return 0.9 if {a, b} == {"A", "B"} else 0.1

    longs = [OpenExposure("B", "LONG")]
    assert "correlate" in check_entry("A", "LONG", longs, 0, RiskConfig(), False, False, corr)
    assert check_entry("A", "SHORT", longs, 0, RiskConfig(), False, False, corr) == ""
    assert check_entry("A", "LONG", longs, 0, RiskConfig(correlation_bound=0.95), False, False, corr) == ""
    assert check_entry("C", "LONG", longs, 0, RiskConfig(), False, False, corr) == ""


def test_daily_guard_hits_once_and_resets_next_day() -> None:
    g = DailyLossGuard(limit=2000)
    day1 = 10 * NANOS_PER_DAY
    assert g.observe(day1, 100_000) == ""
    assert g.observe(day1 + 1, 98_500) == "" and g.last_pnl == -1500
    assert g.observe(day1 + 2, 97_999) == "HIT" and g.hit
    assert g.observe(day1 + 3, 97_000) == ""  # notice once
    assert g.observe(day1 + 4, 99_000) == "" and g.hit  # recovering does not lift it the same day
    assert g.new_day(day1 + NANOS_PER_DAY)
    assert g.observe(day1 + NANOS_PER_DAY, 99_000) == "RESET" and not g.hit
    assert g.last_pnl == 0


def test_daily_guard_disabled_with_zero_limit() -> None:
    g = DailyLossGuard(limit=0)
    g.observe(0, 100)
    assert g.observe(1, -1_000_000) == "" and not g.hit
