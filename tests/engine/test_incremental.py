"""Incremental occlusion equals the full recompute: every occluded copy, float32 and float64.

The reference is ``occlusion_scores(..., incremental=False)``: each occluded copy through the
whole model (itself checked against a patch-by-patch loop in test_occlusion.py). Each case
also checks that the plan really is incremental, so a silent fallback cannot pass.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.testing import assert_close

import saliency_widget as sw
from saliency_widget.engine.incremental import IncrementalPlan, build_plan
from saliency_widget.engine.occlusion import occlusion_scores
from saliency_widget.models import shapes_cnn
from tests.helpers import assert_unchanged, seeded_randn, snapshot
from tests.nets import AllReLUForms, resnet18_random_bn, seeded, sequential_cnn


class ReLUForms(nn.Module):
    """F.relu, x.relu_(), nn.ReLU(inplace=True), ``+=`` and average pooling; 4 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 6, 5, stride=2, padding=2)
        self.c3 = nn.Conv2d(6, 6, 3, padding=2, dilation=2)
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.c1(x))
        y = self.c2(x).relu_()
        z = self.c3(y)
        z += y  # in place, on the branch's own tensor
        z = self.pool(self.act(z))
        return self.fc(z.mean((2, 3)))


def relu_forms(seed: int = 0) -> ReLUForms:
    return seeded(ReLUForms, seed).eval()


def torchvision_net(name: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    m = getattr(torchvision.models, name)(weights=None, num_classes=10).eval()
    for mod in m.modules():  # non-trivial BatchNorm statistics: not the identity
        if isinstance(mod, nn.BatchNorm2d):
            assert mod.running_mean is not None
            mod.running_mean.uniform_(-0.3, 0.3)
            mod.bias.data.uniform_(-0.2, 0.2)
    return m


def bundled() -> nn.Module:
    return shapes_cnn()


MODELS = {
    "bundled": (bundled, 64),
    "sequential": (lambda: sequential_cnn(seed=2), 40),
    "relu_forms": (lambda: relu_forms(seed=3), 36),
    "all_relu_forms": (lambda: seeded(AllReLUForms, 4).eval(), 32),
    "vgg11": (lambda: torchvision_net("vgg11", 5), 32),
    "resnet18": (lambda: resnet18_random_bn(seed=6).float(), 48),
}


def both(model: nn.Module, x: torch.Tensor, target: int, **opts: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Score grids ``(N, ny, nx)`` of the incremental path and of the full recompute."""
    ex = sw.Explainer(model, x, record_layers=False)
    t = torch.full((x.shape[0],), target)
    with torch.no_grad():
        plan = build_plan(model, x)
    assert isinstance(plan, IncrementalPlan), plan  # a silent fallback would compare the full path with itself
    _, inc, ys, xs = occlusion_scores(ex, t, incremental=True, **opts)  # type: ignore[arg-type]
    _, ref, ys2, xs2 = occlusion_scores(ex, t, incremental=False, **opts)  # type: ignore[arg-type]
    assert (ys, xs) == (ys2, xs2)
    return inc, ref


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(MODELS))
def test_incremental_equals_full_recompute(name: str, dtype: torch.dtype) -> None:
    make, size = MODELS[name]
    model = make().to(dtype)
    x = seeded_randn(1, 3, size, size, seed=7, dtype=dtype)
    inc, ref = both(model, x, 1, window=16, stride=8, output="logit")
    assert_close(inc, ref)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_incremental_densenet121_concatenation(dtype: torch.dtype) -> None:
    model = torchvision_net("densenet121", 8).to(dtype)
    x = seeded_randn(1, 3, 40, 40, seed=9, dtype=dtype)
    inc, ref = both(model, x, 2, window=16, stride=12, output="logit")
    assert_close(inc, ref)


@pytest.mark.parametrize(
    ("window", "stride", "size"),
    [
        (16, 8, 40),  # 40 - 16 = 24: the stride divides
        (12, 7, 40),  # 28 = 4 * 7: starts 0, 7, 14, 21, 28
        (12, 7, 41),  # 29 is no multiple of 7: starts 0, 7, 14, 21, 28 and the flush 29
        ((6, 10), (4, 5), 33),  # rectangular window and stride, neither divides
        (1, 5, 20),  # a one-pixel patch
        (40, 1, 40),  # the patch is the whole image
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_incremental_windows_and_strides(window: object, stride: object, size: int, dtype: torch.dtype) -> None:
    model = relu_forms(seed=10).to(dtype)
    x = seeded_randn(1, 3, size, size, seed=11, dtype=dtype)
    inc, ref = both(model, x, 0, window=window, stride=stride, output="logit")
    assert_close(inc, ref)


@pytest.mark.parametrize("fill", [0.0, -1.5, "per-channel"])
@pytest.mark.parametrize("output", ["probability", "logit"])
def test_incremental_fill_values_and_outputs(fill: object, output: str) -> None:
    model = sequential_cnn(seed=12).double()
    x = seeded_randn(2, 3, 30, 30, seed=13, dtype=torch.float64)  # two images, mixed in odd batches
    f = torch.tensor([0.5, -2.0, 1.0], dtype=torch.float64).view(3, 1, 1) if fill == "per-channel" else fill
    inc, ref = both(model, x, 3, window=9, stride=5, fill=f, output=output, batch_size=7)
    assert_close(inc, ref)


def test_incremental_map_matches_and_model_untouched() -> None:
    model = resnet18_random_bn(seed=14)  # in-place ReLUs and residual adds
    model.train()  # the map runs in eval mode and gives the flags back
    x = seeded_randn(1, 3, 32, 32, seed=15, dtype=torch.float64)
    before = snapshot(model)
    got = sw.saliency(model, x, target=1, method="occlusion", window=8, stride=8)
    assert_unchanged(model, before)
    ref = sw.saliency(model, x, target=1, method="occlusion", window=8, stride=8, incremental=False)
    assert_close(got, ref)


def test_incremental_option_is_checked() -> None:
    ex = sw.Explainer(sequential_cnn(), seeded_randn(1, 3, 16, 16, seed=1))
    with pytest.raises(sw.InputError, match=r"incremental must be True or False, got 'yes'"):
        occlusion_scores(ex, torch.tensor([0]), incremental="yes")  # type: ignore[arg-type]
