"""Occlusion on models the changed-rectangle path cannot take: user hooks, column constants, batch statistics.

Catalogue of issue 26 ("robustness round 3"): item 3 (BatchNorm with batch statistics: the map
must not depend on ``batch_size``), item 4 (incremental occlusion and the user's hooks) and
item 7 (a shape-``(W,)`` parameter broadcast over the columns). Each map is compared with the
full recompute (``incremental=False``) and with an independent patch-by-patch loop written here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

import saliency_widget as sw
from saliency_widget.engine.incremental import IncrementalPlan, batch_statistics, build_plan, explain_plan
from saliency_widget.engine.occlusion import occlusion_scores
from tests.helpers import assert_unchanged, seeded_randn, snapshot
from tests.nets import seeded, sequential_cnn

SIDE = 16
WINDOW, STRIDE = 4, 4


def patch_loop(model: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """Reference grid ``(N, ny, nx)`` of logits: each occluded copy alone through the model (zero patch)."""
    n, _, h, w = x.shape
    ys, xs = range(0, h - WINDOW + 1, STRIDE), range(0, w - WINDOW + 1, STRIDE)
    out = torch.empty(n, len(ys), len(xs), dtype=x.dtype)
    with torch.no_grad():
        for i in range(n):
            for a, y in enumerate(ys):
                for b, xx in enumerate(xs):
                    c = x[i : i + 1].clone()
                    c[..., y : y + WINDOW, xx : xx + WINDOW] = 0
                    out[i, a, b] = model(c)[0, target]
    return out


def grids(model: nn.Module, x: torch.Tensor, target: int, **opts: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The logit grids of the incremental and the full path."""
    ex = sw.Explainer(model, x, record_layers=False)
    t = torch.full((x.shape[0],), target)
    _, inc, _, _ = occlusion_scores(ex, t, window=WINDOW, stride=STRIDE, output="logit", incremental=True, **opts)
    _, full, _, _ = occlusion_scores(ex, t, window=WINDOW, stride=STRIDE, output="logit", incremental=False, **opts)
    return inc, full


# ----------------------------------------------------------------------------- item 4: user hooks


def add_half(mod: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
    return out + 0.5


def scale_input(mod: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
    return (args[0] * 1.5,)


@pytest.fixture
def hooked_cnn() -> Iterator[nn.Sequential]:
    """sequential_cnn with a forward hook (+0.5) on its second conv and a pre-hook (x1.5) on its first."""
    model = sequential_cnn(seed=3).double()
    handles = [model[3].register_forward_hook(add_half), model[0].register_forward_pre_hook(scale_input)]
    yield model
    for h in handles:
        h.remove()


def test_incremental_occlusion_and_user_hooks(hooked_cnn: nn.Sequential) -> None:
    """Issue 26 item 4 / issue 25: a conv's forward hook and pre-hook still shape every occluded score."""
    x = seeded_randn(1, 3, SIDE, SIDE, seed=1, dtype=torch.float64)
    before = snapshot(hooked_cnn)
    plan = explain_plan(hooked_cnn, x, WINDOW)
    assert plan.startswith("full recompute: the model has a forward pre-hook on '0' (Conv2d) and a forward hook on '3' (Conv2d)")
    assert "would skip it" in plan
    inc, full = grids(hooked_cnn, x, 2)
    assert torch.equal(inc, full)
    assert_close(full, patch_loop(hooked_cnn, x, 2))
    # the hooks matter: without them the grid is another one
    plain = sequential_cnn(seed=3).double()
    assert (grids(plain, x, 2)[0] - full).abs().max() > 0.01
    assert_unchanged(hooked_cnn, before)


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("root", "a forward hook on the model itself (Sequential)"),
        ("global", "a global forward hook"),
        ("pre-relu", "a forward pre-hook on '1' (ReLU)"),
    ],
)
def test_incremental_occlusion_user_hooks_anywhere_fall_back(where: str, reason: str) -> None:
    """Issue 26 item 4: a hook on the model itself, a global hook or a hook on a pointwise layer also falls back."""
    model = sequential_cnn(seed=4).double()
    x = seeded_randn(1, 3, SIDE, SIDE, seed=2, dtype=torch.float64)
    if where == "root":
        h = model.register_forward_hook(lambda m, a, out: out * 2.0)
    elif where == "global":
        h = torch.nn.modules.module.register_module_forward_hook(
            lambda m, a, out: out + 0.1 if isinstance(m, nn.Conv2d) else None
        )
    else:
        h = model[1].register_forward_pre_hook(lambda m, a: (a[0] - 0.2,))
    try:
        with torch.no_grad():
            plan = build_plan(model, x)
        assert isinstance(plan, str) and reason in plan
        assert explain_plan(model, x) == f"full recompute: {plan}"
        inc, full = grids(model, x, 1)
        assert torch.equal(inc, full)
        assert_close(full, patch_loop(model, x, 1))
    finally:
        h.remove()
    with torch.no_grad():
        assert isinstance(build_plan(model, x), IncrementalPlan)  # hooks gone: incremental again


