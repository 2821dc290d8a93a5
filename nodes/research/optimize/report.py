"""The report of a walk-forward study, led by the stitched out-of-sample result; ``best.toml``; the HTML plots.

Files under ``reports/<run>/``: ``report.txt`` (what is printed), ``trials.csv`` (every trial, ranked within
its fold), ``folds.csv``, ``importances.csv``, ``oos_equity.csv``, ``diagnostics.json``, ``report.html``
(plots) and ``best.toml``.
"""

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import plotly.graph_objects as go
import tomli_w
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.model.data import Bar
from optuna.trial import FrozenTrial, TrialState

from nodes.backtest.report import format_frame, format_rows
from nodes.backtest.runner import build_run_config
from nodes.backtest.trade_stats import Summary, max_drawdown_pct, sharpe_sortino
from nodes.research.optimize.diagnostics import (
    DeflatedSharpe,
    Pbo,
    Verdict,
    deflated_sharpe_of,
    moments,
    pbo_cscv,
    probabilistic_sharpe,
    sharpe,
    verdict,
)
from nodes.research.optimize.driver import FoldOutcome, StudyOutcome
from nodes.research.optimize.folds import Window
from nodes.research.optimize.objective import RETURNS_FREQUENCY, TrialMetrics, calmar_ratio, objective_value
from nodes.research.optimize.space import with_values
from nodes.settings import BacktestSettings

BEST_CONFIG = "best.toml"


@dataclass(frozen=True)
class FoldDiagnostics:
    trials: int  # with an equity curve: complete and pruned
    dsr: DeflatedSharpe | None
    pbo: Pbo | None
    note: str  # why a diagnostic is missing


@dataclass(frozen=True)
class OptimizeReport:
    text: str
    oos_equity: pd.Series  # stitched, hourly
    buy_and_hold: pd.Series  # the same symbols, equal weights, same hours
    oos_summary: Summary
    oos_psr: float
    folds: pd.DataFrame
    trials: pd.DataFrame
    importances: pd.Series
    diagnostics: list[FoldDiagnostics]
    verdict: Verdict
    best_fold: FoldOutcome | None  # the fold whose chosen settings are in best.toml


# -- series ------------------------------------------------------------------------------------------------


def _equity(values: list[float], start: str) -> pd.Series:
    index = pd.date_range(pd.Timestamp(start), periods=len(values), freq=RETURNS_FREQUENCY)
    return pd.Series(values, index=index, dtype=float)


def stitched_equity(folds: list[FoldOutcome], starting_balance: float) -> pd.Series:
    """The out-of-sample windows one after the other, each fold's hourly returns compounded on the last.

    A fold whose out-of-sample window did not run (no trial reached min_trades) stays flat: the walk-forward
    would not have traded then.
    """
    returns = []
    for fold in folds:
        oos = fold.out_of_sample
        if oos.get("equity"):
            equity = _equity(oos["equity"], oos["equity_start"])
            returns.append(equity.pct_change().fillna(0.0))
        else:
            window = fold.fold.out_of_sample
            grid = pd.date_range(window.start.ceil(RETURNS_FREQUENCY), window.end, freq=RETURNS_FREQUENCY)
            returns.append(pd.Series(0.0, index=grid))
    joined = pd.concat(returns)
    joined = joined[~joined.index.duplicated(keep="last")]
    return starting_balance * (1 + joined).cumprod()


def buy_and_hold(settings: BacktestSettings, window: Window, grid: pd.DatetimeIndex) -> pd.Series:
    """Equal-weight buy-and-hold of the symbols over the window, as equity from the starting balance."""
    run_config = build_run_config(settings)
    curves = []
    for data_config in run_config.data:
        if not issubclass(data_config.data_type, Bar):
            continue
        bars = BacktestNode.load_data_config(data_config).data
        if not bars:
            continue
        closes = pd.Series([float(b.close) for b in bars], index=pd.to_datetime([b.ts_init for b in bars], utc=True))
        closes = closes[~closes.index.duplicated(keep="last")]
        at_grid = closes.reindex(closes.index.union(grid)).ffill().reindex(grid).bfill()
        curves.append(at_grid / at_grid.iloc[0])
    if not curves:
        return pd.Series(dtype=float)
    return settings.starting_balance * pd.concat(curves, axis=1).mean(axis=1)


