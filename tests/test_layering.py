"""Core's packages form floors: a module imports only from its own package, its floor or the
floors below, and the packages' import graph has no cycle. Every import counts, including
those inside functions (a lazy import still runs upward). docs/architecture.md draws the map."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "core" / "sglang"

# Bottom first. A top-level module (server_args.py) is a package of its own; "sglang" is
# core/sglang/__init__.py.
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("settings", ("version", "server_args")),
    (
        "specs and leaves",
        ("ops", "mem", "model_loader", "sampling", "constrained", "parsers", "benchmark"),
    ),
    ("backend contract", ("backend", "cache", "forward_batch", "parallel")),
    ("layers", ("layers",)),
    ("model runner", ("model_executor",)),
    ("scheduler", ("scheduler", "conformance")),
    ("engine", ("engine",)),
    ("frontends", ("server", "lang")),
    (
        "entry points",
        (
            "cli",
            "launch_server",
            "bench_one_batch",
            "bench_offline_throughput",
            "bench_serving",
            "sglang",
        ),
    ),
]
FLOOR_OF = {pkg: i for i, (_, pkgs) in enumerate(FLOORS) for pkg in pkgs}


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "sglang"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every sglang import in the file, relative ones resolved."""
    here = module_name(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return [(line, m) for line, m in found if m == "sglang" or m.startswith("sglang.")]


def package_imports() -> dict[tuple[str, str], list[str]]:
    """{(importing package, imported package): ["file:line -> module", ...]}"""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(CORE.rglob("*.py")):
        source = package_of(module_name(path))
        for line, target in imported_modules(path):
            dest = package_of(target)
            if dest != source:
                where = f"{path.relative_to(CORE.parent)}:{line} -> {target}"
                edges.setdefault((source, dest), []).append(where)
    return edges


def test_every_package_has_a_floor():
    packages = {package_of(module_name(p)) for p in CORE.rglob("*.py")}
    missing = sorted(packages - set(FLOOR_OF))
    assert not missing, f"add these packages to a floor in {__file__}: {missing}"


def test_no_import_runs_upward():
    upward = [
        f"{where} ({src}: {FLOORS[FLOOR_OF[src]][0]}, {dst}: {FLOORS[FLOOR_OF[dst]][0]})"
        for (src, dst), places in package_imports().items()
        if src in FLOOR_OF and dst in FLOOR_OF and FLOOR_OF[dst] > FLOOR_OF[src]
        for where in places
    ]
    assert not upward, "imports that run up a floor:\n" + "\n".join(upward)


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for src, dst in package_imports():
        graph.setdefault(src, set()).add(dst)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            edges = package_imports()
            detail = [edges[(a, b)][0] for a, b in zip(cycle, cycle[1:])]
            pytest.fail("package cycle " + " -> ".join(cycle) + ":\n" + "\n".join(detail))


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The checker itself: a layers module importing the scheduler is caught."""
    fake = tmp_path / "sglang"
    (fake / "layers").mkdir(parents=True)
    (fake / "scheduler").mkdir()
    (fake / "layers" / "x.py").write_text("def f():\n    from sglang.scheduler import req\n")
    (fake / "scheduler" / "req.py").write_text("from ..layers import x\n")
    monkeypatch.setattr(sys.modules[__name__], "CORE", fake)
    edges = package_imports()
    assert edges[("layers", "scheduler")] == ["sglang/layers/x.py:2 -> sglang.scheduler"]
    assert edges[("scheduler", "layers")] == ["sglang/scheduler/req.py:1 -> sglang.layers"]
    with pytest.raises(AssertionError, match="run up a floor"):
        test_no_import_runs_upward()
    with pytest.raises(pytest.fail.Exception, match="package cycle"):
        test_no_cycle_between_packages()


MAX_CORE_FILE_LINES = 400  # the developers' guide: a module one can read in one sitting


def test_core_files_stay_small():
    long = {
        str(p.relative_to(CORE.parent)): n
        for p in CORE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_CORE_FILE_LINES
    }
    assert not long, f"core files over {MAX_CORE_FILE_LINES} lines (split them): {long}"
