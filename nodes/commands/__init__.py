"""One module per ``ats`` subcommand, each with ``add_parser(subparsers)``."""


def clear_errors() -> tuple[type[BaseException], ...]:
    """Error types whose message already tells the trader what to do (printed without a traceback)."""
    from nodes.backtest.runner import CatalogMissingDataError
    from nodes.live.config import MissingCredentialsError
    from nodes.live.preflight import PreflightError
    from nodes.research.optimize.driver import OptimizeError

    return (CatalogMissingDataError, MissingCredentialsError, PreflightError, OptimizeError)
