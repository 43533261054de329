"""The package's layering, read from its source: engine -> nothing above it, viz -> no Jupyter, no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "saliency_widget"
JUPYTER = ("ipywidgets", "bqplot", "anywidget", "IPython", "traitlets")


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (lazy imports inside functions are not edges of the load graph)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            # ``from . import render`` imports the submodule ``render``
            out.update(f"{mod}.{alias.name}" for alias in node.names)
    return out


MODULES = {_module_name(p): p for p in PKG.rglob("*.py")}
GRAPH = {name: {m for m in _top_level_imports(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def _imports_of(prefix: str) -> dict[str, set[str]]:
    return {n: _top_level_imports(p) for n, p in MODULES.items() if n == prefix or n.startswith(prefix + ".")}


def test_engine_imports_nothing_above_it() -> None:
    bad = {n: sorted(m for m in imps if m.startswith(("saliency_widget.viz", "saliency_widget.widget", "saliency_widget.analysis", "saliency_widget.classroom")) or m.split(".")[0] in JUPYTER)
           for n, imps in _imports_of("saliency_widget.engine").items()}
    assert {n: v for n, v in bad.items() if v} == {}


@pytest.mark.parametrize("layer", ["saliency_widget.viz", "saliency_widget.cli", "saliency_widget.data", "saliency_widget.models", "saliency_widget.analysis"])
def test_pure_layers_import_no_jupyter_and_no_widget(layer: str) -> None:
    bad = {n: sorted(m for m in imps if m.startswith("saliency_widget.widget") or m.split(".")[0] in JUPYTER)
           for n, imps in _imports_of(layer).items()}
    assert {n: v for n, v in bad.items() if v} == {}


def test_no_import_cycle_between_modules() -> None:
    # A cycle through a package's __init__ is a cycle too (importing the package runs it).
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(GRAPH[n]):
            # a module importing its own package's submodule through the package is fine when the
            # package __init__ is the importer's parent: only count edges that come back to ``n``
            if state.get(m) == 1 and not n.startswith(m + "."):
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)
    assert cycles == []


def test_the_graph_sees_known_edges() -> None:
    # guards the parser above: if it read nothing, the layering tests would pass vacuously
    assert "saliency_widget.engine.session" in GRAPH["saliency_widget.engine.api"]
    assert "saliency_widget.viz.render" in GRAPH["saliency_widget.views.pipeline"]
    assert "saliency_widget.errors" in GRAPH["saliency_widget.viz.images"]
