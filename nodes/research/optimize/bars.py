"""The bars a study's trials run on: each bar size of the space, for every symbol, over the whole study span."""

from collections.abc import Callable

import pandas as pd
from nautilus_trader.model.data import Bar
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalog.convert import interval_of_spec
from catalog.instruments import instrument_id_for
from factors.inputs import bar_type_for
from nodes.backtest.runner import CatalogMissingDataError, build_run_config, ensure_catalog
from nodes.research.optimize.config import OptimizeSettings
from nodes.research.optimize.folds import Window
from nodes.research.optimize.space import BAR_KEY, bar_duration, trial_settings
from nodes.settings import BacktestSettings


def check_bar_sizes(settings: OptimizeSettings, progress: Callable[[str], None] | None = None) -> None:
    """Every bar size a trial may use must be in the catalog for every symbol, in every fold's windows.

    This is the one place a trial's bar size is made available: bars of another size will be aggregated here
    from the catalogued 1-minute bars once the catalog can do it; until then a bar size the catalog lacks is
    refused with the command that fills it (``ensure_catalog`` also ingests the config's ``sources``).
    """
    sizes = [p for p in settings.space if p.key == BAR_KEY]
    values = [{BAR_KEY: bar} for bar in sizes[0].extremes()] if sizes else [{}]
    span = Window(*settings.span)
    windows = [w for fold in settings.folds for w in (fold.in_sample, fold.out_of_sample)]
    for value in values:
        span_settings = trial_settings(settings.config_path, settings.raw, value, span)
        ensure_catalog(span_settings, progress)
        check_coverage(span_settings, windows, progress)


def check_coverage(
    settings: BacktestSettings, windows: list[Window], progress: Callable[[str], None] | None = None
) -> None:
    """Refuse a fold window in which a symbol has no catalogued bars; say when a symbol's bars start late or
    end early (its first or last windows are then shorter for it, as in ``ats backtest``)."""
    catalog = ParquetDataCatalog(str(settings.catalog))
    interval = interval_of_spec(settings.bar_spec)
    slack = bar_duration(settings.bar_spec) + pd.Timedelta(hours=1)  # bars are stamped at their close
    data = build_run_config(settings).data
    bar_classes = {str(c.instrument_id): c.data_type for c in data if issubclass(c.data_type, Bar)}
    start, end = windows[0].start, max(w.end for w in windows)
    for symbol in settings.symbols:
        instrument_id = instrument_id_for(symbol)
        bar_type = str(bar_type_for(instrument_id, settings.bar_spec))
        intervals = catalog.get_intervals(bar_classes.get(str(instrument_id), Bar), bar_type)
        if not intervals:
            continue  # ensure_catalog has already said what is missing
        first = pd.Timestamp(intervals[0][0], tz="UTC")
        last = pd.Timestamp(intervals[-1][1], tz="UTC")
        empty = [w for w in windows if last < w.start or first >= w.end]
        if empty:
            raise CatalogMissingDataError(
                f"the catalog's {settings.bar_spec} bars of {symbol} run from {first} to {last}: the window"
                f" {empty[0]} has none. Move [backtest] start / end inside the data, or add data with"
                f" `uv run ats data download {symbol} --start {start:%Y-%m-%d} --end {end:%Y-%m-%d}"
                f" --interval {interval} --catalog {settings.catalog}`"
            )
        if progress is not None and (first > start + slack or last < end - slack):
            progress(f"note: the {settings.bar_spec} bars of {symbol} cover only {first} -> {last} of {start} -> {end}")