def test_user_hooks_fire_during_incremental_fallback(hooked_cnn: nn.Sequential) -> None:
    seen: list[int] = []
    h = hooked_cnn[6].register_forward_hook(lambda m, a, out: seen.append(out.shape[0]))
    try:
        x = seeded_randn(1, 3, SIDE, SIDE, seed=3, dtype=torch.float64)
        ex = sw.Explainer(hooked_cnn, x, record_layers=False)
        seen.clear()
        occlusion_scores(ex, torch.tensor([0]), window=WINDOW, stride=STRIDE, batch_size=5)
        assert sum(seen) == 1 + 16  # the unoccluded image, then every one of the 16 copies
    finally:
        h.remove()


# ----------------------------------------------------------------------------- item 7: a (W,) parameter


class ColumnScale(nn.Module):
    """A conv whose output is multiplied by a learned weight per image column, shape (W,)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.column = nn.Parameter(torch.linspace(0.2, 2.0, SIDE))
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc((F.relu(self.conv(x)) * self.column).mean((2, 3)))


class RowShift(ColumnScale):
    """The constant first, varying along the rows: ``(H, 1) + x``."""

    def __init__(self) -> None:
        super().__init__()
        self.row = nn.Parameter(torch.linspace(-1.0, 1.0, SIDE).view(SIDE, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc((self.row + F.relu(self.conv(x))).mean((2, 3)))


@pytest.mark.parametrize(("make", "shape"), [(ColumnScale, "(16,)"), (RowShift, "(16, 1)")])
def test_incremental_occlusion_column_parameter_falls_back(make: Callable[[], nn.Module], shape: str) -> None:
    """Issue 26 item 7: a constant broadcast over the columns (or rows) falls back, with the reason."""
    model = seeded(make, 5).double().eval()
    x = seeded_randn(2, 3, SIDE, SIDE, seed=4, dtype=torch.float64)
    plan = explain_plan(model, x, WINDOW)
    assert plan.startswith("full recompute: ")
    assert f"a constant of shape {shape} that varies along the image's rows or columns" in plan
    inc, full = grids(model, x, 1)
    assert torch.equal(inc, full)
    assert_close(full, patch_loop(model, x, 1))
    m_inc = sw.saliency(model, x, target=1, method="occlusion", window=WINDOW, stride=STRIDE)
    m_full = sw.saliency(model, x, target=1, method="occlusion", window=WINDOW, stride=STRIDE, incremental=False)
    assert torch.equal(m_inc, m_full)


class Broken(nn.Module):
    """A layer the plan treats as pointwise although it is not (a stand-in for a plan bug)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv(x))
        return self.fc(torch.clamp(y, max=torch.linspace(1.0, 2.0, SIDE)).mean((2, 3)))


