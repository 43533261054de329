"""The package's floors, read from its whole source: imports go down only, no cycle, no private reach.

Floors, lowest first (docs/layout.md):

0. ``errors``
1. ``engine``, ``data``, ``models`` and the render primitives (``viz.render``, ``viz.colorbar``,
   ``viz.images``, ``viz.modelio``, ``viz.bundle``; the ``viz`` package itself only exports lazily)
2. ``analysis``
3. figures, reports and views (every other ``viz`` module, ``views``)
4. ``widget``, ``classroom``, ``cli`` (and ``saliency_widget.mine``, the torchrun entry of ``cli``)

Every ``import`` statement counts, also inside functions (a lazy import still runs, and still
ties the two modules together). Two kinds are not edges: imports under ``if TYPE_CHECKING:``
(never run) and imports inside a module's PEP 562 ``__getattr__`` (lazy exports of a package: they
count for the floors, not for cycles). Importing ``a.b.c`` also runs the packages ``a.b`` above it,
so those are edges too, except the importer's own packages (already running) and the root.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "saliency_widget"
ROOT = "saliency_widget"
JUPYTER = ("ipywidgets", "bqplot", "anywidget", "IPython", "traitlets", "jupyterlab", "notebook", "voila", "nbformat", "nbclient")

FLOORS: dict[str, int] = {
    "saliency_widget.errors": 0,
    "saliency_widget": 1,  # the root re-exports the engine; ``explore`` is a lazy export
    "saliency_widget.engine": 1,
    "saliency_widget.data": 1,
    "saliency_widget.models": 1,
    "saliency_widget.featviz": 1,  # feature visualization's engine: errors + engine only
    "saliency_widget.objectives": 1,  # re-exports saliency_widget.featviz.objectives
    "saliency_widget.viz": 1,  # the package: lazy exports only
    "saliency_widget.viz.render": 1,
    "saliency_widget.viz.colorbar": 1,
    "saliency_widget.viz.images": 1,
    "saliency_widget.viz.modelio": 1,
    "saliency_widget.viz.bundle": 1,
    "saliency_widget.analysis": 2,
    "saliency_widget.viz.": 3,  # every other viz module: figures and reports
    "saliency_widget.views": 3,
    "saliency_widget.atlas": 3,  # the atlas site: pages, histograms, its build (analysis + featviz below it)
    "saliency_widget.widget": 4,
    "saliency_widget.classroom": 4,
    "saliency_widget.cli": 4,
    "saliency_widget.mine": 4,
}
FLOOR_NAMES = ("errors", "engine/data/models/render primitives", "analysis", "figures/reports/views", "widget/classroom/cli")


def module_name(path: Path) -> str:
    """``saliency_widget/viz/render.py`` -> ``saliency_widget.viz.render`` (a package is its ``__init__``)."""
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def floor(module: str) -> int:
    """The floor of ``module``: its own entry of :data:`FLOORS`, else the longest package entry above it."""
    if module in FLOORS:
        return FLOORS[module]
    keys = [k for k in FLOORS if k != ROOT and (module.startswith(k) if k.endswith(".") else module.startswith(k + "."))]
    if not keys:
        raise AssertionError(f"{module} is on no floor: add it to FLOORS")
    return FLOORS[max(keys, key=len)]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@dataclass
class Imports:
    """What one module imports, read from its whole AST."""

    edges: set[str] = field(default_factory=set)  # run when the module (or one of its functions) runs
    lazy: set[str] = field(default_factory=set)  # inside a PEP 562 ``__getattr__``: floors only
    private: list[str] = field(default_factory=list)  # "module._name" reached from another module
    external: set[str] = field(default_factory=set)  # top-level names of third-party packages


def _resolve(me: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = me.split(".") if is_package else me.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _with_packages(me: str, target: str) -> set[str]:
    """``target`` and the packages above it that importing it runs (not the root, not the importer's own)."""
    out = {target}
    parts = target.split(".")
    for i in range(2, len(parts)):
        pkg = ".".join(parts[:i])
        if not (me == pkg or me.startswith(pkg + ".")):
            out.add(pkg)
    return out


def read_imports(name: str) -> Imports:
    """The imports of module ``name`` (see the module docstring for what counts)."""
    path = MODULES[name]
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = Imports()
    bound: dict[str, str] = {}  # local name -> package module it is bound to

    def add(target: str, lazy: bool) -> None:
        if target.split(".")[0] != ROOT:
            found.external.add(target.split(".")[0])
            return
        for m in _with_packages(name, target):
            if m in MODULES and m != name:
                (found.lazy if lazy else found.edges).add(m)

    def visit(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, lazy)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "__getattr__" and node in tree.body:
            lazy = True
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, lazy)
                if alias.asname and alias.name in MODULES:
                    bound[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(name, is_package, node)
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                if sub in MODULES:  # ``from pkg import submodule``
                    add(sub, lazy)
                    bound[alias.asname or alias.name] = sub
                else:
                    add(mod, lazy)
                    if alias.name.startswith("_") and not alias.name.startswith("__") and mod in MODULES and mod != name:
                        found.private.append(f"{mod}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child, lazy)

    visit(tree, False)
    # ``mod._name`` through a name bound to another package module
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                and node.attr.startswith("_") and not node.attr.startswith("__")
                and f"{bound[node.value.id]}.{node.attr}" not in MODULES and bound[node.value.id] != name):
            found.private.append(f"{bound[node.value.id]}.{node.attr}")
    return found


IMPORTS = {name: read_imports(name) for name in MODULES}
GRAPH = {name: imp.edges for name, imp in IMPORTS.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per back edge of a depth-first walk (empty when the graph is acyclic)."""
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return cycles


def floor_violations() -> list[str]:
    """Every import that goes up a floor, as ``importer (floor) -> imported (floor)``."""
    bad = []
    for name, imp in sorted(IMPORTS.items()):
        for m in sorted(imp.edges | imp.lazy):
            if floor(m) > floor(name) and not (name == ROOT and m in IMPORTS[ROOT].lazy):
                bad.append(f"{name} ({FLOOR_NAMES[floor(name)]}) -> {m} ({FLOOR_NAMES[floor(m)]})")
    return bad


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_attribute_reaches(modules: dict[str, Path]) -> list[str]:
    """``obj._x`` outside ``self``/``cls`` where ``_x`` is a private attribute only other modules' classes set.

    An object's private state is its class's business: another module reading or writing it
    (``explorer._model`` from the analyses panel) is a private reach like an imported ``_name``.
    Third-party privates (``module._forward_hooks``) are not ours and not counted.
    """
    trees = {n: ast.parse(p.read_text(encoding="utf-8")) for n, p in modules.items()}
    owned = {n: {node.attr for node in ast.walk(t) if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                 and node.value.id in ("self", "cls") and _private(node.attr)} for n, t in trees.items()}
    out = []
    for n, t in trees.items():
        for node in ast.walk(t):
            if (isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in owned[n]
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                owners = sorted(m for m, attrs in owned.items() if node.attr in attrs and m != n)
                if owners:
                    out.append(f"{n}:{node.lineno} {ast.unparse(node)} (private to {', '.join(owners)})")
    return out


def test_every_module_is_on_a_floor() -> None:
    assert {n: floor(n) for n in MODULES}  # floor() raises for a module on no floor


def test_no_import_cycle() -> None:
    assert find_cycles(GRAPH) == []


def test_imports_go_down_the_floors_only() -> None:
    assert floor_violations() == []


def test_no_private_name_crosses_modules() -> None:
    reaches = {n: imp.private for n, imp in IMPORTS.items() if imp.private}
    assert reaches == {}


def test_no_private_attribute_crosses_modules() -> None:
    assert private_attribute_reaches(MODULES) == []


@pytest.mark.parametrize("prefix", sorted({k.rstrip(".") for k, v in FLOORS.items() if v <= 3}))
def test_pure_floors_import_no_jupyter(prefix: str) -> None:
    # pure code (engine, data, rendering, analysis, reports, figures, views) works without the notebook stack
    bad = {n: sorted(imp.external & set(JUPYTER)) for n, imp in IMPORTS.items()
           if (n == prefix or n.startswith(prefix + ".")) and floor(n) <= 3}
    assert {n: v for n, v in bad.items() if v} == {}


# ---------------------------------------------------------------- the reader itself


def test_the_graph_sees_known_edges() -> None:
    # guards the reader: if it read nothing, the tests above would pass vacuously
    assert "saliency_widget.engine.session" in GRAPH["saliency_widget.engine.api"]
    assert "saliency_widget.errors" in GRAPH["saliency_widget.viz.render"]
    assert "saliency_widget.cli.toolbox" in GRAPH["saliency_widget.cli.mine"]
    assert "saliency_widget.analysis.mining" in GRAPH["saliency_widget.cli.mine"]  # a function-local import counts


def _read_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, others: tuple[str, ...] = ()) -> Imports:
    pkg = tmp_path / "saliency_widget"
    (pkg / "sub").mkdir(parents=True)
    for f in ("__init__.py", "errors.py", "sub/__init__.py", "sub/low.py", *others):
        (pkg / f).parent.mkdir(parents=True, exist_ok=True)
        (pkg / f).write_text("")
    (pkg / "sub" / "me.py").write_text(source)
    here = sys.modules[__name__]
    monkeypatch.setattr(here, "PKG", pkg)
    monkeypatch.setattr(here, "MODULES", {module_name(p): p for p in pkg.rglob("*.py")})
    return read_imports("saliency_widget.sub.me")


@pytest.mark.parametrize(
    ("source", "edges", "lazy"),
    [
        ("from . import low\n", {"saliency_widget.sub.low"}, set()),
        ("def f():\n    from ..errors import InputError\n", {"saliency_widget.errors"}, set()),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .low import X\n", set(), set()),
        ("def __getattr__(name):\n    from .low import X\n    return X\n", set(), {"saliency_widget.sub.low"}),
        ("import saliency_widget.sub.low as low\n", {"saliency_widget.sub.low"}, set()),
    ],
    ids=["from-package", "function-local", "type-checking", "pep562-getattr", "import-as"],
)
def test_reader_edges(source: str, edges: set[str], lazy: set[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = _read_source(tmp_path, monkeypatch, source)
    assert (got.edges, got.lazy) == (edges, lazy)


def test_reader_sees_a_package_above_the_imported_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = _read_source(tmp_path, monkeypatch, "from ..other.deep import thing\n", others=("other/__init__.py", "other/deep.py"))
    assert got.edges == {"saliency_widget.other", "saliency_widget.other.deep"}


@pytest.mark.parametrize(
    ("source", "private"),
    [
        ("from .low import _helper\n", ["saliency_widget.sub.low._helper"]),
        ("def f():\n    from .low import _helper\n", ["saliency_widget.sub.low._helper"]),
        ("from . import low\nx = low._helper\n", ["saliency_widget.sub.low._helper"]),
        ("from .low import helper, __version__\n", []),
        ("_mine = 1\nx = _mine\n", []),
    ],
    ids=["from-import", "function-local", "attribute", "public-and-dunder", "own-private"],
)
def test_reader_private_reaches(source: str, private: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _read_source(tmp_path, monkeypatch, source).private == private


def test_reader_private_attribute_reaches(tmp_path: Path) -> None:
    (tmp_path / "owner.py").write_text("class A:\n    def __init__(self):\n        self._state = 1\n        self._mine = 2\n")
    (tmp_path / "other.py").write_text("def f(a):\n    a._state = 3\n    return a.public, a._mine, t._forward_hooks\n")
    (tmp_path / "self.py").write_text("class B:\n    def __init__(self):\n        self._mine = 1\n    def g(self, o):\n        return o._mine\n")
    got = private_attribute_reaches({"owner": tmp_path / "owner.py", "other": tmp_path / "other.py", "self": tmp_path / "self.py"})
    assert got == ["other:2 a._state (private to owner)", "other:3 a._mine (private to owner, self)"]


def test_floors_are_ordered() -> None:
    assert floor("saliency_widget.errors") < floor("saliency_widget.engine.session") == floor("saliency_widget.data.folders")
    assert floor("saliency_widget.viz.render") == floor("saliency_widget.models.loading") < floor("saliency_widget.analysis.topk")
    assert floor("saliency_widget.analysis.topk") < floor("saliency_widget.viz.report") == floor("saliency_widget.views")
    assert floor("saliency_widget.viz.report") < floor("saliency_widget.widget.explorer") == floor("saliency_widget.cli.toolbox")