def _summary_of_oos(folds: list[FoldOutcome], equity: pd.Series, starting_balance: float) -> Summary:
    ran = [TrialMetrics.from_dict(f.out_of_sample["metrics"]) for f in folds if f.out_of_sample.get("metrics")]
    trades = sum(m.trades for m in ran)
    gross_profit, gross_loss = sum(m.gross_profit for m in ran), sum(m.gross_loss for m in ran)
    total_return = equity.iloc[-1] / starting_balance - 1 if len(equity) else 0.0
    days = (equity.index[-1] - equity.index[0]) / pd.Timedelta(days=1) if len(equity) > 1 else 0.0
    per_day = ((1 + total_return) ** (1 / days) - 1) * 100 if days > 0 and total_return > -1 else 0.0
    sr, sortino = sharpe_sortino(equity)
    return Summary(
        trades=trades,
        win_rate=sum(m.wins for m in ran) / trades if trades else 0.0,
        profit_factor=gross_profit / gross_loss if gross_loss > 0 else (math.inf if gross_profit > 0 else 0.0),
        expectancy=(gross_profit - gross_loss) / trades if trades else 0.0,
        total_pnl=float(equity.iloc[-1] - starting_balance) if len(equity) else 0.0,
        total_return_pct=total_return * 100,
        per_day_return_pct=per_day,
        max_drawdown_pct=max_drawdown_pct(equity),
        sharpe=sr,
        sortino=sortino,
        average_duration_s=float("nan"),
    )


# -- diagnostics -------------------------------------------------------------------------------------------


def _trials_with_equity(study: optuna.Study) -> list[FrozenTrial]:
    states = (TrialState.COMPLETE, TrialState.PRUNED)
    return [t for t in study.get_trials(deepcopy=False, states=states) if t.user_attrs.get("equity")]


def fold_diagnostics(fold: FoldOutcome, blocks: int) -> FoldDiagnostics:
    """DSR of the chosen trial and PBO of the search, on the hourly in-sample returns of every trial tried."""
    trials = _trials_with_equity(fold.study)
    if fold.chosen is None or len(trials) < 2:
        return FoldDiagnostics(len(trials), None, None, "fewer than 2 trials with results, or none chosen")
    returns = np.column_stack(
        [np.diff(t.user_attrs["equity"]) / np.asarray(t.user_attrs["equity"][:-1]) for t in trials]
    )
    chosen = next(i for i, t in enumerate(trials) if t.number == fold.chosen.number)
    dsr = deflated_sharpe_of(returns[:, chosen], returns)
    try:
        pbo: Pbo | None = pbo_cscv(returns, blocks)
        note = ""
    except ValueError as exc:
        pbo, note = None, str(exc)
    return FoldDiagnostics(len(trials), dsr, pbo, note)


def _importances(folds: list[FoldOutcome]) -> pd.Series:
    """Optuna's parameter importances per fold (its default evaluator), averaged over the folds."""
    per_fold = []
    for fold in folds:
        try:
            per_fold.append(pd.Series(optuna.importance.get_param_importances(fold.study)))
        except (RuntimeError, ValueError):  # too few complete trials, or nothing varied
            continue
    if not per_fold:
        return pd.Series(dtype=float)
    return pd.concat(per_fold, axis=1).fillna(0.0).mean(axis=1).sort_values(ascending=False)


# -- tables ------------------------------------------------------------------------------------------------


def _round(value: Any, digits: int = 3) -> Any:
    return round(value, digits) if isinstance(value, float) and math.isfinite(value) else value


def trials_frame(outcome: StudyOutcome) -> pd.DataFrame:
    rows = []
    keys = [p.key for p in outcome.settings.space]
    for fold in outcome.folds:
        complete = sorted(fold.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: -t.value)
        rank = {t.number: i + 1 for i, t in enumerate(complete)}
        for trial in fold.study.get_trials(deepcopy=False):
            if trial.state in (TrialState.WAITING, TrialState.RUNNING) or trial.user_attrs.get("interrupted"):
                continue
            metrics = trial.user_attrs.get("metrics") or {}
            chosen = fold.chosen is not None and trial.number == fold.chosen.number
            oos = (fold.out_of_sample.get("metrics") or {}) if chosen else {}
            rows.append(
                {
                    "fold": fold.fold.number,
                    "trial": trial.number,
                    "rank": rank.get(trial.number),
                    "state": trial.state.name,
                    "value": _round(trial.value),
                    **{key: _round(trial.params.get(key)) for key in keys},
                    "is_trades": metrics.get("trades"),
                    "is_return_%": _round(metrics.get("total_return_pct")),
                    "is_sharpe": _round(metrics.get("sharpe")),
                    "is_profit_factor": _round(metrics.get("profit_factor")),
                    "is_max_dd_%": _round(metrics.get("max_drawdown_pct")),
                    "chosen": chosen,
                    "oos_trades": oos.get("trades"),
                    "oos_return_%": _round(oos.get("total_return_pct")),
                    "oos_sharpe": _round(oos.get("sharpe")),
                    "note": trial.user_attrs.get("pruned") or trial.user_attrs.get("error") or "",
                }
            )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["_order"] = frame["rank"].fillna(1e9)
    return frame.sort_values(["fold", "_order", "trial"]).drop(columns="_order").reset_index(drop=True)