def test_plan_failure_falls_back_to_the_full_path(caplog: pytest.LogCaptureFixture) -> None:
    # clamp is pointwise, but its (W,) bound cannot meet a rectangle: the plan raises on the
    # first batch, and occlusion finishes on the full path (same grid), naming why
    model = seeded(Broken, 6).double().eval()
    x = seeded_randn(1, 3, SIDE, SIDE, seed=5, dtype=torch.float64)
    assert explain_plan(model, x, WINDOW).startswith("full recompute: the incremental plan fails: RuntimeError: ")
    with caplog.at_level(logging.DEBUG, logger="saliency_widget.engine.occlusion"):
        inc, full = grids(model, x, 0)
    assert "the incremental plan fails: RuntimeError" in caplog.text
    assert torch.equal(inc, full)
    assert_close(full, patch_loop(model, x, 0))


# ----------------------------------------------------------------------------- item 3: batch statistics


class BatchStatsNet(nn.Module):
    """Conv, BatchNorm without running statistics (always batch statistics), ReLU, pool, 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4, track_running_stats=False)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.bn(self.conv(x))).amax((2, 3)))


@pytest.mark.parametrize("n_images", [1, 2])
def test_occlusion_batch_statistics_map_independent_of_batch_size(n_images: int) -> None:
    """Issue 26 item 3: batch_size 1 and 7 give the same map, each copy scored alone."""
    model = seeded(BatchStatsNet, 7).double().eval()
    x = seeded_randn(n_images, 3, SIDE, SIDE, seed=6, dtype=torch.float64)
    before = snapshot(model)
    assert batch_statistics(model) == ["'bn' (BatchNorm2d) normalises with batch statistics (it keeps no running statistics)"]
    maps = {
        bs: sw.saliency(model, x, target=1, method="occlusion", window=WINDOW, stride=STRIDE, batch_size=bs, output="logit")
        for bs in (1, 7)
    }
    assert torch.equal(maps[1], maps[7])
    ex = sw.Explainer(model, x, record_layers=False)
    base, grid, _, _ = occlusion_scores(ex, torch.full((n_images,), 1), window=WINDOW, stride=STRIDE, output="logit", batch_size=7)
    assert_close(grid, patch_loop(model, x, 1))
    with torch.no_grad():  # the unoccluded score, too, is each image's alone
        assert_close(base, torch.cat([model(x[i : i + 1])[:, 1] for i in range(n_images)]))
    assert "batch statistics" in explain_plan(model, x)
    assert_unchanged(model, before)


def test_occlusion_batch_statistics_training_mode_bn_uses_running_statistics() -> None:
    # a BatchNorm in training mode *with* running statistics runs in eval mode: no batch mixing
    model = sequential_cnn(seed=8)
    model.insert(1, nn.BatchNorm2d(8))
    model.train()
    assert batch_statistics(model) == []
    x = seeded_randn(1, 3, SIDE, SIDE, seed=7)
    a = sw.saliency(model, x, method="occlusion", window=WINDOW, stride=STRIDE, batch_size=1)
    b = sw.saliency(model, x, method="occlusion", window=WINDOW, stride=STRIDE, batch_size=7)
    assert_close(a, b)
    assert all(m.training for m in model.modules())


@pytest.mark.parametrize(("method", "opts"), [("smoothgrad", {"n": 5}), ("integrated_gradients", {"steps": 5})])
def test_sampling_batch_statistics_map_independent_of_batch_size(method: str, opts: dict[str, Any]) -> None:
    # the same principle for the batched noisy / path samples: each sample alone
    model = seeded(BatchStatsNet, 8).double().eval()
    x = seeded_randn(1, 3, SIDE, SIDE, seed=8, dtype=torch.float64)
    a = sw.saliency(model, x, target=0, method=method, batch_size=1, **opts)
    b = sw.saliency(model, x, target=0, method=method, batch_size=4, **opts)
    assert torch.equal(a, b)
    assert a.abs().max() > 0
