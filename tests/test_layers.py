"""The layers of the code (docs/ARCHITECTURE.md), read from the imports of every module, and no import cycle.

Every ``import`` counts, at module level or inside a function, ``TYPE_CHECKING`` ones included: a layer that
needs another one only lazily still depends on it.
"""

import ast
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
PACKAGES = ("catalog", "factors", "strategies", "nodes", "simulator", "benchmarks", "tests")

# What each package may NOT import (by top-level package), and the modules allowed despite that.
FORBIDDEN: dict[str, set[str]] = {
    # the factor model: fed with Nautilus data, knows nothing of trading, nodes or files
    "factors": {"strategies", "nodes", "catalog", "simulator", "benchmarks", "tests"},
    # the strategy: Nautilus and the factors only (venues, ids and bar types come from its config and Nautilus)
    "strategies": {"nodes", "catalog", "simulator", "benchmarks", "tests"},
    # data tooling: no trading code; it stores the market inputs the factors read, so it shares their types
    "catalog": {"strategies", "nodes", "simulator", "benchmarks", "tests", "factors"},
    # the exchange simulator: Binance's side of the wire, no trading code
    "simulator": {"strategies", "factors", "nodes", "benchmarks", "tests"},
    # the assembly: anything but the tests and benchmarks
    "nodes": {"benchmarks", "tests"},
}
ALLOWED = {"catalog": {"factors.inputs"}}


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((PROJECT / package).rglob("*.py")):
            parts = path.relative_to(PROJECT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports; ``from pkg import module`` counts as the submodule, not as the
    package (whose ``__init__`` Python runs first for any submodule, cycle or not)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            submodules = {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known}
            found |= submodules
            if len(submodules) < len(node.names):  # names defined by the module itself, not submodules of it
                found.add(base)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) & set(mods) - {name} for name, path in mods.items()}


def test_every_package_keeps_to_its_layer() -> None:
    broken = []
    for name, path in modules().items():
        layer = name.split(".")[0]
        for target in sorted(imports(name, path, set(modules()))):
            if target.split(".")[0] in FORBIDDEN.get(layer, set()) and target not in ALLOWED.get(layer, set()):
                broken.append(f"{name} imports {target}")
    assert broken == [], "\n".join(broken)


def test_no_import_cycle() -> None:
    edges = graph()
    # Tarjan's strongly connected components: any component of more than one module is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert cycles == [], cycles


def test_the_reader_sees_every_kind_of_import(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "import catalog.files\n"
        "from simulator import errors\n"
        "from .exits import side_sign\n"
        "if TYPE_CHECKING:\n    from nodes.settings import ConfigError\n"
        "def later():\n    from benchmarks.table import Row\n"
    )
    known = set(modules())
    found = imports("strategies.probe", module, known)
    assert found == {"catalog.files", "simulator.errors", "strategies.exits", "nodes.settings", "benchmarks.table"}