def folds_frame(outcome: StudyOutcome, diagnostics: list[FoldDiagnostics]) -> pd.DataFrame:
    objective = outcome.settings.objective
    rows = []
    for fold, diag in zip(outcome.folds, diagnostics, strict=True):
        states = [t.state for t in fold.study.get_trials(deepcopy=False) if not t.user_attrs.get("interrupted")]
        is_metrics = (fold.chosen.user_attrs.get("metrics") or {}) if fold.chosen else {}
        oos = fold.out_of_sample.get("metrics")
        oos_metrics = TrialMetrics.from_dict(oos) if oos else None
        rows.append(
            {
                "fold": fold.fold.number,
                "in sample": str(fold.fold.in_sample),
                "out of sample": str(fold.fold.out_of_sample),
                "trials": len(states),
                "too few trades": states.count(TrialState.PRUNED),
                "failed": states.count(TrialState.FAIL),
                "chosen": fold.chosen.number if fold.chosen else None,
                f"IS {objective}": _round(fold.chosen.value) if fold.chosen else None,
                "IS return %": _round(is_metrics.get("total_return_pct"), 2),
                "IS trades": is_metrics.get("trades"),
                f"OOS {objective}": _round(objective_value(oos_metrics, objective)) if oos_metrics else None,
                "OOS return %": _round(oos_metrics.total_return_pct, 2) if oos_metrics else None,
                "OOS trades": oos_metrics.trades if oos_metrics else None,
                "DSR": _round(diag.dsr.value) if diag.dsr else None,
                "PBO": _round(diag.pbo.value) if diag.pbo else None,
                "note": fold.out_of_sample.get("reason", "") or diag.note,
            }
        )
    return pd.DataFrame(rows)


# -- best.toml ---------------------------------------------------------------------------------------------


def best_fold(outcome: StudyOutcome) -> FoldOutcome | None:
    """The latest fold whose chosen settings ran out of sample: the settings validated on the newest data."""
    ran = [f for f in outcome.folds if f.chosen is not None and f.out_of_sample.get("metrics")]
    return ran[-1] if ran else None


def _relative(target: Path, folder: Path) -> str:
    try:
        return os.path.relpath(target, folder)
    except ValueError:  # another drive
        return str(target)


def best_config(outcome: StudyOutcome, fold: FoldOutcome) -> dict[str, Any]:
    """The config file with the fold's chosen settings and its out-of-sample window; paths rebased on the run."""
    settings = outcome.settings
    assert fold.chosen is not None
    table = with_values(settings.raw, dict(fold.chosen.params))
    table.pop("optimize", None)
    backtest = table["backtest"]
    backtest["start"] = fold.fold.out_of_sample.start.isoformat()
    backtest["end"] = fold.fold.out_of_sample.last.isoformat()
    base = settings.base
    backtest["catalog"] = _relative(base.catalog, outcome.folder)
    backtest["report_dir"] = _relative(base.report_dir, outcome.folder)
    if "sources" in backtest:
        backtest["sources"] = [_relative(s, outcome.folder) for s in base.sources]
    return table


def write_best_config(outcome: StudyOutcome, fold: FoldOutcome) -> Path:
    assert fold.chosen is not None
    values = ", ".join(f"{k} = {v!r}" for k, v in fold.chosen.params.items())
    header = (
        f"# Chosen by `ats optimize` ({outcome.folder.name}): trial {fold.chosen.number} of fold"
        f" {fold.fold.number}, best {outcome.settings.objective} in sample {fold.fold.in_sample}.\n"
        f"# Searched: {values}\n"
        f"# The window is that fold's out-of-sample window: `uv run ats backtest` of this file reproduces the\n"
        f"# fold's out-of-sample row of report.txt. To trade it, point [live] strategy_from at this file.\n\n"
    )
    path = outcome.folder / BEST_CONFIG
    path.write_text(header + tomli_w.dumps(best_config(outcome, fold)))
    return path


