"""Grad-CAM and Guided Grad-CAM: literals on the hand-weighted net, a hook-based reference on ResNet-18.

Agreement with Captum's LayerGradCam is in test_captum_agreement.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

import saliency_widget as sw
from saliency_widget.engine.cam import default_cam_layer, gradcam_low_res
from tests.helpers import seeded_randn
from tests.nets import HAND_X, HandWeightedNet, resnet18_random_bn


# ---------------------------------------------------------------- literals on the hand-weighted net
# relu output A: ch0 [[4,3],[0,5]], ch1 [[0,0],[6,0]]. Target 0: dl0/dA is 1 at ch1 (1,0) only
# (see tests/engine/test_hand_weighted_net.py), so alpha = (0, 1/4) and cam = relu(A1 / 4) = [[0,0],[1.5,0]].
# Target 1: dl1/dA is 2 at ch1 (1,0): alpha = (0, 1/2), cam = [[0,0],[3,0]].
@pytest.mark.parametrize(("target", "cam"), [(0, [[0.0, 0.0], [1.5, 0.0]]), (1, [[0.0, 0.0], [3.0, 0.0]])])
def test_gradcam_tiny_literal(target: int, cam: list[list[float]]) -> None:
    net = HandWeightedNet().double()
    x = HAND_X.double()
    ex = sw.Explainer(net, x)
    assert default_cam_layer(ex) == "relu"
    low = gradcam_low_res(ex, torch.tensor([target]))
    assert_close(low, torch.tensor([[cam]], dtype=torch.float64))
    full = sw.saliency(net, x, target=target, method="gradcam")
    assert_close(full, F.interpolate(low, size=(3, 3), mode="bilinear", align_corners=False))


def test_guided_gradcam_tiny_literal() -> None:
    net = HandWeightedNet().double()
    x = HAND_X.double()
    guided = torch.tensor([[[[0.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [1.0, -1.0, 0.0]]]], dtype=torch.float64)
    cam = F.interpolate(torch.tensor([[[[0.0, 0.0], [1.5, 0.0]]]], dtype=torch.float64), size=(3, 3), mode="bilinear", align_corners=False)
    assert_close(sw.saliency(net, x, target=0, method="guided_gradcam"), guided * cam)


# ---------------------------------------------------------------- references on torchvision models, float64
@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    return resnet18_random_bn(seed=11, num_classes=10)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return seeded_randn(2, 3, 64, 64, seed=12, dtype=torch.float64)


def hook_gradcam(model: nn.Module, module: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The classic hook-based Grad-CAM, written independently."""
    store: dict[str, torch.Tensor] = {}

    def fwd(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
        store["a"] = out
        out.register_hook(lambda g: store.__setitem__("g", g))

    h = module.register_forward_hook(fwd)
    try:
        out = model(x)
        out[torch.arange(len(target)), target].sum().backward()
    finally:
        h.remove()
    w = store["g"].mean((2, 3), keepdim=True)
    cam = torch.relu((w * store["a"]).sum(1, keepdim=True)).detach()
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)


def test_gradcam_matches_hook_reference(resnet: nn.Module, images: torch.Tensor) -> None:
    target = torch.tensor([1, 6])
    want = hook_gradcam(resnet, resnet.layer4, images, target)
    got = sw.saliency(resnet, images, target=target, method="gradcam")
    assert got.shape == images.shape
    assert_close(got, want.expand_as(images))
    assert_close(sw.saliency(resnet, images, target=target, method="gradcam", layer="layer3"), hook_gradcam(resnet, resnet.layer3, images, target).expand_as(images))


def test_guided_gradcam_is_product(resnet: nn.Module, images: torch.Tensor) -> None:
    ex = sw.Explainer(resnet, images)
    gg = ex.saliency(3, "guided_gradcam")
    assert_close(gg, ex.saliency(3, "guided_backprop") * ex.saliency(3, "gradcam")[:, :1])
