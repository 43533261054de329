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
from tests.helpers import assert_unchanged, seeded_randn, snapshot
from tests.nets import HAND_X, HandWeightedNet, resnet18_random_bn, small_cnn


def test_occlusion_tiny_literal_logit() -> None:
    # 1x1 window, stride 1, fill 0, logit of class 1 (= 12): zeroing x[1,0] = -1 leaves the
    # conv outputs at the switches unchanged except ch1 (1,0): 6 -> 5, so p = [5, 5],
    # h = relu(V p) = [0, 5], logit1 = -0 + 2*5 = 10: drop 2.
    ex = sw.Explainer(HandWeightedNet(), HAND_X)
    base, grid, ys, xs = occlusion_scores(ex, torch.tensor([1]), window=1, stride=1, output="logit")
    assert base.tolist() == [12.0] and ys == xs == [0, 1, 2]
    assert grid[0, 1, 0].item() == 10.0



# ---------------------------------------------------------------- the border: every pixel is measured
class SumNet(nn.Module):
    """Logits ``[sum of all pixels, 0]``: occluding a patch with 0 drops logit 0 by the patch's sum."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.flatten(1).sum(1, keepdim=True)
        return torch.cat([s, torch.zeros_like(s)], 1)


@pytest.mark.parametrize(
    ("size", "window", "stride", "starts"),
    [
        (10, 4, 4, [0, 4, 6]),  # 6 = 10 - 4, flush with the border
        (100, 16, 8, [0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 84]),  # rows 96-99 were never covered
        (299, 16, 8, [*range(0, 281, 8), 283]),
        (24, 8, 8, [0, 8, 16]),  # the stride divides: no extra patch
        (5, 5, 3, [0]),  # the window is the image
    ],
)
def test_occlusion_starts_include_the_border(size: int, window: int, stride: int, starts: list[int]) -> None:
    # one row of patches (height = window) keeps the 299-px case fast; the columns are tested
    ex = sw.Explainer(SumNet(), torch.ones(1, 1, window, size))
    _, grid, ys, xs = occlusion_scores(ex, torch.tensor([0]), window=window, stride=stride, output="logit")
    assert ys == [0] and xs == starts
    assert grid.shape == (1, 1, len(starts))
    assert_close(grid, torch.full((1, 1, len(starts)), float(window * size - window * window)))


def test_occlusion_covers_every_pixel_literal() -> None:
    # 10x10 ones, window 4, stride 4: patches at 0, 4, 6 on each axis. Each patch holds 16 ones,
    # so every patch drops logit 0 by 16 and the average over the covering patches is 16 at
    # every pixel, the border rows/columns 8-9 included (they were 0 before).
    model = SumNet()
    before = snapshot(model)
    got = sw.saliency(model, torch.ones(1, 1, 10, 10), target=0, method="occlusion", window=4, stride=4, output="logit")
    assert_close(got, torch.full((1, 1, 10, 10), 16.0))
    assert_unchanged(model, before)


def test_occlusion_border_values_literal() -> None:
    # 1x1x1x5 ramp [1, 2, 3, 4, 5], window (1, 2), stride 2: patches at x = 0, 2 and the flush 3;
    # drops 1+2 = 3, 3+4 = 7, 4+5 = 9. Pixel 3 is covered by patches 2 and 3: (7 + 9) / 2 = 8.
    x = torch.arange(1.0, 6.0).view(1, 1, 1, 5)
    got = sw.saliency(SumNet(), x, target=0, method="occlusion", window=(1, 2), stride=2, output="logit")
    assert got.flatten().tolist() == [3.0, 3.0, 7.0, 8.0, 9.0]


def test_occlusion_covers_every_pixel_of_100px_image() -> None:
    # the case: 100x100, window 16, stride 8 left rows/columns 96-99 at exactly 0
    model = small_cnn(seed=3).double()
    x = seeded_randn(1, 3, 100, 100, seed=5, dtype=torch.float64)
    before = snapshot(model)
    got = sw.saliency(model, x, target=2, method="occlusion", window=16, stride=8, output="logit")
    assert_close(got, loop_occlusion_logit(model, x, 2, 16, 8).expand_as(x))
    assert bool((got[0, 0, 96:, :] != 0).all()) and bool((got[0, 0, :, 96:] != 0).all())
    assert_unchanged(model, before)


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
        # patch starts 0, s, 2s, ... plus one flush with the border (so every pixel is covered)
        ys = sorted(set(range(0, x.shape[2] - w + 1, s)) | {x.shape[2] - w})
        xs = sorted(set(range(0, x.shape[3] - w + 1, s)) | {x.shape[3] - w})
        for y in ys:
            for xx in xs:
                occ = x.clone()
                occ[:, :, y : y + w, xx : xx + w] = 0.0
                p = torch.softmax(model(occ), 1)[:, target]
                total[:, 0, y : y + w, xx : xx + w] += (p0 - p).view(-1, 1, 1)
                count[:, 0, y : y + w, xx : xx + w] += 1
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))


def loop_occlusion_logit(model: nn.Module, x: torch.Tensor, target: int, w: int, s: int) -> torch.Tensor:
    """Patch-by-patch reference on the logit: drop averaged over covering patches, border patch included."""
    with torch.no_grad():
        l0 = model(x)[:, target]
        total = torch.zeros(x.shape[0], 1, *x.shape[-2:], dtype=x.dtype)
        count = torch.zeros(1, 1, *x.shape[-2:], dtype=x.dtype)
        starts = sorted(set(range(0, x.shape[2] - w + 1, s)) | {x.shape[2] - w})
        for y in starts:
            for xx in starts:
                occ = x.clone()
                occ[:, :, y : y + w, xx : xx + w] = 0.0
                total[:, 0, y : y + w, xx : xx + w] += (l0 - model(occ)[:, target]).view(-1, 1, 1)
                count[:, 0, y : y + w, xx : xx + w] += 1
    assert bool((count > 0).all())
    return total / count


def test_occlusion_matches_loop_reference(resnet: nn.Module, images: torch.Tensor) -> None:
    x = images[:, :, :24, :24]  # 24 - 8 = 16 is no multiple of 5: starts 0, 5, 10, 15 and 16
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
