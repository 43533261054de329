"""Agreement with Captum (VGG-11, weights=None, float64) for Grad-CAM, Integrated Gradients, Gradient x Input,
SmoothGrad and occlusion, where Captum is right."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torch.testing import assert_close

import saliency_widget as sw
from tests.helpers import seeded_randn
from tests.nets import seeded

captum_attr = pytest.importorskip("captum.attr")


def vgg11_small_head() -> nn.Module:
    """VGG-11 with a 32-unit classifier to 10 classes and no in-place ReLU; float64, eval mode."""
    m = torchvision.models.vgg11(weights=None)
    m.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 10))
    for mod in m.modules():
        if isinstance(mod, nn.ReLU):
            mod.inplace = False  # Captum's layer hooks cannot follow in-place modules
    return m.double().eval()


@pytest.fixture(scope="module")
def vgg() -> nn.Module:
    return seeded(vgg11_small_head, 13)


@pytest.fixture(scope="module")
def vx() -> torch.Tensor:
    return seeded_randn(2, 3, 64, 64, seed=14, dtype=torch.float64)


def test_captum_layer_gradcam(vgg: nn.Module, vx: torch.Tensor) -> None:
    t = torch.tensor([1, 8])
    lgc = captum_attr.LayerGradCam(vgg, vgg.features[19])
    cam = lgc.attribute(vx, target=t, relu_attributions=True)
    want = captum_attr.LayerAttribution.interpolate(cam, vx.shape[-2:], interpolate_mode="bilinear")
    got = sw.saliency(vgg, vx, target=t, method="gradcam", layer="features.19")
    assert_close(got[:, :1], want)


def test_captum_integrated_gradients(vgg: nn.Module, vx: torch.Tensor) -> None:
    t = torch.tensor([2, 3])
    want = captum_attr.IntegratedGradients(vgg).attribute(vx, baselines=0.0, target=t, n_steps=16, method="gausslegendre")
    assert_close(sw.saliency(vgg, vx, target=t, method="integrated_gradients", steps=16), want)


def test_captum_input_x_gradient(vgg: nn.Module, vx: torch.Tensor) -> None:
    t = torch.tensor([0, 9])
    want = captum_attr.InputXGradient(vgg).attribute(vx, target=t)
    assert_close(sw.saliency(vgg, vx, target=t, method="input_x_gradient"), want)


def test_captum_noise_tunnel(vgg: nn.Module, vx: torch.Tensor) -> None:
    # Captum's noise comes from the global generator and ours from our own, so the samples
    # differ: compare the two SmoothGrad estimates statistically (small noise, many samples).
    x = vx[:1]
    span = float(x.max() - x.min())
    nt = captum_attr.NoiseTunnel(captum_attr.Saliency(vgg))
    want = nt.attribute(x, nt_type="smoothgrad", nt_samples=32, stdevs=0.02 * span, target=5, abs=False, nt_samples_batch_size=16)
    got = sw.saliency(vgg, x, target=5, method="smoothgrad", n=32, noise=0.02, seed=21)
    other_seed = sw.saliency(vgg, x, target=5, method="smoothgrad", n=32, noise=0.02, seed=22)
    plain = sw.saliency(vgg, x, target=5)
    # Captum differs from us no more than we differ from ourselves with another seed.
    err_captum = float((got - want).norm() / want.norm())
    err_self = float((got - other_seed).norm() / other_seed.norm())
    assert err_captum < 1.5 * err_self, (err_captum, err_self)
    # and the smoothing is real: both differ from the plain gradient by a similar amount
    d_ours, d_captum = float((got - plain).norm()), float((want - plain).norm())
    assert 0.5 < d_ours / d_captum < 2.0, (d_ours, d_captum)


def test_captum_occlusion(vgg: nn.Module, vx: torch.Tensor) -> None:
    x = vx[:, :, :32, :32]
    t = torch.tensor([4, 7])
    want = captum_attr.Occlusion(vgg).attribute(x, sliding_window_shapes=(3, 8, 8), strides=(3, 4, 4), baselines=0.0, target=t)
    got = sw.saliency(vgg, x, target=t, method="occlusion", window=8, stride=4, output="logit")
    # Captum returns float32 for float64 inputs; compare the values at float32 precision.
    assert_close(got, want.to(got.dtype), rtol=1e-5, atol=1e-6)
