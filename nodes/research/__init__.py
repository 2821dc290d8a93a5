"""Research over the catalog: what the model says of each symbol at a time (``scan``), and walk-forward
optimization of a backtest config on Optuna and Ray (``optimize/``, the ``ats optimize`` command)."""
