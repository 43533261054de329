"""Checkpoints are loaded with ``torch.load(..., weights_only=True)``: checked in the source and at run time."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import torch

import saliency_widget as sw


def test_bundled_checkpoints_load_with_weights_only() -> None:
    # Static: every torch.load in the package passes weights_only=True.
    root = Path(sw.__file__).parent
    calls = []
    for py in root.rglob("*.py"):
        for node in ast.walk(ast.parse(py.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load":
                base = node.func.value
                if isinstance(base, ast.Name) and base.id == "torch":
                    kw = {k.arg: k.value for k in node.keywords}
                    calls.append((py.name, node.lineno, kw.get("weights_only")))
    assert calls, "expected at least one torch.load (the bundled checkpoint)"
    bad = [(f, ln) for f, ln, v in calls if not (isinstance(v, ast.Constant) and v.value is True)]
    assert not bad, f"torch.load without weights_only=True at {bad}"


def test_bundled_checkpoint_load_runtime_uses_weights_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from saliency_widget.models import shapes_cnn

    seen: list[Any] = []
    real = torch.load

    def spy(*a: Any, **k: Any) -> Any:
        seen.append(k.get("weights_only"))
        return real(*a, **k)

    monkeypatch.setattr(torch, "load", spy)
    shapes_cnn(pretrained=True)
    assert seen == [True]
