"""Walk-forward optimization of a backtest config (``ats optimize``): Optuna searches, Ray runs the trials.

- ``config``: the ``[optimize]`` table and its ``[optimize.space]``, checked before anything runs;
- ``space``: search-space keys (dotted paths into ``[strategy.config]``, plus ``backtest.bar``) and the trial
  configs they make;
- ``folds``: the walk-forward windows (rolling or anchored);
- ``bars``: which bar sizes a trial can use (the place that will aggregate them from 1-minute bars);
- ``objective``: a trial's metrics and its objective value (minimum trades per fold);
- ``diagnostics``: deflated Sharpe ratio, probability of backtest overfitting (CSCV), the plain-words verdict;
- ``worker``: a Ray actor that keeps loaded engines and runs trials on them;
- ``driver``: the studies, the scheduling of trials onto workers, interruption and resume;
- ``progress``: the progress line;
- ``report``: the ranked trials, importances, HTML plots and ``best.toml``.
"""
