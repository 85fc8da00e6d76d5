"""The engine's import graph, read with `ast` (imports inside functions count too): no module takes a
private name (`_x`) from another package, and no import cycle beyond the ones still being removed."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wmstudio"
# Cycles that existed when this test was written (issue 25 removes them); a new one fails the test.
KNOWN_CYCLES = [
    {"wmstudio.export_model", "wmstudio.export_schema", "wmstudio.models.checkpoint", "wmstudio.models"},
    {"wmstudio.landscape.distributed", "wmstudio.landscape.compute"},
]


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _graph() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    private = []
    for m, p in mods.items():
        package = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import):
                graph[m] |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("wmstudio"):
                    continue
                for a in node.names:
                    if f"{target}.{a.name}" in mods:
                        graph[m].add(f"{target}.{a.name}")
                    elif target in mods:
                        graph[m].add(target)
                        if a.name.startswith("_") and target.rsplit(".", 1)[0] != package and target != package:
                            private.append((m, target, a.name))
    return graph, private


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_another_packages_private_names() -> None:
    assert _graph()[1] == []


def test_no_new_import_cycle() -> None:
    new = [c for c in _cycles(_graph()[0]) if not any(c <= known for known in KNOWN_CYCLES)]
    assert new == [], f"new import cycles: {new}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [{"a", "b"}]
