"""One module per ``ats`` subcommand, each with ``add_parser(subparsers)``."""


def clear_errors() -> tuple[type[BaseException], ...]:
    """The one list of error types whose message already tells the trader what to do: ``ats`` prints them as one
    line and exits with 2, no traceback. Imported when needed, so ``ats --help`` stays quick."""
    from catalog.errors import CatalogInputError
    from nodes.backtest.runner import CatalogMissingDataError
    from nodes.live.config import MissingCredentialsError
    from nodes.live.preflight import PreflightError
    from nodes.live.single_node import NodeAlreadyRunningError
    from nodes.research.optimize.driver import OptimizeError
    from nodes.settings import ConfigError
    from nodes.telegram.credentials import TelegramConfigError

    return (
        ConfigError,
        CatalogInputError,
        FileNotFoundError,
        CatalogMissingDataError,
        MissingCredentialsError,
        PreflightError,
        NodeAlreadyRunningError,
        OptimizeError,
        TelegramConfigError,
    )
