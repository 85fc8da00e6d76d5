"""The engine's import graph, read with `ast` (imports inside functions count too): no module takes a
private name (`_x`) from another package, no import cycle, and no module outside `wmstudio/gui/`
imports Qt (PySide6, PyQt, shiboken6, pyqtgraph)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wmstudio"
QT = {"PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph"}


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


def test_no_import_cycle() -> None:
    cycles = _cycles(_graph()[0])
    assert cycles == [], f"import cycles: {cycles}"


def _top_level_imports(source: str) -> set[str]:
    """The top-level packages a module imports, at module level or inside functions (absolute imports only)."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_no_engine_module_imports_qt() -> None:
    engine = {m: p for m, p in _modules().items() if m != "wmstudio.gui" and not m.startswith("wmstudio.gui.")}
    assert len(engine) > 100  # the engine is there to be read
    offenders = {m: sorted(_top_level_imports(p.read_text()) & QT) for m, p in engine.items()}
    assert {m: q for m, q in offenders.items() if q} == {}


def test_the_qt_finder_finds_qt_inside_a_function() -> None:
    source = "import torch\n\ndef show():\n    from PySide6.QtWidgets import QLabel\n    import pyqtgraph as pg\n"
    assert _top_level_imports(source) & QT == {"PySide6", "pyqtgraph"}


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [{"a", "b"}]
