"""The packages' import graph has no cycle.

A circle between modules works only as long as the import order happens to suit it, and a lazy import
inside a function is how one usually hides; so every ``import`` statement counts, wherever it stands
(function bodies included), except under ``if TYPE_CHECKING:``, which never runs.
"""

from __future__ import annotations

import ast
import graphlib
import random
from collections.abc import Iterable, Mapping
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("distill_core", "envs", "agents")


# ---------------------------------------------------------------------- building the graph
def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``, dotted name → file (a package is its ``__init__.py``).

    :param root: the folder holding the packages.
    :param packages: top-level package names.
    """
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    """Whether an ``if`` condition is ``TYPE_CHECKING`` / ``typing.TYPE_CHECKING`` (its body never runs)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement in ``tree``, at any depth, skipping the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)  # the else branch does run
            continue
        stack.extend(ast.iter_child_nodes(node))


def imports_of(module: str, path: Path, known: Mapping[str, Path] | set[str]) -> set[str]:
    """The modules among ``known`` that ``module`` (source at ``path``) imports.

    ``import a.b`` imports ``a.b``; ``from a import b`` imports the submodule ``a.b`` when there is one,
    else ``a`` (``b`` is then a name defined in ``a``). Relative imports resolve against ``module``'s
    package. Implicit imports of parent packages are not edges: every submodule would otherwise form a
    circle with a package ``__init__`` that re-exports it.

    :param module: the importing module's dotted name.
    :param path: its source file.
    :param known: the modules that are nodes of the graph; imports of anything else are dropped.
    """
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        if node.level:
            base_parts = package.split(".")
            if node.level - 1 >= len(base_parts):
                raise ValueError(f"{module}: relative import beyond the top-level package")
            base = ".".join(base_parts[:len(base_parts) - (node.level - 1)])
            base = f"{base}.{node.module}" if node.module else base
        else:
            base = node.module or ""
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            found.add(sub if alias.name != "*" and sub in known else base)
    found.discard(module)  # `from . import x` in a package naming one of its own attributes
    return {name for name in found if name in known}


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, set[str]]:
    """Module → the modules of ``packages`` it imports, for every module under ``root``."""
    modules = module_files(root, packages)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


# ---------------------------------------------------------------------- finding cycles
def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of ``graph`` (node → successors), each sorted.

    Iterative, so a long import chain cannot hit the recursion limit.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    nodes = set(graph) | {m for succ in graph.values() for m in succ}
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.get(succ, ())))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:  # every successor done: close the node
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def _cycle_through(start: str, members: set[str], graph: Mapping[str, Iterable[str]]) -> list[str]:
    """A shortest cycle ``[start, …, start]`` inside ``members`` (breadth-first back to ``start``)."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph.get(node, ())):
                if succ not in members:
                    continue
                if succ == start:  # back home: walk the parents from node to start
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if succ not in parents:
                    parents[succ] = node
                    following.append(succ)
        frontier = following
    raise ValueError(f"{start} is on no cycle inside {sorted(members)}")


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle ``[a, b, …, a]`` per strongly connected component with a cycle (a self-import included);
    empty when ``graph`` is acyclic."""
    cycles = []
    for component in strongly_connected(graph):
        head = component[0]
        if len(component) > 1 or head in graph.get(head, ()):
            cycles.append(_cycle_through(head, set(component), graph))
    return sorted(cycles)  # Tarjan's order depends on where the walk starts


# ---------------------------------------------------------------------- the checker checks itself
def test_find_cycles_on_synthetic_graphs():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) == []
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"a"}}) == [["a", "a"]]
    assert find_cycles({"a": {"b"}, "b": {"a"}, "x": {"y"}, "y": {"z"}, "z": {"x"}}) == [["a", "b", "a"],
                                                                                        ["x", "y", "z", "x"]]
    # the shortest way back: a → c → a, not a → b → c → a
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}, "c": {"a"}}) == [["a", "c", "a"]]


def test_find_cycles_agrees_with_graphlib_on_random_graphs():
    rng = random.Random(0)
    for _ in range(300):
        nodes = [f"m{i}" for i in range(rng.randint(1, 8))]
        graph = {n: {m for m in nodes if rng.random() < 0.2} for n in nodes}
        try:
            graphlib.TopologicalSorter(graph).prepare()
            cyclic = False
        except graphlib.CycleError:
            cyclic = True
        cycles = find_cycles(graph)
        assert bool(cycles) == cyclic, graph
        for cycle in cycles:  # each one a real closed walk of the graph
            assert cycle[0] == cycle[-1] and all(b in graph[a] for a, b in zip(cycle, cycle[1:])), (graph, cycle)


def test_import_resolution_on_a_synthetic_tree(tmp_path):
    files = {
        "pkg/__init__.py": "from pkg.sub import helper\nVALUE = 1\n",
        "pkg/sub.py": "def helper():\n    from pkg import VALUE  # lazy: still an edge\n    return VALUE\n",
        "pkg/inner/__init__.py": "from . import leaf\n",
        "pkg/inner/leaf.py": "from ..sub import helper\nfrom .. import other\nimport pkg.inner\n",
        "pkg/other.py": ("from typing import TYPE_CHECKING\nimport os\n"
                         "if TYPE_CHECKING:\n    from pkg.inner import leaf\nelse:\n    from pkg import inner\n"),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert import_graph(tmp_path, ["pkg"]) == {
        "pkg": {"pkg.sub"},
        "pkg.sub": {"pkg"},  # VALUE is defined in pkg/__init__.py
        "pkg.inner": {"pkg.inner.leaf"},
        "pkg.inner.leaf": {"pkg.sub", "pkg.other", "pkg.inner"},
        "pkg.other": {"pkg.inner"},  # not pkg.inner.leaf: TYPE_CHECKING never runs
    }
    assert find_cycles(import_graph(tmp_path, ["pkg"])) == [["pkg", "pkg.sub", "pkg"],
                                                            ["pkg.inner", "pkg.inner.leaf", "pkg.inner"]]


# ---------------------------------------------------------------------- the real tree
def test_the_packages_import_no_cycle():
    graph = import_graph(ROOT, PACKAGES)
    # guards against a walk that finds nothing and so passes for free
    assert {name.partition(".")[0] for name in graph} == set(PACKAGES)
    assert "distill_core.condense.base" in graph["distill_core.condense.dd"]
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join("  " + " -> ".join(c) for c in cycles)