# -- the report --------------------------------------------------------------------------------------------


def build_report(outcome: StudyOutcome) -> OptimizeReport:
    settings = outcome.settings
    balance = settings.base.starting_balance
    equity = stitched_equity(outcome.folds, balance)
    oos_span = Window(settings.folds[0].out_of_sample.start, settings.folds[-1].out_of_sample.end)
    hold_settings = dataclasses.replace(settings.base, start=oos_span.start, end=oos_span.last)
    hold = buy_and_hold(hold_settings, oos_span, pd.DatetimeIndex(equity.index))
    oos = _summary_of_oos(outcome.folds, equity, balance)
    hourly = equity.pct_change().dropna().to_numpy()
    skew, kurtosis = moments(hourly)
    oos_psr = probabilistic_sharpe(sharpe(hourly), len(hourly), skew, kurtosis)
    diagnostics = [fold_diagnostics(f, settings.pbo_blocks) for f in outcome.folds]
    pbos = [d.pbo.value for d in diagnostics if d.pbo is not None]
    chosen_fold = best_fold(outcome)
    chosen_diag = diagnostics[outcome.folds.index(chosen_fold)] if chosen_fold else None
    dsr = chosen_diag.dsr if chosen_diag else None
    hold_return = (hold.iloc[-1] / balance - 1) * 100 if len(hold) else float("nan")
    judged = verdict(
        oos_psr,
        oos.total_return_pct,
        oos.trades,
        float(np.mean(pbos)) if pbos else None,
        dsr.value if dsr else None,
        dsr.trials if dsr else settings.trials,
        hold_return,
    )
    folds = folds_frame(outcome, diagnostics)
    trials = trials_frame(outcome)
    importances = _importances(outcome.folds)

    days = oos_span.days
    oos_rows = [
        ("period", f"{oos_span} ({days:g} days, {len(settings.folds)} folds)"),
        *oos.rows()[:-1],
        ("Calmar", f"{calmar_ratio(oos.total_return_pct, oos.max_drawdown_pct, days):.2f}"),
        ("buy and hold, same symbols", f"{hold_return:.2f} %"),
    ]
    diag_rows = [
        ("trials", f"{sum(d.trials for d in diagnostics)} with results ({settings.trials} per fold asked)"),
        (
            "out-of-sample PSR",
            "n/a" if math.isnan(oos_psr) else f"{oos_psr:.3f} (P(true Sharpe > 0), {len(hourly)} hourly returns)",
        ),
    ]
    if dsr is not None and chosen_fold is not None:
        diag_rows.append(
            (
                f"deflated Sharpe (fold {chosen_fold.fold.number})",
                f"{dsr.value:.3f} (hourly Sharpe {dsr.sharpe:.4f} vs {dsr.benchmark:.4f} expected from the best of"
                f" {dsr.trials} skill-less trials; {dsr.observations} returns)",
            )
        )
    for fold, diag in zip(outcome.folds, diagnostics, strict=True):
        shown = f"{diag.pbo.value:.3f} over {diag.pbo.splits} splits" if diag.pbo else f"n/a ({diag.note})"
        diag_rows.append((f"PBO fold {fold.fold.number}", shown))
    if pbos:
        diag_rows.append(("PBO mean", f"{np.mean(pbos):.3f}"))

    head = (
        f"Walk-forward optimization of {settings.config_path.name}: {settings.objective} in sample, at least"
        f" {settings.min_trades} trades per fold; {settings.scheme} folds of {settings.in_sample.days:g} days in"
        f" sample + {settings.out_of_sample.days:g} out of sample; {settings.trials} trials per fold"
        f" ({settings.sampler}); {outcome.workers} worker(s)"
    )
    parts = [
        head,
        format_rows("Out of sample (stitched): what the walk-forward would have earned", oos_rows),
        "Verdict\n-------\n" + "\n".join(f"- {line}" for line in judged.lines),
        format_rows("Overfitting diagnostics", diag_rows),
        format_frame("Folds", folds),
    ]
    if not trials.empty:
        top = trials[trials["rank"].notna() & (trials["rank"] <= 5)].drop(columns=["state", "note"])
        parts.append(format_frame("In sample: the 5 best trials of each fold (seen by the search)", top))
    if len(importances):
        table = importances.rename("importance").rename_axis("parameter").reset_index()
        parts.append(format_frame("Parameter importances (Optuna, mean over folds)", table))
    if chosen_fold is not None and chosen_fold.chosen is not None:
        chosen_rows = [(k, repr(v)) for k, v in chosen_fold.chosen.params.items()]
        title = f"Chosen settings (best.toml): fold {chosen_fold.fold.number}, trial {chosen_fold.chosen.number}"
        parts.append(format_rows(title, chosen_rows))
    else:
        parts.append("No settings were chosen: no fold had a trial that reached min_trades in sample.")
    return OptimizeReport(
        text="\n\n".join(parts),
        oos_equity=equity,
        buy_and_hold=hold,
        oos_summary=oos,
        oos_psr=oos_psr,
        folds=folds,
        trials=trials,
        importances=importances,
        diagnostics=diagnostics,
        verdict=judged,
        best_fold=chosen_fold,
    )


