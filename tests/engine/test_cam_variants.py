"""The CAM variants (Grad-CAM++, XGrad-CAM, LayerCAM, Eigen-CAM, Score-CAM): literal weight rules, pytorch-grad-cam agreement.

pytorch-grad-cam (``grad-cam`` 1.5) min-max normalises each map and resizes it with OpenCV;
ours keeps raw values and upsamples with ``F.interpolate(bilinear, align_corners=False)``, so
maps are compared by correlation (>= 0.99), as in test_transformer_cam.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

import saliency_widget as sw
from saliency_widget.engine import camrules as cr
from saliency_widget.engine import get_method
from saliency_widget.engine.cam import cam_low_res
from saliency_widget.engine.progress import reporting
from saliency_widget.errors import Cancelled
from tests.helpers import seeded_randn
from tests.nets import HAND_X, HandWeightedNet, resnet18_random_bn, sequential_cnn

VARIANTS = ["gradcampp", "xgradcam", "layercam", "eigencam", "scorecam"]

# ---------------------------------------------------------------- literal weight rules on a 1 x 2 x 2 x 2 tensor
# channel 0: A = [[1, 2], [3, 0]], G = [[1, -1], [0, 2]]; channel 1: A = [[0, 0], [0, 0]], G = [[1, 1], [1, 1]]
A = torch.tensor([[[[1.0, 2.0], [3.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]], dtype=torch.float64)
G = torch.tensor([[[[1.0, -1.0], [0.0, 2.0]], [[1.0, 1.0], [1.0, 1.0]]]], dtype=torch.float64)


def _col(*w: float) -> torch.Tensor:
    return torch.tensor(w, dtype=torch.float64).view(1, -1, 1, 1)


def test_gradcampp_rule_literal() -> None:
    # channel 0, sum A = 6: alpha = g^2 / (2 g^2 + 6 g^3): g=1 -> 1/8, g=-1 -> 1/(2-6) = -1/4 (relu(g) = 0 there),
    # g=0 -> 0, g=2 -> 4 / (8 + 48) = 1/14; w0 = 1 * 1/8 + 2 * 1/14 = 1/8 + 1/7 = 15/56.
    # channel 1, sum A = 0: alpha = 1/2 everywhere, w1 = 4 * 1/2 = 2.
    assert_close(cr.gradcampp_weights(A, G), _col(15 / 56, 2.0))


def test_xgradcam_rule_literal() -> None:
    # channel 0: sum G*A = 1 - 2 + 0 + 0 = -1, over sum A = 6 -> -1/6; channel 1: sum A = 0 -> 0
    assert_close(cr.xgradcam_weights(A, G), _col(-1 / 6, 0.0))


def test_layercam_rule_literal() -> None:
    want = torch.tensor([[[[1.0, 0.0], [0.0, 2.0]], [[1.0, 1.0], [1.0, 1.0]]]], dtype=torch.float64)
    assert_close(cr.layercam_weights(A, G), want)
    # the CAM: relu(G) * A summed over channels = [[1, 0], [0, 0]]
    assert_close(torch.relu((cr.layercam_weights(A, G) * A).sum(1)), torch.tensor([[[1.0, 0.0], [0.0, 0.0]]], dtype=torch.float64))


def test_gradcam_rule_literal() -> None:
    assert_close(cr.gradcam_weights(A, G), _col(0.5, 1.0))


def test_eigencam_rule_literal() -> None:
    # channels (x, 2x) with x centred = [-1.5, -0.5, 0.5, 1.5] (rank one): the first principal direction is
    # (1, 2) / sqrt(5); projection = sqrt(5) * x, whose largest magnitude (+-1.5 sqrt 5) ties: kept positive at +1.5.
    x = torch.tensor([[-1.5, -0.5], [0.5, 1.5]], dtype=torch.float64)
    centred = torch.stack([x, 2 * x]).unsqueeze(0)
    w = cr.eigencam_weights(centred)
    assert_close(w, _col(1 / math.sqrt(5), 2 / math.sqrt(5)))
    # a negated map flips the sign so that the largest magnitude stays positive: x = [-3, 0, 0, 1]
    y = torch.tensor([[-3.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    w = cr.eigencam_weights(torch.stack([y, 2 * y]).unsqueeze(0))
    assert_close(w, _col(-1 / math.sqrt(5), -2 / math.sqrt(5)))


class _Pick(nn.Module):
    """Logits = (sum of the input's channel 0, sum of its channel 1): a scorer whose Score-CAM is computable by hand."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=(2, 3))


def test_scorecam_rule_literal() -> None:
    # input 1 x 2 x 2 x 2 of ones (at the activation's size: the upsampling is the identity); masks: channel 0
    # (A - 0) / 3 = [[1/3, 2/3], [1, 0]], channel 1 constant -> all zero. Target 0's logit = sum of the mask:
    # 2 and 0, so w = softmax(2, 0) = (e^2, 1) / (e^2 + 1).
    x = torch.ones(1, 2, 2, 2, dtype=torch.float64)
    ex = sw.Explainer(_Pick(), x, intercept=False)
    w = cr.scorecam_weights(ex, torch.tensor([0]), A, batch_size=1)
    e2 = math.exp(2.0)
    assert_close(w, _col(e2 / (e2 + 1), 1 / (e2 + 1)))


# ---------------------------------------------------------------- the core on the hand-weighted net
# relu output A: ch0 [[4,3],[0,5]], ch1 [[0,0],[6,0]]; target 0: dl0/dA is 1 at ch1 (1,0) only
# (tests/engine/test_hand_weighted_net.py). LayerCAM = relu(G) * A = 6 at (1,0); XGrad-CAM: w1 = 6/6 = 1 -> A1;
# Grad-CAM++: ch1 alpha at (1,0) = 1 / (2 + 6) -> w1 = 1/8 -> A1 / 8.
@pytest.mark.parametrize(("method", "cam"), [("layercam", 6.0), ("xgradcam", 6.0), ("gradcampp", 0.75)])
def test_variants_on_hand_weighted_net(method: str, cam: float) -> None:
    ex = sw.Explainer(HandWeightedNet().double(), HAND_X.double())
    low = cam_low_res(ex, torch.tensor([0]), None, next(r for r in cr.CAM_RULES if r.name == method))
    assert_close(low, torch.tensor([[[[0.0, 0.0], [cam, 0.0]]]], dtype=torch.float64))


# ---------------------------------------------------------------- pytorch-grad-cam on ResNet-18 (random weights, float64)
def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def _reference(name: str) -> Callable[..., Any]:
    cam = pytest.importorskip("pytorch_grad_cam")
    if name == "eigencam":
        svd = pytest.importorskip("pytorch_grad_cam.utils.svd_on_activations")

        class SignedEigenCAM(cam.EigenCAM):  # type: ignore[misc, name-defined]
            """pytorch-grad-cam's EigenCAM with its own sign correction (numpy's SVD sign is arbitrary)."""

            def get_cam_image(self, *args: Any, **kwargs: Any) -> Any:
                return svd.get_2d_projection_with_sign_correction(args[3])

        return SignedEigenCAM
    return {"gradcampp": cam.GradCAMPlusPlus, "xgradcam": cam.XGradCAM, "layercam": cam.LayerCAM, "scorecam": cam.ScoreCAM}[name]


def reference_cam(name: str, model: nn.Module, layer: nn.Module, x: torch.Tensor, targets: list[int], reshape: Any = None) -> torch.Tensor:
    tgt = pytest.importorskip("pytorch_grad_cam.utils.model_targets")
    with _reference(name)(model=model, target_layers=[layer], reshape_transform=reshape) as cam:  # hooks removed on exit
        if name == "scorecam":
            cam.batch_size = 32
        return torch.from_numpy(cam(input_tensor=x, targets=[tgt.ClassifierOutputTarget(t) for t in targets]))


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    return resnet18_random_bn(seed=21, num_classes=10)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return seeded_randn(2, 3, 64, 64, seed=22, dtype=torch.float64)


@pytest.mark.parametrize("layer", ["layer4", pytest.param("layer3", marks=pytest.mark.slow)])
@pytest.mark.parametrize("method", ["gradcampp", "xgradcam", "layercam", "eigencam"])
def test_gradient_cams_match_pytorch_grad_cam(resnet: nn.Module, images: torch.Tensor, method: str, layer: str) -> None:
    targets = [3, 7]
    ours = sw.saliency(resnet, images, target=torch.tensor(targets), method=method, layer=layer)
    assert ours.shape == images.shape
    ref = reference_cam(method, resnet, resnet.get_submodule(layer), images, targets)
    for i in range(2):
        assert ours[i, 0].max() > 0 and ref[i].max() > 0
        assert _corr(ours[i, 0], ref[i]) >= 0.99, (method, layer, i)


@pytest.mark.slow
def test_scorecam_matches_pytorch_grad_cam(resnet: nn.Module, images: torch.Tensor) -> None:
    # layer3: 256 channels -> 256 masked forwards on each side (same batch size)
    ours = sw.saliency(resnet, images[:1], target=3, method="scorecam", layer="layer3", batch_size=32)
    ref = reference_cam("scorecam", resnet, resnet.layer3, images[:1], [3])
    assert _corr(ours[0, 0], ref[0]) >= 0.99


@pytest.mark.parametrize("target", [0, 2])
def test_scorecam_matches_pytorch_grad_cam_small(target: int) -> None:
    net = sequential_cnn(seed=25).double()
    x = seeded_randn(2, 3, 16, 16, seed=26, dtype=torch.float64)
    ours = sw.saliency(net, x, target=target, method="scorecam", layer="7")
    ref = reference_cam("scorecam", net, net[7], x, [target, target])
    for i in range(2):
        assert _corr(ours[i, 0], ref[i]) >= 0.99, i


def test_scorecam_batches_report_and_cancel() -> None:
    net = sequential_cnn(seed=23).double()
    x = seeded_randn(1, 3, 16, 16, seed=24, dtype=torch.float64)
    seen: list[tuple[int, int]] = []
    ex = sw.Explainer(net, x)
    with reporting(lambda d, t: seen.append((d, t))):
        a = ex.saliency(target=1, method="scorecam", layer="7", batch_size=5)
    assert seen == [(0, 16), (5, 16), (10, 16), (15, 16), (16, 16)]
    # the batch size does not change the map
    assert_close(a, ex.saliency(target=1, method="scorecam", layer="7", batch_size=16))

    def stop(done: int, total: int) -> None:
        if done >= 5:
            raise Cancelled("superseded")

    with reporting(stop), pytest.raises(Cancelled):
        ex.saliency(target=1, method="scorecam", layer="7", batch_size=5)
    assert not net.training


@pytest.mark.parametrize("method", VARIANTS)
def test_variants_are_registered_with_layer_option(method: str) -> None:
    m = get_method(method)
    assert m.description and m.label
    with pytest.raises(sw.MethodError, match=r"valid options: \[.*'layer'"):
        sw.saliency(HandWeightedNet().double(), HAND_X.double(), target=0, method=method, bogus=1)


# ---------------------------------------------------------------- a token layer: a tiny timm ViT
def vit_reshape(tensor: torch.Tensor, height: int = 4, width: int = 4) -> torch.Tensor:
    # pytorch-grad-cam's documented ViT transform
    result = tensor[:, 1:, :].reshape(tensor.size(0), height, width, tensor.size(2))
    return result.transpose(2, 3).transpose(1, 2)


@pytest.fixture(scope="module")
def tiny_vit() -> nn.Module:
    vit = pytest.importorskip("timm.models.vision_transformer")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = vit.VisionTransformer(img_size=64, patch_size=16, embed_dim=48, depth=2, num_heads=2, num_classes=5).eval()
    with torch.no_grad():
        # gradients of a random head are ~1e-3, where pytorch-grad-cam's eps (1e-6 next to G^2 in
        # Grad-CAM++'s denominator) would dominate: a larger head keeps the comparison about the rule
        model.head.weight.mul_(100.0)
    return model


@pytest.mark.parametrize("method", ["gradcampp", "xgradcam", "layercam", "eigencam"])
def test_token_layer_matches_pytorch_grad_cam(tiny_vit: nn.Module, method: str) -> None:
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        target = int(tiny_vit(x).argmax(1))
    ours = sw.saliency(tiny_vit, x, target=target, method=method, layer="blocks.1.norm1")[0, 0]
    ref = reference_cam(method, tiny_vit, tiny_vit.blocks[1].norm1, x, [target], vit_reshape)[0]
    assert ours.max() > 0 and ref.max() > 0
    assert _corr(ours, ref) >= 0.99


def test_scorecam_on_token_layer_matches_pytorch_grad_cam(tiny_vit: nn.Module) -> None:
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    ours = sw.saliency(tiny_vit, x, target=3, method="scorecam", layer="blocks.1.norm1", batch_size=48)
    ref = reference_cam("scorecam", tiny_vit, tiny_vit.blocks[1].norm1, x, [3], vit_reshape)[0]
    assert ours.shape == (1, 3, 64, 64)
    assert ours.max() > 0 and ref.max() > 0
    assert _corr(ours[0, 0], ref) >= 0.99


def test_upsampling_convention() -> None:
    # the low-resolution CAM is upsampled like Grad-CAM's: bilinear, align_corners=False
    ex = sw.Explainer(HandWeightedNet().double(), HAND_X.double())
    low = cam_low_res(ex, torch.tensor([0]), None, next(r for r in cr.CAM_RULES if r.name == "layercam"))
    assert_close(ex.saliency(target=0, method="layercam")[:, :1], F.interpolate(low, size=(3, 3), mode="bilinear", align_corners=False))
