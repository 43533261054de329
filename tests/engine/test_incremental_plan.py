"""The incremental plan: rectangles computed by hand, the primitives, and every fallback with its reason."""

from __future__ import annotations

import logging
import re

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import saliency_widget as sw
from saliency_widget.engine.incremental import IncrementalPlan, build_plan, explain_plan
from saliency_widget.engine.incremental_ops import Region, materialize, read
from saliency_widget.engine.occlusion import occlusion_scores
from tests.helpers import assert_unchanged, seeded_randn, snapshot
from tests.nets import resnet18_random_bn, seeded, sequential_cnn, small_cnn


def test_explain_plan_rectangles_by_hand() -> None:
    # sequential_cnn at 32x32, an 8x8 patch at (0, 0):
    # conv 3x3 pad 1: outputs reading rows 0-7 are rows 0-8, but the rectangle keeps the size any
    #   8-row span needs (8 + 3 - 1 = 10), clamped at the top: (10, 10) of (32, 32);
    # max-pool 2/2 over 10 rows: at most (10 + 2 - 2) // 2 + 1 = 6 outputs: (6, 6) of (16, 16);
    # conv: 6 + 2 = 8: (8, 8) of (16, 16); pool: 8 // 2 + 1 = 5: (5, 5) of (8, 8);
    # conv: 7x7 = 49 cells > half of 64: the whole map from there on.
    text = explain_plan(sequential_cnn(), seeded_randn(1, 3, 32, 32, seed=0), window=8)
    rows = [line.split() for line in text.splitlines()[1:]]
    got = [(r[1], " ".join(r[2:])) for r in rows]
    assert got[:9] == [
        ("placeholder", "(8, 8) of (32, 32)"),
        ("window", "(10, 10) of (32, 32)"),
        ("pointwise", "(10, 10) of (32, 32)"),
        ("window", "(6, 6) of (16, 16)"),
        ("window", "(8, 8) of (16, 16)"),
        ("pointwise", "(8, 8) of (16, 16)"),
        ("window", "(5, 5) of (8, 8)"),
        ("window", "whole"),
        ("pointwise", "whole"),
    ]
    assert text.splitlines()[0].endswith("whole maps from node _6 on")


def test_read_and_materialize_literal() -> None:
    # base 0..15 on a 4x4 map; a 2x2 rectangle [[-1, -2], [-3, -4]] at row 1, column 2
    base = torch.arange(16.0).view(1, 1, 4, 4)
    reg = Region(torch.tensor([[[[-1.0, -2.0], [-3.0, -4.0]]]]), torch.tensor([1]), torch.tensor([2]), base, torch.tensor([0]))
    assert materialize(reg).view(4, 4).tolist() == [
        [0, 1, 2, 3], [4, 5, -1, -2], [8, 9, -3, -4], [12, 13, 14, 15],
    ]
    # a 3x3 window from (-1, 1) of the base padded by one row and column of 9s
    padded = nn.functional.pad(base, (1, 1, 1, 1), value=9.0)
    win = read(reg, torch.tensor([-1]), torch.tensor([1]), 3, 3, padded, (1, 1))
    assert win.view(3, 3).tolist() == [[9, 9, 9], [1, 2, 3], [5, -1, -2]]


class DataDependent(nn.Module):
    """Branches on the data: torch.fx cannot trace ``if`` on a tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        if h.mean() > 0:
            h = -h
        return self.fc(h.relu().mean((2, 3)))


class BatchStats(nn.Module):
    """BatchNorm without running statistics: it normalises with the batch's, even in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4, track_running_stats=False)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(self.conv(x)).relu().mean((2, 3)))


class ViewInPlace(nn.Module):
    """Changes a view in place and reads the viewed tensor: the out-of-place plan would differ."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        h.view(h.shape[0], -1).relu_()
        return self.fc(h.mean((2, 3)))


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (DataDependent, r"torch\.fx cannot trace DataDependent: TraceError"),
        (BatchStats, r"^bn \(BatchNorm2d\) normalises with batch statistics"),
        (ViewInPlace, r"traced forward's output differs from the model's"),
    ],
)
def test_fallback_with_reason(make: type[nn.Module], reason: str, caplog: pytest.LogCaptureFixture) -> None:
    model = seeded(make, 1).eval()
    x = seeded_randn(1, 3, 12, 12, seed=2)
    with torch.no_grad():
        plan = build_plan(model, x)
    assert isinstance(plan, str)
    assert re.search(reason, plan), plan
    assert explain_plan(model, x) == f"full recompute: {plan}"
    before = snapshot(model)
    ex = sw.Explainer(model, x, record_layers=False)
    with caplog.at_level(logging.DEBUG, logger="saliency_widget.engine.occlusion"):
        _, got, _, _ = occlusion_scores(ex, torch.tensor([1]), window=4, stride=4, output="logit")
    assert f"full recompute: {plan}" in caplog.text
    _, ref, _, _ = occlusion_scores(ex, torch.tensor([1]), window=4, stride=4, output="logit", incremental=False)
    assert_close(got, ref)
    assert_unchanged(model, before)


def test_activation_output_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    ex = sw.Explainer(small_cnn(seed=1), seeded_randn(1, 3, 12, 12, seed=3))
    with caplog.at_level(logging.DEBUG, logger="saliency_widget.engine.occlusion"):
        occlusion_scores(ex, torch.tensor([0]), window=4, stride=4, output="activation", layer="features.3", channel=1)
    assert "full recompute: output='activation' reads a layer" in caplog.text


def test_plan_leaves_the_model_alone() -> None:
    # tracing, the kept forward and a batch of patches: no hook, flag, buffer or parameter changes
    model = resnet18_random_bn(seed=4)
    x = seeded_randn(1, 3, 32, 32, seed=5, dtype=torch.float64)
    before = snapshot(model)
    with torch.no_grad():
        plan = build_plan(model, x)
        assert isinstance(plan, IncrementalPlan)
        plan.run(torch.zeros(2, dtype=torch.long), torch.tensor([[0, 0], [8, 16]]), (8, 8), torch.zeros((), dtype=torch.float64))
    assert_unchanged(model, before)
    assert not hasattr(model, "graph") and type(model).__name__ == "ResNet"


def test_approximate_mode_caps_rectangles() -> None:
    # tau = 1 caps nothing: exact; tau = 0.25 on a 16x16 map keeps 4 rows: the 10-row rectangle of
    # the first conv (32x32, cap 8) is cut to 8 around its middle, so the map changes
    model = sequential_cnn(seed=6).double()
    x = seeded_randn(1, 3, 32, 32, seed=7, dtype=torch.float64)
    ex = sw.Explainer(model, x, record_layers=False)
    _, exact, _, _ = occlusion_scores(ex, torch.tensor([1]), window=8, stride=4, output="logit")
    _, one, _, _ = occlusion_scores(ex, torch.tensor([1]), window=8, stride=4, output="logit", approximate=1.0)
    _, quarter, _, _ = occlusion_scores(ex, torch.tensor([1]), window=8, stride=4, output="logit", approximate=0.25)
    assert_close(one, exact)
    assert not torch.allclose(quarter, exact)


@pytest.mark.parametrize("bad", [0.0, 1.5, True, "half"])
def test_approximate_option_is_checked(bad: object) -> None:
    ex = sw.Explainer(sequential_cnn(), seeded_randn(1, 3, 16, 16, seed=1))
    with pytest.raises(sw.InputError, match=r"approximate must be None or a fraction in \(0, 1\], got"):
        occlusion_scores(ex, torch.tensor([0]), approximate=bad)  # type: ignore[arg-type]
