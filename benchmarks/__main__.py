"""Print the project's speed table: ``uv run python -m benchmarks [NAME ...]``.

Each ``benchmarks/bench_*.py`` module exposes ``rows(quick: bool) -> list[Row]``; this command runs them (all,
or those named on the command line, e.g. ``backtest`` or ``live-load``) and prints one table. ``--quick`` runs
smaller workloads. A module with options of its own (e.g. ``chaos --seed 7 --minutes 60``) defines
``add_options(parser)`` and takes them as ``rows(quick, options)``.
"""

import argparse
import importlib
import pkgutil
import sys
import time

import benchmarks
from benchmarks.table import Row, format_table


def discover() -> list[str]:
    return sorted(
        m.name.removeprefix("bench_").replace("_", "-")
        for m in pkgutil.iter_modules(benchmarks.__path__)
        if m.name.startswith("bench_")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(discover())}")
    parser.add_argument("--quick", action="store_true", help="smaller workloads, for a fast look")
    known, _ = parser.parse_known_args(argv)
    names = [n.replace("_", "-") for n in known.names] or discover()
    unknown = sorted(set(names) - set(discover()))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(discover())}")
    modules = {name: importlib.import_module(f"benchmarks.bench_{name.replace('-', '_')}") for name in names}
    for module in modules.values():
        if hasattr(module, "add_options"):
            module.add_options(parser)
    args = parser.parse_args(argv)
    all_rows: list[Row] = []
    for name, module in modules.items():
        started = time.perf_counter()
        if hasattr(module, "add_options"):
            rows = module.rows(args.quick, args)
        else:
            rows = module.rows(quick=args.quick)
        print(f"[{name}: {time.perf_counter() - started:.1f} s]", file=sys.stderr, flush=True)
        all_rows.extend(rows)
        print(format_table(rows), flush=True)
        print(flush=True)
    print("== all benchmarks ==")
    print(format_table(all_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
