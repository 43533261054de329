"""Occlusion: a literal on the hand-weighted net, a patch-by-patch loop reference on ResNet-18, default batch sizes.

Agreement with Captum's Occlusion is in test_captum_agreement.py.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import saliency_widget as sw
from saliency_widget.engine.occlusion import default_batch_size, occlusion_scores
from tests.helpers import seeded_randn
from tests.nets import HAND_X, HandWeightedNet, resnet18_random_bn


def test_occlusion_tiny_literal_logit() -> None:
    # 1x1 window, stride 1, fill 0, logit of class 1 (= 12): zeroing x[1,0] = -1 leaves the
    # conv outputs at the switches unchanged except ch1 (1,0): 6 -> 5, so p = [5, 5],
    # h = relu(V p) = [0, 5], logit1 = -0 + 2*5 = 10: drop 2.
    ex = sw.Explainer(HandWeightedNet(), HAND_X)
    base, grid, ys, xs = occlusion_scores(ex, torch.tensor([1]), window=1, stride=1, output="logit")
    assert base.tolist() == [12.0] and ys == xs == [0, 1, 2]
    assert grid[0, 1, 0].item() == 10.0

# ---------------------------------------------------------------- references on torchvision models, float64
@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    return resnet18_random_bn(seed=11, num_classes=10)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return seeded_randn(2, 3, 64, 64, seed=12, dtype=torch.float64)


def loop_occlusion(model: nn.Module, x: torch.Tensor, target: int, w: int, s: int) -> torch.Tensor:
    """Patch-by-patch reference: probability drop averaged over covering patches."""
    with torch.no_grad():
        p0 = torch.softmax(model(x), 1)[:, target]
        total = torch.zeros(x.shape[0], 1, *x.shape[-2:], dtype=x.dtype)
        count = torch.zeros(1, 1, *x.shape[-2:], dtype=x.dtype)
        for y in range(0, x.shape[2] - w + 1, s):
            for xx in range(0, x.shape[3] - w + 1, s):
                occ = x.clone()
                occ[:, :, y : y + w, xx : xx + w] = 0.0
                p = torch.softmax(model(occ), 1)[:, target]
                total[:, 0, y : y + w, xx : xx + w] += (p0 - p).view(-1, 1, 1)
                count[:, 0, y : y + w, xx : xx + w] += 1
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))


def test_occlusion_matches_loop_reference(resnet: nn.Module, images: torch.Tensor) -> None:
    x = images[:, :, :24, :24]
    got = sw.saliency(resnet, x, target=3, method="occlusion", window=8, stride=5, batch_size=7)
    assert_close(got, loop_occlusion(resnet, x, 3, 8, 5).expand_as(x))


def test_occlusion_activation_output(resnet: nn.Module, images: torch.Tensor) -> None:
    x = images[:1, :, :32, :32]
    ex = sw.Explainer(resnet, x)
    base, grid, ys, xs = occlusion_scores(ex, torch.tensor([0]), window=16, stride=16, output="activation", layer="layer2.0.conv1", channel=4)
    assert_close(base, ex.activation("layer2.0.conv1")[:, 4].amax((1, 2)))
    occ = x.clone()
    occ[:, :, 16:32, 0:16] = 0
    assert_close(grid[0, 1, 0], sw.Explainer(resnet, occ).activation("layer2.0.conv1")[0, 4].amax())


@pytest.mark.parametrize(
    ("shape", "device", "want"),
    [((1, 3, 224, 224), "cpu", 3), ((2, 3, 128, 128), "cpu", 10), ((1, 3, 8, 8), "cpu", 64), ((1, 3, 2048, 2048), "cpu", 1),
     ((1, 3, 224, 224), "meta", 256)],
)
def test_occlusion_default_batch_size(shape: tuple[int, ...], device: str, want: int) -> None:
    # cache-sized batches on a CPU (per-image cost grows with the batch there), large elsewhere
    assert default_batch_size(torch.empty(shape, device=device)) == want