def _figures(outcome: StudyOutcome, report: OptimizeReport) -> list[tuple[str, go.Figure]]:
    figures = []
    curve = go.Figure()
    curve.add_scatter(x=report.oos_equity.index, y=report.oos_equity.values, name="walk-forward, out of sample")
    if len(report.buy_and_hold):
        curve.add_scatter(x=report.buy_and_hold.index, y=report.buy_and_hold.values, name="buy and hold, same symbols")
    for fold in outcome.settings.folds[1:]:
        curve.add_vline(x=fold.out_of_sample.start, line_dash="dot", line_color="grey")
    curve.update_layout(title="Out-of-sample equity (stitched folds) vs buy and hold", yaxis_title="USDT")
    figures.append(("Out-of-sample equity", curve))
    folds = report.folds
    bars = go.Figure()
    bars.add_bar(x=folds["fold"], y=folds["IS return %"], name="in sample (chosen trial)")
    bars.add_bar(x=folds["fold"], y=folds["OOS return %"], name="out of sample")
    bars.update_layout(title="Return per fold, %", barmode="group", xaxis_title="fold")
    figures.append(("Per fold", bars))
    plots = (
        ("optimization history", optuna.visualization.plot_optimization_history),
        ("parallel coordinates", optuna.visualization.plot_parallel_coordinate),
        ("parameter importances", optuna.visualization.plot_param_importances),
    )
    for fold in outcome.folds:
        for name, plot in plots:
            try:
                figure = plot(fold.study)
            except (RuntimeError, ValueError):  # too few complete trials for this plot
                continue
            figure.update_layout(title=f"Fold {fold.fold.number}: {name}")
            figures.append((f"Fold {fold.fold.number}: {name}", figure))
    return figures


def write_html(outcome: StudyOutcome, report: OptimizeReport, path: Path) -> None:
    """One self-contained page (plotly.js inlined once, so it opens offline)."""
    sections = []
    for i, (title, figure) in enumerate(_figures(outcome, report)):
        html = figure.to_html(full_html=False, include_plotlyjs=i == 0)
        sections.append(f"<h2>{title}</h2>\n{html}")
    body = "\n".join(sections)
    text = report.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    path.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>ats optimize</title></head><body>"
        f"<h1>ats optimize: {outcome.folder.name}</h1><pre>{text}</pre>\n{body}</body></html>\n"
    )


def save_report(outcome: StudyOutcome, report: OptimizeReport) -> Path | None:
    """Write every file of the report; the path of best.toml, or None when no settings were chosen."""
    folder = outcome.folder
    (folder / "report.txt").write_text(report.text + "\n")
    report.trials.to_csv(folder / "trials.csv", index=False)
    report.folds.to_csv(folder / "folds.csv", index=False)
    report.importances.rename("importance").to_csv(folder / "importances.csv", index_label="parameter")
    pd.DataFrame({"walk_forward": report.oos_equity, "buy_and_hold": report.buy_and_hold}).to_csv(
        folder / "oos_equity.csv", index_label="time"
    )
    diagnostics = {
        "oos_psr": report.oos_psr,
        "oos": dict(report.oos_summary.rows()),
        "folds": [
            {
                "fold": f.fold.number,
                "trials": d.trials,
                "dsr": d.dsr.__dict__ if d.dsr else None,
                "pbo": {"value": d.pbo.value, "splits": d.pbo.splits} if d.pbo else None,
                "note": d.note,
            }
            for f, d in zip(outcome.folds, report.diagnostics, strict=True)
        ],
        "better_than_chance": report.verdict.better_than_chance,
        "verdict": list(report.verdict.lines),
    }
    (folder / "diagnostics.json").write_text(json.dumps(diagnostics, indent=2, default=str))
    write_html(outcome, report, folder / "report.html")
    if report.best_fold is None:
        return None
    return write_best_config(outcome, report.best_fold)
