"""SmoothGrad, Integrated Gradients and Gradient x Input: a literal on the hand-weighted net, loop references on ResNet-18.

Agreement with Captum (NoiseTunnel, IntegratedGradients, InputXGradient) is in test_captum_agreement.py.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import saliency_widget as sw
from saliency_widget.engine.sampling import integrated_gradients
from tests.helpers import seeded_randn
from tests.nets import HAND_X, HandWeightedNet, resnet18_random_bn


def test_input_x_gradient_tiny_literal() -> None:
    # x * gradient map of target 0 = [[1,2,0],[-1,3,1],[0,-2,2]] * [[0,0,0],[-1,1,0],[1,-1,0]]
    out = sw.saliency(HandWeightedNet(), HAND_X, target=0, method="input_x_gradient")
    assert_close(out, torch.tensor([[[[0.0, 0.0, 0.0], [1.0, 3.0, 0.0], [0.0, 2.0, 0.0]]]]))


# ---------------------------------------------------------------- references on torchvision models, float64
@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    return resnet18_random_bn(seed=11, num_classes=10)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return seeded_randn(2, 3, 64, 64, seed=12, dtype=torch.float64)


@pytest.mark.parametrize("base", ["gradient", "deconvnet", "guided_backprop"])
def test_smoothgrad_without_noise_is_its_base(resnet: nn.Module, images: torch.Tensor, base: str) -> None:
    got = sw.saliency(resnet, images, target=2, method="smoothgrad", base=base, n=1, noise=0.0)
    assert_close(got, sw.saliency(resnet, images, target=2, method=base))


def test_smoothgrad_is_mean_over_noisy_copies(resnet: nn.Module, images: torch.Tensor) -> None:
    n, noise = 4, 0.1
    got = sw.saliency(resnet, images, target=2, method="smoothgrad", n=n, noise=noise, batch_size=3, seed=7)
    gen = torch.Generator().manual_seed(7)
    eps = torch.randn((2, n, 3, 64, 64), generator=gen, dtype=torch.float64)
    span = images.flatten(1).amax(1) - images.flatten(1).amin(1)
    want = torch.stack(
        [torch.stack([sw.saliency(resnet, (images[i] + noise * span[i] * eps[i, k])[None], target=2)[0] for k in range(n)]).mean(0) for i in range(2)]
    )
    assert_close(got, want)


def test_integrated_gradients_completeness(resnet: nn.Module, images: torch.Tensor) -> None:
    ex = sw.Explainer(resnet, images)
    t = torch.tensor([0, 5])
    attr, delta = integrated_gradients(ex, t, steps=128)
    f_x = ex.logits[torch.arange(2), t]
    with torch.no_grad():
        f_b = resnet(torch.zeros_like(images))[torch.arange(2), t]
    gap = (f_x - f_b).abs()
    assert_close(delta, attr.flatten(1).sum(1) - (f_x - f_b))
    # The natural scale is the total attribution mass (one sample's output gap is tiny here).
    scale = attr.abs().flatten(1).sum(1)
    assert bool((delta.abs() < 1e-3 * scale).all()), (delta, scale, gap)


def test_integrated_gradients_riemann_matches_loop(resnet: nn.Module, images: torch.Tensor) -> None:
    steps = 5
    got = sw.saliency(resnet, images, target=4, method="integrated_gradients", steps=steps, scheme="riemann_middle", batch_size=4)
    grads = [sw.saliency(resnet, images * ((k + 0.5) / steps), target=4) for k in range(steps)]
    assert_close(got, images * torch.stack(grads).mean(0))
