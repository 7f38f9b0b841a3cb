"""The import graph of ``spiraljax/`` runs one way: no circle, imports inside functions
included (a static walk of every ``import`` statement), and planning a Rank-K launch
loads no tuning or timing module."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "spiraljax"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def import_graph() -> dict[str, set[str]]:
    """Module → the spiraljax modules its ``import`` statements name (anywhere in it).

    ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to
    ``pkg`` (its ``__init__``); ``import a.b`` is an edge to ``a.b``. Parent packages that
    Python runs first are not counted: they are not what the statement asks for.
    """
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in mods)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    if sub in mods:
                        edges.add(sub)
                    elif target in mods:
                        edges.add(target)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    cycles = find_cycles(import_graph())
    assert cycles == [], f"import circles under spiraljax/: {cycles}"


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


#: Import floors (STYLE.md): a package may import its own modules and packages on lower
#: floors; floor-1 packages import nothing else from spiraljax. The package root
#: (``spiraljax/__init__.py``, a lazy namespace) and ``__main__`` are outside the floors.
FLOORS = {
    "geometry": 1,
    "spiralk": 1,
    "topos": 2,
    "zspace": 2,
    "kernels": 2,
    "optim": 3,
    "implicit": 3,
    "distributed": 3,
    "nn": 3,
    "interop": 4,
    "embedding": 4,
    "data": 4,
    "cli": 4,
}
OUTSIDE_FLOORS = {"spiraljax", "spiraljax.__main__"}


def _package(module: str) -> str:
    return module.split(".")[1]


def floor_violations(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for every import that goes up a floor (or sideways from floor 1)."""
    bad = []
    for a, targets in graph.items():
        if a in OUTSIDE_FLOORS:
            continue
        pa = _package(a)
        for b in sorted(targets - OUTSIDE_FLOORS):
            pb = _package(b)
            if pa == pb:
                continue
            fa, fb = FLOORS[pa], FLOORS[pb]
            if fb > fa or (fb == fa and fa == 1):
                bad.append(f"{a} (floor {fa}) -> {b} (floor {fb})")
    return bad


def test_every_package_has_a_floor():
    packages = {_package(m) for m in _modules() if m not in OUTSIDE_FLOORS}
    assert packages <= set(FLOORS), f"packages without a floor: {sorted(packages - set(FLOORS))}"


def test_imports_run_down_the_floors():
    assert floor_violations(import_graph()) == []


def test_floor_check_finds_a_planted_violation():
    graph = {"spiraljax.geometry.x": {"spiraljax.nn.hgcn"}, "spiraljax.nn.hgcn": set()}
    assert floor_violations(graph) == [
        "spiraljax.geometry.x (floor 1) -> spiraljax.nn.hgcn (floor 3)"
    ]
    graph = {"spiraljax.geometry.x": {"spiraljax.spiralk.parser"}}
    assert len(floor_violations(graph)) == 1
    assert floor_violations({"spiraljax.embedding.x": {"spiraljax.nn.hgcn"}}) == []


def test_nn_imports_only_geometry():
    graph = import_graph()
    used = {_package(b) for a, t in graph.items() if a.startswith("spiraljax.nn") for b in t}
    assert used <= {"nn", "geometry"}, used


def test_graph_sees_function_local_imports():
    graph = import_graph()
    # dispatch.py imports the Pallas kernels only inside a function (lazily).
    assert "spiraljax.kernels.pallas.radix" in graph["spiraljax.kernels.dispatch"]


def test_planning_loads_no_tuning_or_timing_module(tmp_path):
    code = textwrap.dedent(
        """
        import sys
        from spiraljax.kernels import DeviceCaps, plan_rank
        plan = plan_rank("top", 64, 65536, 16, DeviceCaps.cuda())
        assert plan.choice is not None
        measuring = ("spiraljax.kernels.tuner", "spiraljax.kernels.timing")
        bad = [m for m in sys.modules if m in measuring]
        print("LOADED", bad)
        """
    )
    env = {
        "PYTHONPATH": str(PACKAGE.parent),
        "JAX_PLATFORMS": "cpu",
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert "LOADED []" in res.stdout, res.stdout
