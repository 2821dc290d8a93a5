"""The backtest: settings -> catalog check -> ``BacktestNode`` run (``runner``), its speed measures (``speed``),
funding settlement on the simulated venue (``funding``), and the report (``report``, ``trade_stats``)."""
