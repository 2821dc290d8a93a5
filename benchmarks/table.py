"""One row of the benchmark table and its formatting."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    benchmark: str  # what was measured, e.g. "EMA cross, 16 symbols x 1m, BacktestNode"
    metric: str  # e.g. "bars/s", "wall s", "us/update"
    value: float
    target: str = ""  # e.g. "<= 20 us", "" when the row is informative only
    baseline: str = ""  # the figure it is compared to, e.g. "original: 50 ms"
    note: str = ""


def format_table(rows: list[Row]) -> str:
    header = ("benchmark", "metric", "value", "target", "baseline", "note")
    cells = [header] + [(r.benchmark, r.metric, _fmt(r.value), r.target, r.baseline, r.note) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.4g}"
