"""The ``ats`` command line: one subcommand per job; ``ats --help`` lists them."""

import argparse
import importlib
import os
import sys
from collections.abc import Callable

# Each subcommand lives in its own module and registers itself through an `add_parser(subparsers)` function
# that sets `handler` on its parser; the table keeps `ats --help` in one readable order.
SUBCOMMAND_MODULES: list[str] = [
    "nodes.commands.backtest",
    "nodes.commands.optimize",
    "nodes.commands.data",
    "nodes.commands.scan",
    "nodes.commands.study",
    "nodes.commands.check",
    "nodes.commands.plot",
    "nodes.commands.live",
    "nodes.commands.simulator",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ats",
        description="Automated multi-factor trading of Binance USDT-M perpetuals on NautilusTrader.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # a subcommand not written yet
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None, hard_exit: bool = False) -> int:
    """Run the command line. ``hard_exit`` (the installed ``ats`` script only, never tests): a command that sets
    ``hard_exit`` on its parser ends the process as soon as it returns, once its output is flushed, instead of
    tearing down the interpreter (freeing a backtest's millions of objects took seconds)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0 if args.command is None else 2
    from nodes.commands import clear_errors

    try:
        code = handler(args)
    except clear_errors() as exc:  # a message the trader can act on: one line, exit code 2
        print(f"ats {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ats {args.command}: interrupted", file=sys.stderr)
        return 130
    if hard_exit and getattr(args, "hard_exit", False):
        end_process(code)
    return code


def end_process(code: int) -> None:
    """End now: Nautilus's log and stdio flushed, files already closed by the command; no interpreter teardown."""
    component = sys.modules.get("nautilus_trader.common.component")
    if component is not None:
        component.flush_logger()
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def entry() -> int:
    """The ``ats`` script."""
    return main(hard_exit=True)


if __name__ == "__main__":
    sys.exit(entry())
