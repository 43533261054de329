"""Two explorers on one model object render what each renders alone (issue 25 item 3, issue 26 item 4).

The ordinary way to compare two images in a notebook is two ``explore(model, ...)`` calls on the
same model. Each explorer renders in its own worker thread; a layer that sleeps inside the
forward makes the two workers' forward passes overlap, so recording state shared through the
model (hooks, ``training`` flags) would mix their layers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from saliency_widget.widget import Explorer, explore
from tests.helpers import assert_unchanged, rgb_image, snapshot, to_tensor


class Dawdle(nn.Module):
    """The identity, after a short sleep: the other explorer's worker runs in the middle of this forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.003)
        return x


def dawdling_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), Dawdle(), nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(), Dawdle(), nn.MaxPool2d(2),
        nn.Conv2d(12, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4),
    ).eval()  # fmt: skip


STEPS: list[dict[str, Any]] = [
    {"method": "gradient"},
    {"image": 1, "method": "guided_backprop", "layer": "4"},
    {"image": 2, "method": "deconvnet", "channel": 3},
    {"image": 3, "method": "gradcam", "layer": "8"},
    {"image": 4, "method": "guided_gradcam"},
]
"""Each step's controls; ``image: k`` gives explorer ``j`` the image ``rgb_image(10 * j + k)``: a new
recorded forward in each explorer's worker thread, so the two forwards run at the same time."""


def view(w: Explorer) -> tuple[Any, ...]:
    """What the last render showed: its error (None) and a hash per panel."""
    rec = w.render_log[-1]
    return rec.error, tuple(sorted((rec.images or {}).items()))


def drive(explorers: list[Explorer], step: dict[str, Any], index: list[int]) -> None:
    """Apply ``step`` to every explorer (``index[i]``: explorer i's number), then wait for all of them."""
    for j, w in zip(index, explorers, strict=True):
        for name, value in step.items():
            if name == "image":
                w.set_image(rgb_image(10 * j + value))
            else:
                setattr(w, name, value)
    for w in explorers:
        assert w.wait(60), "render did not finish"


@pytest.fixture
def model() -> Iterator[nn.Sequential]:
    m = dawdling_cnn()
    before = snapshot(m)
    yield m
    assert_unchanged(m, before)


def lone_views(model: nn.Module, j: int) -> list[tuple[Any, ...]]:
    w = explore(model, rgb_image(10 * j), transform=to_tensor)
    try:
        out = []
        for step in STEPS:
            drive([w], step, [j])
            out.append(view(w))
        return out
    finally:
        w.close()


def test_two_explorers_on_one_model_render_what_each_renders_alone(model: nn.Sequential) -> None:
    """Issue 26 item 4: two explorers on the same model object, views compared with lone explorers."""
    alone = [lone_views(model, 1), lone_views(model, 2)]
    assert all(a != b for a, b in zip(*alone, strict=True))  # different images: a mixed-up view would show
    pair = [explore(model, rgb_image(10 * j), transform=to_tensor) for j in (1, 2)]
    try:
        for i, step in enumerate(STEPS):
            drive(pair, step, [1, 2])
            for j, w in enumerate(pair):
                assert view(w) == alone[j][i], f"explorer {j} after {step}: {view(w)[0]}"
                assert view(w)[0] is None
    finally:
        for w in pair:
            w.close()
