"""``ats simulator``: run the loopback Binance USDT-M exchange to rehearse a live configuration without money.

    export ATS_SIM_API_KEY=k ATS_SIM_API_SECRET=s
    ats simulator ../shared/data/binance/ohlcv_2025-03_2025-06/BTCUSDT-1m.csv.gz --speed 10 --port 8765

then point the live config's ``base_url_http`` at ``http://127.0.0.1:8765`` and ``base_url_ws`` /
``base_url_ws_stream`` at ``ws://127.0.0.1:8765``, with the same key and secret as the node's Binance keys.
"""

import argparse
import os
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.server import SimulatorConfig

KEY_ENV = "ATS_SIM_API_KEY"
SECRET_ENV = "ATS_SIM_API_SECRET"


class SimulatorUsageError(ValueError):
    """Bad command-line input, reported as one line."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "simulator",
        help="run a loopback Binance USDT-M futures exchange replaying real data (no money, no internet)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="*", type=Path, help="kline/OHLCV and funding files to replay")
    parser.add_argument("--catalog", type=Path, help="replay from a ParquetDataCatalog instead of files")
    parser.add_argument(
        "--capture",
        action="append",
        type=Path,
        default=[],
        help="a raw WebSocket capture (ws_capture/*.gz) to replay with its real trades and book (repeatable)",
    )
    parser.add_argument("--capture-speed", type=float, default=1.0, help="pace of the captures (1 = their own)")
    parser.add_argument(
        "--instrument", action="append", default=[], help="with --catalog: e.g. BTCUSDT-PERP.BINANCE (repeatable)"
    )
    parser.add_argument("--bar-spec", default="1-MINUTE-LAST-EXTERNAL", help="with --catalog: bar spec to replay")
    parser.add_argument("--start", help="first bar to replay, ISO UTC time (default: the data's first)")
    parser.add_argument("--bars", type=int, help="how many bars per symbol to replay (default: all)")
    parser.add_argument(
        "--history", type=int, default=1500, help="bars before --start served as past klines (default 1500)"
    )
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed: 1 = real time, 60 = 1 min/s")
    parser.add_argument("--as-fast-as-possible", action="store_true", help="no pacing: as fast as clients read")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port for HTTP and WebSocket (default 8765)")
    parser.add_argument("--balance", default="10000", help="starting USDT wallet balance")
    parser.add_argument("--leverage", type=int, default=20, help="default leverage of every symbol")
    parser.add_argument("--paused", action="store_true", help="start paused; POST /_sim/replay {action: play}")
    parser.add_argument("--keep-data-times", action="store_true", help="send the data's own timestamps")
    parser.set_defaults(handler=main)
    return parser


def _start_ms(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SimulatorUsageError(f"--start {text!r} is not an ISO time like 2025-05-04T16:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def build_config(args: argparse.Namespace, environ: dict[str, str] | None = None) -> "SimulatorConfig":
    from catalog.instruments import binance_perpetual
    from simulator.capture import read_capture
    from simulator.server import SimulatorConfig
    from simulator.sources import ReplayData, from_catalog, from_files

    env = os.environ if environ is None else environ
    key, secret = env.get(KEY_ENV), env.get(SECRET_ENV)
    if not key or not secret:
        raise SimulatorUsageError(
            f"set {KEY_ENV} and {SECRET_ENV}: the simulator checks request signatures with them "
            "(use the same values as the node's Binance API key and secret)"
        )
    if args.catalog and args.files:
        raise SimulatorUsageError("give data files or --catalog, not both")
    absent = [str(p) for p in args.capture if not p.exists()]
    if absent:
        raise SimulatorUsageError(f"no such capture file: {', '.join(absent)}")
    captures = [read_capture(p) for p in args.capture]
    if args.capture_speed <= 0:
        raise SimulatorUsageError("--capture-speed must be > 0")
    if captures and not args.files and not args.catalog:
        data = ReplayData()
    elif args.catalog:
        if not args.instrument:
            raise SimulatorUsageError("--catalog needs at least one --instrument, e.g. BTCUSDT-PERP.BINANCE")
        data = from_catalog(args.catalog, args.instrument, args.bar_spec)
    elif args.files:
        missing = [str(p) for p in args.files if not p.exists()]
        if missing:
            raise SimulatorUsageError(f"no such file: {', '.join(missing)}")
        data = from_files(args.files)
    else:
        raise SimulatorUsageError("nothing to replay: give kline files, --catalog with --instrument, or --capture")
    if args.bars is not None and args.bars < 1:
        raise SimulatorUsageError("--bars must be at least 1")
    if args.history < 0:
        raise SimulatorUsageError("--history must be >= 0")
    data = data.window(start_ms=_start_ms(args.start), limit=args.bars, history=args.history)
    if not data.replayed and not captures:
        raise SimulatorUsageError("no bars left to replay after --start / --bars")
    if args.speed <= 0:
        raise SimulatorUsageError("--speed must be > 0 (use --as-fast-as-possible for no pacing)")
    try:
        balance = Decimal(args.balance)
    except InvalidOperation:
        raise SimulatorUsageError(f"--balance {args.balance!r} is not a number") from None
    interval_s = max((s.interval_ms for s in data.series), default=60_000) / 1000
    instruments = list(data.instruments)
    known = {i.raw_symbol.value for i in instruments}
    instruments += [binance_perpetual(c.symbol) for c in captures if c.symbol not in known]
    return SimulatorConfig(
        instruments=instruments,
        bars=data.series,
        api_key=key,
        api_secret=secret,
        bar_seconds=0.0 if args.as_fast_as_possible else max(interval_s, 1.0) / args.speed,
        funding=dict(data.funding),
        balance=balance,
        default_leverage=args.leverage,
        host=args.host,
        port=args.port,
        autostart=not args.paused,
        rebase_time=not args.keep_data_times,
        captures=captures,
        capture_speed=args.capture_speed,
    )


async def _serve(config: "SimulatorConfig") -> None:
    import asyncio

    from simulator.server import BinanceSimulator

    async with BinanceSimulator(config) as sim:
        print(f"Binance USDT-M simulator on {sim.http_url} (WebSocket {sim.ws_url})", flush=True)
        print(f"  symbols: {', '.join(sim.specs)}; {sim.total_ticks // 4} bars to replay", flush=True)
        print(
            f"  live config: base_url_http={sim.http_url} base_url_ws={sim.ws_url} base_url_ws_stream={sim.ws_url}",
            flush=True,
        )
        print("  control: GET /_sim/status, GET /_sim/requests, POST /_sim/fault, POST /_sim/replay", flush=True)
        assert sim.finished is not None
        await sim.finished.wait()
        status = sim.status()
        print(
            f"replay finished: {status['requests']} requests, weight {status['request_weight']}, "
            f"wallet {status['wallet_balance']} USDT; still serving (Ctrl-C to stop)",
            flush=True,
        )
        await asyncio.Event().wait()


def main(args: argparse.Namespace) -> int:
    try:
        config = build_config(args)
    except (SimulatorUsageError, ValueError) as e:
        print(f"ats simulator: error: {e}", file=sys.stderr)
        return 2
    import asyncio  # here, not at the top: `ats --help` reads this module

    try:
        asyncio.run(_serve(config))
    except OSError as e:
        print(f"ats simulator: error: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ats simulator: stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    cli = argparse.ArgumentParser(prog="python -m simulator.cli")
    sub = cli.add_subparsers(dest="command", required=True)
    add_parser(sub)
    parsed = cli.parse_args(["simulator", *sys.argv[1:]])
    sys.exit(main(parsed))
