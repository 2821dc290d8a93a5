"""The study drawn with plotly, one self-contained HTML page: IC heatmaps, IC decay, score-bucket bars."""

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nodes.research.study_result import StudyResult

ORDER = ("T", "M", "C", "S", "V", "B", "F", "score", "signal")
MIN_BARS_DRAWN = 100  # a bucket of a handful of bars (one crash) would set the scale of the whole chart


def _bars(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["bar"]))


def ic_heatmap(result: StudyResult) -> go.Figure:
    """Pooled rank IC by factor (rows) x horizon (columns), one panel per bar size; the text gives IC and t."""
    pooled = result.ic[result.ic["scope"] == "pooled"]
    bars = _bars(pooled)
    horizons = [h for h in result.options.horizons if h in set(pooled["horizon"])]
    factors = [f for f in ORDER if f in set(pooled["factor"])]
    limit = float(np.nanmax(np.abs(pooled["ic"]))) if len(pooled) else 0.05
    fig = make_subplots(rows=1, cols=len(bars), subplot_titles=[f"{b} bars" for b in bars], shared_yaxes=True)
    for k, bar in enumerate(bars, start=1):
        rows = pooled[pooled["bar"] == bar]
        mine = [h for h in horizons if h in set(rows["horizon"])]  # the horizons this bar size has
        z = rows.pivot(index="factor", columns="horizon", values="ic").reindex(index=factors, columns=mine)
        t = rows.pivot(index="factor", columns="horizon", values="t").reindex(index=factors, columns=mine)
        text = [
            [("" if np.isnan(z.iat[i, j]) else f"{z.iat[i, j]:+.3f}<br>t {t.iat[i, j]:+.1f}") for j in range(len(mine))]
            for i in range(len(factors))
        ]
        fig.add_trace(
            go.Heatmap(
                z=z.to_numpy(), x=mine, y=factors, text=text, texttemplate="%{text}",
                colorscale="RdBu", zmid=0.0, zmin=-limit, zmax=limit, showscale=k == len(bars),
                colorbar={"title": "rank IC"},
            ),
            row=1, col=k,
        )  # fmt: skip
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title="Rank IC with the forward return, pooled over symbols", height=520)
    return fig


def ic_decay(result: StudyResult) -> go.Figure:
    """IC of each horizon's own slice of the future (where the information sits), one panel per bar size."""
    decay = result.decay
    bars = _bars(decay)
    fig = make_subplots(rows=1, cols=len(bars), subplot_titles=[f"{b} bars" for b in bars], shared_yaxes=True)
    colors = dict(zip(ORDER, ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                              "#000000", "#7f7f7f"), strict=True))  # fmt: skip
    for k, bar in enumerate(bars, start=1):
        rows = decay[decay["bar"] == bar]
        for factor in [f for f in ORDER if f in set(rows["factor"])]:
            sub = rows[rows["factor"] == factor]
            fig.add_trace(
                go.Scatter(x=sub["horizon"], y=sub["ic"], name=factor, legendgroup=factor, showlegend=k == 1,
                           mode="lines+markers", line={"color": colors[factor]}),
                row=1, col=k,
            )  # fmt: skip
    fig.update_layout(title="IC decay: IC with the return between the previous horizon and this one", height=420)
    return fig


def score_bucket_bars(result: StudyResult) -> go.Figure:
    """Mean forward return in the score's direction by |score| bucket (bps), per bar size and horizon."""
    buckets = result.buckets
    bars = _bars(buckets)
    fig = make_subplots(rows=1, cols=len(bars), subplot_titles=[f"{b} bars" for b in bars], shared_yaxes=True)
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")
    colors = {h: palette[i % len(palette)] for i, h in enumerate(dict.fromkeys(buckets["horizon"]))}
    for k, bar in enumerate(bars, start=1):
        rows = buckets[(buckets["bar"] == bar) & (buckets["n"] >= MIN_BARS_DRAWN)]
        for horizon, sub in rows.groupby("horizon", sort=False):
            fig.add_trace(
                go.Bar(x=sub["bucket"], y=sub["mean_bps"], name=f"{horizon} ahead", legendgroup=horizon,
                       showlegend=k == 1, marker_color=colors[horizon],
                       customdata=np.stack([sub["n"], sub["hit_pct"]], axis=1),
                       hovertemplate="%{x}: %{y:.1f} bps, n %{customdata[0]}, hit %{customdata[1]:.1f}%"),
                row=1, col=k,
            )  # fmt: skip
    fig.add_hline(y=result.options.cost_bps, line_dash="dot", annotation_text="round-trip cost: a trade must earn more")
    fig.update_layout(
        title=f"Mean forward return in the score's direction by |score| bucket (bps; buckets of fewer than "
        f"{MIN_BARS_DRAWN} bars not drawn)",
        barmode="group",
        height=460,
    )
    return fig


def write_study_html(result: StudyResult, path: Path) -> Path:
    figures = []
    if not result.ic.empty:
        figures.append(ic_heatmap(result))
    if not result.decay.empty:
        figures.append(ic_decay(result))
    if not result.buckets.empty:
        figures.append(score_bucket_bars(result))
    body = "\n".join(fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figures))
    o = result.options
    title = f"ats study: {len(o.symbols)} symbols, {o.start or 'catalog start'} -> {o.end or 'catalog end'}"
    path.write_text(f"<html><head><meta charset='utf-8'><title>{title}</title></head><body>"
                    f"<h2>{title}</h2>{body}</body></html>")  # fmt: skip
    return path
