"""Engine vs. an independent slow reference (explicit-mask ReLUs), float64, on real architectures.

The reference never uses the engine's mechanism: it rewrites each network's ReLUs as
:class:`tests.helpers.RefReLU` (explicit ``(x > 0)`` / ``(R > 0)`` masks) by swapping modules in a
deep copy or by re-writing the forward functionally, then calls plain autograd.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.testing import assert_close

import saliency_widget as sw
from tests.helpers import RefReLU, assert_unchanged, seeded_randn, snapshot, swap_relus
from tests.nets import AllReLUForms, seeded

METHODS = ["gradient", "deconvnet", "guided_backprop"]


def _ref_grad(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    xr = x.clone().requires_grad_(True)
    out = forward(xr)
    seed = torch.zeros_like(out)
    seed[torch.arange(len(target)), target] = 1.0
    (g,) = torch.autograd.grad(out, xr, seed)
    return g


# ---------------------------------------------------------------- ResNet-18: reused in-place nn.ReLU
def ref_resnet(m: torchvision.models.ResNet, x: torch.Tensor, rule: str, taps: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """ResNet forward written out, every ReLU an explicit-mask RefReLU; records block ReLU outputs."""
    taps = {} if taps is None else taps

    def r(t: torch.Tensor) -> torch.Tensor:
        return RefReLU.apply(t, rule)

    x = m.maxpool(r(m.bn1(m.conv1(x))))
    for lname in ["layer1", "layer2", "layer3", "layer4"]:
        for i, blk in enumerate(getattr(m, lname)):
            identity = x
            out = r(blk.bn1(blk.conv1(x)))
            taps[f"{lname}.{i}.relu#0"] = out
            out = blk.bn2(blk.conv2(out))
            if blk.downsample is not None:
                identity = blk.downsample(x)
            out = r(out + identity)
            taps[f"{lname}.{i}.relu#1"] = out
            x = out
    return m.fc(torch.flatten(m.avgpool(x), 1))


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    torch.manual_seed(1)
    m = torchvision.models.resnet18(weights=None).double().eval()
    # random BN statistics so that batch-norm is not the identity
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
    return m


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    return torch.randn(2, 3, 64, 64, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("method", METHODS)
def test_resnet18_matches_reference(resnet: nn.Module, images: torch.Tensor, method: str) -> None:
    target = torch.tensor([3, 7])
    before = snapshot(resnet)
    got = sw.saliency(resnet, images, target=target, method=method)
    want = _ref_grad(lambda t: ref_resnet(resnet, t, method), images, target)
    assert_close(got, want)
    assert_unchanged(resnet, before)


def test_resnet18_methods_really_differ(resnet: nn.Module, images: torch.Tensor) -> None:
    maps = {m: sw.saliency(resnet, images, target=3, method=m) for m in METHODS}
    assert not torch.allclose(maps["gradient"], maps["guided_backprop"])
    assert not torch.allclose(maps["deconvnet"], maps["guided_backprop"])


@pytest.mark.parametrize("call", [0, 1])
@pytest.mark.parametrize("block", ["layer1.0", "layer3.1"])
@pytest.mark.parametrize("method", METHODS)
def test_resnet18_projection_per_call(resnet: nn.Module, images: torch.Tensor, block: str, call: int, method: str) -> None:
    channel = 5
    taps: dict[str, torch.Tensor] = {}
    xr = images.clone().requires_grad_(True)
    ref_resnet(resnet, xr, method, taps)
    act = taps[f"{block}.relu#{call}"]
    flat = act[:, channel].flatten(1).argmax(1)
    w = act.shape[-1]
    seed = torch.zeros_like(act)
    for n in range(act.shape[0]):
        y, x = divmod(int(flat[n]), w)
        seed[n, channel, y, x] = act[n, channel, y, x]
    (want,) = torch.autograd.grad(act, xr, seed)
    got = sw.project(resnet, images, f"{block}.relu", channel, call=call, method=method)
    assert_close(got, want)
    ex = sw.Explainer(resnet, images)
    assert_close(ex.project(f"{block}.relu", channel, call=call, method=method), want)
    assert_close(ex.activation(f"{block}.relu", call), act.detach())


def test_resnet18_calls_differ(resnet: nn.Module, images: torch.Tensor) -> None:
    p0 = sw.project(resnet, images, "layer1.0.relu", 5, call=0)
    p1 = sw.project(resnet, images, "layer1.0.relu", 5, call=1)
    assert not torch.allclose(p0, p1)


def test_resnet18_reused_relu_listed_per_call(resnet: nn.Module, images: torch.Tensor) -> None:
    keys = [i.key for i in sw.layers(resnet, images)]
    assert keys.index("layer1.0.relu") < keys.index("layer1.0.conv2") < keys.index("layer1.0.relu#1")


def test_activation_overwritten_in_place_is_recomputed(resnet: nn.Module, images: torch.Tensor) -> None:
    # bn2's output is changed in place by `out += identity` and the in-place ReLU.
    ex = sw.Explainer(resnet, images)
    with torch.no_grad():
        blk = resnet.layer1[0]
        h = resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(images))))
        want = blk.bn2(blk.conv2(blk.relu(blk.bn1(blk.conv1(h)))))
    assert_close(ex.activation("layer1.0.bn2"), want)
    assert float(want.min()) < 0  # really the pre-ReLU value


# ---------------------------------------------------------------- VGG-11: in-place nn.ReLU modules in a Sequential
@pytest.fixture(scope="module")
def vgg() -> nn.Module:
    torch.manual_seed(3)
    m = torchvision.models.vgg11(weights=None)
    m.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 64), nn.ReLU(inplace=True), nn.Dropout(), nn.Linear(64, 10))
    return m.double().eval()


@pytest.mark.parametrize("method", METHODS)
def test_vgg11_matches_reference(vgg: nn.Module, images: torch.Tensor, method: str) -> None:
    ref = swap_relus(vgg, method)
    target = torch.tensor([1, 4])
    assert_close(sw.saliency(vgg, images, target=target, method=method), _ref_grad(ref, images, target))


@pytest.mark.parametrize(("layer", "upto"), [("features.9", 10), ("features.8", 9), ("features.10", 11)])
@pytest.mark.parametrize("method", METHODS)
def test_vgg11_projection_matches_reference(vgg: nn.Module, images: torch.Tensor, layer: str, upto: int, method: str) -> None:
    # features.8 is a conv whose output the in-place ReLU features.9 overwrites afterwards
    ref = swap_relus(vgg, method)
    xr = images.clone().requires_grad_(True)
    act = ref.features[:upto](xr)
    seed = torch.zeros_like(act)
    seed[:, 2, 1, 1] = act[:, 2, 1, 1]
    (want,) = torch.autograd.grad(act, xr, seed)
    got = sw.project(vgg, images, layer, 2, position=(1, 1), method=method)
    assert_close(got, want)
    assert_close(sw.Explainer(vgg, images).project(layer, 2, position=(1, 1), method=method), want)


# ---------------------------------------------------------------- DenseNet-121: a functional F.relu in forward()
@pytest.mark.parametrize("method", METHODS)
def test_densenet121_functional_relu_matches_reference(images: torch.Tensor, method: str) -> None:
    torch.manual_seed(4)
    m = torchvision.models.densenet121(weights=None, num_classes=10).double().eval()
    ref = swap_relus(m, method)

    def ref_forward(t: torch.Tensor) -> torch.Tensor:
        f = RefReLU.apply(ref.features(t), method)  # DenseNet.forward calls F.relu here
        return ref.classifier(torch.flatten(F.adaptive_avg_pool2d(f, 1), 1))

    target = torch.tensor([2, 9])
    x = images[:, :, :32, :32]
    assert_close(sw.saliency(m, x, target=target, method=method), _ref_grad(ref_forward, x, target))


# ---------------------------------------------------------------- every ReLU form in one custom net
@pytest.mark.parametrize("method", METHODS)
def test_every_relu_form_matches_reference(method: str) -> None:
    net = seeded(AllReLUForms, 5).double().eval()
    x = seeded_randn(3, 3, 16, 16, seed=6, dtype=torch.float64)
    target = torch.tensor([0, 2, 4])

    def ref_forward(t: torch.Tensor) -> torch.Tensor:
        net.ref_rule = method
        try:
            return net(t)
        finally:
            net.ref_rule = None

    want = _ref_grad(ref_forward, x, target)
    got = sw.saliency(net, x, target=target, method=method)
    assert_close(got, want)
    assert_close(sw.Explainer(net, x).saliency(target, method), want)


def test_every_relu_form_is_intercepted() -> None:
    net = seeded(AllReLUForms, 5).double().eval()
    ex = sw.Explainer(net, seeded_randn(1, 3, 16, 16, seed=7, dtype=torch.float64))
    assert ex._interceptor is not None and ex._interceptor.relu_calls == 9


# ---------------------------------------------------------------- gradient == torch.autograd.grad
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradient_equals_autograd(resnet: nn.Module, images: torch.Tensor, dtype: torch.dtype) -> None:
    m = torchvision.models.resnet18(weights=None).to(dtype).eval()
    x = images.to(dtype)
    xr = x.clone().requires_grad_(True)
    out = m(xr)
    (want,) = torch.autograd.grad(out[:, 7].sum(), xr)
    assert_close(sw.saliency(m, x, target=7), want, rtol=0, atol=0)
    assert_close(sw.Explainer(m, x).saliency(7), want, rtol=0, atol=0)


def test_all_methods_from_one_forward_match_separate_calls(resnet: nn.Module, images: torch.Tensor) -> None:
    ex = sw.Explainer(resnet, images)
    for_each = {m: ex.saliency(2, m) for m in METHODS}
    # asking again, in another order, on the same recorded forward gives the same maps
    for m in reversed(METHODS):
        assert_close(ex.saliency(2, m), for_each[m], rtol=0, atol=0)
        assert_close(sw.saliency(resnet, images, 2, m), for_each[m])
