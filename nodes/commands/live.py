"""``ats live``: trade with the backtested strategy; ``ats flatten``: close everything and cancel all orders."""

import argparse
import os
import sys
from pathlib import Path

from nodes.paths import DEFAULT_LIVE_CONFIG


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    live = subparsers.add_parser(
        "live",
        help="trade live on Binance USDT-M futures (mainnet, --testnet or --paper)",
        description="Run the backtested strategy config on a Nautilus TradingNode with Binance's clients.",
    )
    live.add_argument("config", nargs="?", type=Path, default=DEFAULT_LIVE_CONFIG, help="live config (TOML)")
    mode = live.add_mutually_exclusive_group()
    mode.add_argument("--testnet", action="store_true", help="Binance futures testnet (testnet keys)")
    mode.add_argument("--paper", action="store_true", help="live market data, sandbox fills, no keys")
    live.add_argument("--scan-once", action="store_true", help="scan and act once at start, then only manage")
    live.set_defaults(handler=run_live)

    flatten = subparsers.add_parser(
        "flatten",
        help="close every position and cancel every order on the account, then exit",
        description="Close every open position with reduce-only market orders and cancel every open order.",
    )
    flatten.add_argument("config", nargs="?", type=Path, default=DEFAULT_LIVE_CONFIG, help="live config (TOML)")
    flatten.add_argument("--testnet", action="store_true", help="Binance futures testnet (testnet keys)")
    flatten.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the account to be flat")
    flatten.set_defaults(handler=run_flatten)


def _mode(args: argparse.Namespace) -> str | None:
    if getattr(args, "paper", False):
        return "paper"
    if args.testnet:
        return "testnet"
    return None


def run_live(args: argparse.Namespace) -> int:
    from nodes.live.config import load_live_settings
    from nodes.live.runner import run_live_node
    from nodes.live.single_node import single_node

    settings = load_live_settings(args.config, mode=_mode(args), scan_once=args.scan_once or None)
    with single_node(settings.state_file):
        code = run_live_node(settings)
    # The node is stopped and disposed, its log flushed: end here. Tearing down the interpreter after a node
    # whose start failed can crash in Nautilus's native parts (SIGSEGV seen), which would hide the exit code.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_flatten(args: argparse.Namespace) -> int:
    from nodes.live.config import load_live_settings
    from nodes.live.runner import flatten_account

    settings = load_live_settings(args.config, mode=_mode(args))
    if settings.mode == "paper":
        print("ats flatten: a paper account lives inside its node; nothing to flatten", file=sys.stderr)
        return 2
    flat = flatten_account(settings, timeout_s=args.timeout)
    print("account is flat: no open position, no open order" if flat else "timed out before the account was flat")
    return 0 if flat else 1
