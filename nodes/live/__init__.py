"""The live node: settings and ``TradingNodeConfig`` (``config``), checks before connecting (``preflight``), running
it (``runner``), and the live-only actors (open interest, liquidations, rate-limit back-off) and fixes."""
