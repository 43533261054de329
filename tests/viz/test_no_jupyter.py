"""The viz package and the CLI load no Jupyter package and nothing of the widget layer."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VIZ = ROOT / "saliency_widget" / "viz"
JUPYTER = ("ipywidgets", "bqplot", "anywidget")

PROBE = """
import json, sys
import saliency_widget.cli
import saliency_widget.viz
import saliency_widget.viz.render, saliency_widget.viz.report, saliency_widget.viz.figures, saliency_widget.viz.images
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {jupyter!r} or m.startswith("saliency_widget.widget"))))
"""


def test_cli_and_viz_import_no_jupyter_package() -> None:
    code = PROBE.format(jupyter=set(JUPYTER))
    res = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1]) == []


def _imports(path: Path) -> list[str]:
    """Absolute module names ``path`` imports (relative imports resolved against saliency_widget.viz)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ["saliency_widget", "viz"][: max(0, 2 - (node.level - 1))] if node.level else []
            mod = ".".join([*base, node.module] if node.module else base)
            out += [mod] + [f"{mod}.{a.name}" for a in node.names]
    return out


@pytest.mark.parametrize("path", sorted(VIZ.glob("*.py")), ids=lambda p: p.name)
def test_viz_module_never_imports_the_widget_layer(path: Path) -> None:
    mods = _imports(path)
    assert mods, f"{path.name} parsed to no imports"  # the walker sees this file's imports
    bad = [m for m in mods if m.startswith("saliency_widget.widget") or m.split(".")[0] in JUPYTER]
    assert bad == []


def test_import_walker_resolves_relative_imports() -> None:
    assert "saliency_widget.errors.InputError" in _imports(VIZ / "render.py")
    assert "saliency_widget.viz.render" in _imports(VIZ / "figures.py")  # from . import render
