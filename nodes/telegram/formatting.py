"""Number, symbol and duration formatting shared by the event and command templates."""

import json

# Factor codes of the scoring model (the original design's ten factors plus one); unknown codes print as-is.
FACTOR_NAMES: dict[str, dict[str, str]] = {
    "zh": {
        "T": "趋势", "M": "动量", "C": "资金流", "V": "量能", "O": "持仓量", "B": "基差",
        "L": "流动性", "S": "结构", "F": "资金领先", "Q": "清算", "I": "独立性",
    },
    "en": {
        "T": "Trend", "M": "Momentum", "C": "CVD", "V": "Volume", "O": "Open interest", "B": "Basis",
        "L": "Liquidity", "S": "Structure", "F": "Fund flow", "Q": "Liquidations", "I": "Independence",
    },
}


def symbol(instrument: str) -> str:
    """"BTCUSDT-PERP.BINANCE" -> "BTCUSDT": traders know the raw symbol, not Nautilus's id."""
    return instrument.split(".", 1)[0].split("-", 1)[0]


def price(value: float, precision: int) -> str:
    return f"${value:.{max(precision, 0)}f}"


def plain(value: float, precision: int) -> str:
    return f"{value:.{max(precision, 0)}f}"


def signed(value: float, decimals: int = 2) -> str:
    # "+0.00" rather than "-0.00" for a rounded-away loss: a sign that flips on rounding noise misleads.
    text = f"{value:+.{decimals}f}"
    return "+" + text[1:] if text.startswith("-") and float(text) == 0 else text


def distance_pct(level: float, entry: float) -> str:
    """Distance of an exit level from the entry, unsigned, one decimal like the original design ("2.0%")."""
    if entry == 0:
        return "n/a"
    return f"{abs(level - entry) / entry * 100:.1f}%"


def duration(seconds: float, language: str) -> str:
    minutes_total = int(max(seconds, 0) // 60)
    days, rest = divmod(minutes_total, 1440)
    hours, minutes = divmod(rest, 60)
    if language == "zh":
        if days:
            return f"{days}天{hours}小时"
        if hours:
            return f"{hours}小时{minutes:02d}分"
        return f"{minutes}分钟"
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"


def top_factors(factors_json: str, language: str, count: int = 3) -> str:
    """The factors that pushed the score most, strongest first, e.g. "Trend +18.5 · Momentum +12.0"."""
    try:
        factors = json.loads(factors_json or "{}")
    except json.JSONDecodeError:
        return ""
    if not isinstance(factors, dict):
        return ""
    rows: list[tuple[str, float]] = []
    for code, info in factors.items():
        contribution = info.get("contribution") if isinstance(info, dict) else info
        if isinstance(contribution, int | float):
            rows.append((str(code), float(contribution)))
    rows.sort(key=lambda row: abs(row[1]), reverse=True)
    names = FACTOR_NAMES.get(language, {})
    return " · ".join(f"{names.get(code, code)} {signed(value, 1)}" for code, value in rows[:count])
