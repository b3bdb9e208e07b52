"""Layering rules, checked on the import graph of src/bgjobs (parsed, never imported).

Every import counts: module level, inside functions, and under ``if TYPE_CHECKING:``, because a
cycle hidden in any of them is still two modules that cannot be understood apart.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import bgjobs

SRC = Path(bgjobs.__file__).resolve().parent
CONCRETE_STORES = ("bgjobs.adapters.sqlite", "bgjobs.adapters.postgres")
# bgjobs.sqlite() and bgjobs.postgres(), the public factories, construct the concrete stores.
ALLOWED_STORE_IMPORTS = {
    ("bgjobs", "bgjobs.adapters.sqlite"),
    ("bgjobs", "bgjobs.adapters.postgres"),
}
CLOCK_MODULE = "bgjobs.runtime.clock"


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: set[str] = field(default_factory=set)  # every module name an import statement names
    tree: ast.Module | None = None


def load_modules() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = ["bgjobs", *path.relative_to(SRC).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        modules[name] = Module(name, path, is_package, tree=ast.parse(path.read_text(), str(path)))
    for module in modules.values():
        assert module.tree is not None
        module.imports = imported_names(module, module.tree, modules)
    return modules


def imported_names(module: Module, tree: ast.Module, modules: dict[str, Module]) -> set[str]:
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):  # walks into functions and TYPE_CHECKING blocks too
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                names.add(submodule if submodule in modules else base)
    return names


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Module -> the bgjobs modules it imports (a name resolves to its nearest module)."""
    graph: dict[str, set[str]] = {}
    for module in modules.values():
        targets = set()
        for name in module.imports:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module.name:
                targets.add(name)
        graph[module.name] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module."""
    cycles = []
    for component in strongly_connected(graph):
        if len(component) > 1:
            cycles.append(cycle_within(graph, component))
    return cycles


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def cycle_within(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    return [*paths[node], start]
                if child not in paths:
                    paths[child] = [*paths[node], child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def test_the_checker_finds_a_cycle_and_prints_it() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]


def test_the_parser_sees_function_and_type_checking_imports() -> None:
    app = load_modules()["bgjobs"]  # its factories import the stores inside functions
    assert {"bgjobs.adapters.sqlite", "bgjobs.adapters.postgres"} <= app.imports
    builder = load_modules()["bgjobs.builder"]
    assert "bgjobs.schedules" in builder.imports  # under `if TYPE_CHECKING:`


def test_no_import_cycles() -> None:
    cycles = find_cycles(import_graph(load_modules()))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_only_the_adapters_and_the_public_factories_import_a_concrete_store() -> None:
    offenders = [
        f"{module.name} imports {name}"
        for module in load_modules().values()
        if not module.name.startswith("bgjobs.adapters")
        for name in sorted(module.imports)
        if name.startswith(CONCRETE_STORES) and (module.name, name) not in ALLOWED_STORE_IMPORTS
    ]
    assert not offenders, "talk to storage through the Store protocol:\n" + "\n".join(offenders)


def test_the_runtime_takes_time_only_from_its_clock() -> None:
    offenders = []
    for module in load_modules().values():
        if not module.name.startswith("bgjobs.runtime") or module.name == CLOCK_MODULE:
            continue
        assert module.tree is not None
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and "time" in module_names(node):
                offenders.append(f"{module.name}:{node.lineno} imports time")
            if (
                isinstance(node, ast.Attribute)
                and node.attr in {"now", "utcnow", "today"}
                and isinstance(node.value, ast.Name)
                and node.value.id in {"datetime", "date"}
            ):
                offenders.append(f"{module.name}:{node.lineno} reads {node.value.id}.{node.attr}")
    assert not offenders, f"use {CLOCK_MODULE}.Clock:\n" + "\n".join(offenders)


def module_names(node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    return {node.module or ""}
