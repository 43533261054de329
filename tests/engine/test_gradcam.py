"""Grad-CAM, Guided Grad-CAM, SmoothGrad, Integrated Gradients, Gradient x Input, occlusion.

Literals on the hand-weighted net of test_tiny_net, independent references (hooks, loops) in
float64 on torchvision models, and agreement with Captum where Captum is right.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.testing import assert_close

import saliency_widget as sw
from saliency_widget import InputError, MethodError
from saliency_widget.engine.cam import default_cam_layer, gradcam_low_res
from saliency_widget.engine.occlusion import occlusion_scores
from saliency_widget.engine.sampling import integrated_gradients
from test_tiny_net import X as TINY_X
from test_tiny_net import Tiny

NEW = ["gradcam", "guided_gradcam", "smoothgrad", "integrated_gradients", "input_x_gradient", "occlusion"]


def test_registry_lists_every_method_once() -> None:
    names = sw.available_methods()
    assert names[:3] == ["gradient", "deconvnet", "guided_backprop"]
    assert sorted(names[3:]) == sorted(NEW) and len(set(names)) == len(names)


# ---------------------------------------------------------------- literals on the tiny net
# relu output A: ch0 [[4,3],[0,5]], ch1 [[0,0],[6,0]]. Target 0: dl0/dA is 1 at ch1 (1,0) only
# (see test_tiny_net), so alpha = (0, 1/4) and cam = relu(A1 / 4) = [[0,0],[1.5,0]].
# Target 1: dl1/dA is 2 at ch1 (1,0): alpha = (0, 1/2), cam = [[0,0],[3,0]].
@pytest.mark.parametrize(("target", "cam"), [(0, [[0.0, 0.0], [1.5, 0.0]]), (1, [[0.0, 0.0], [3.0, 0.0]])])
def test_gradcam_tiny_literal(target: int, cam: list[list[float]]) -> None:
    net = Tiny().double()
    x = TINY_X.double()
    ex = sw.Explainer(net, x)
    assert default_cam_layer(ex) == "relu"
    low = gradcam_low_res(ex, torch.tensor([target]))
    assert_close(low, torch.tensor([[cam]], dtype=torch.float64))
    full = sw.saliency(net, x, target=target, method="gradcam")
    assert_close(full, F.interpolate(low, size=(3, 3), mode="bilinear", align_corners=False))


def test_guided_gradcam_tiny_literal() -> None:
    net = Tiny().double()
    x = TINY_X.double()
    guided = torch.tensor([[[[0.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [1.0, -1.0, 0.0]]]], dtype=torch.float64)
    cam = F.interpolate(torch.tensor([[[[0.0, 0.0], [1.5, 0.0]]]], dtype=torch.float64), size=(3, 3), mode="bilinear", align_corners=False)
    assert_close(sw.saliency(net, x, target=0, method="guided_gradcam"), guided * cam)


def test_input_x_gradient_tiny_literal() -> None:
    # x * gradient map of target 0 = [[1,2,0],[-1,3,1],[0,-2,2]] * [[0,0,0],[-1,1,0],[1,-1,0]]
    out = sw.saliency(Tiny(), TINY_X, target=0, method="input_x_gradient")
    assert_close(out, torch.tensor([[[[0.0, 0.0, 0.0], [1.0, 3.0, 0.0], [0.0, 2.0, 0.0]]]]))


def test_occlusion_tiny_literal_logit() -> None:
    # 1x1 window, stride 1, fill 0, logit of class 1 (= 12): zeroing x[1,0] = -1 leaves the
    # conv outputs at the switches unchanged except ch1 (1,0): 6 -> 5, so p = [5, 5],
    # h = relu(V p) = [0, 5], logit1 = -0 + 2*5 = 10: drop 2.
    ex = sw.Explainer(Tiny(), TINY_X)
    base, grid, ys, xs = occlusion_scores(ex, torch.tensor([1]), window=1, stride=1, output="logit")
    assert base.tolist() == [12.0] and ys == xs == [0, 1, 2]
    assert grid[0, 1, 0].item() == 10.0


# ---------------------------------------------------------------- references on torchvision models, float64
@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    torch.manual_seed(11)
    m = torchvision.models.resnet18(weights=None, num_classes=10).double().eval()
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.3, 0.3)
            mod.bias.data.uniform_(-0.2, 0.2)
    return m


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(12), dtype=torch.float64)


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
    ("method", "options", "pattern"),
    [
        ("smoothgrad", {"n": 0}, r"n must be a positive int"),
        ("smoothgrad", {"noise": -1.0}, r"noise"),
        ("smoothgrad", {"base": "gradcam"}, r"unknown ReLU rule 'gradcam'"),
        ("smoothgrad", {"sigma": 1.0}, r"unknown option.*sigma"),
        ("integrated_gradients", {"steps": 0}, r"steps must be a positive int"),
        ("integrated_gradients", {"scheme": "simpson"}, r"simpson"),
        ("integrated_gradients", {"baseline": torch.zeros(5)}, r"does not broadcast"),
        ("occlusion", {"window": 100}, r"larger than the image"),
        ("occlusion", {"stride": 0}, r"stride"),
        ("occlusion", {"output": "loss"}, r"'probability', 'logit' or 'activation'"),
        ("occlusion", {"output": "activation"}, r"needs layer"),
        ("gradcam", {"layer": "fc"}, r"spatial layer"),
        ("gradcam", {"layer": "nope"}, r"unknown layer 'nope'"),
        ("input_x_gradient", {"n": 3}, r"unknown option"),
    ],
)
def test_bad_options(method: str, options: dict[str, object], pattern: str) -> None:
    m = torchvision.models.resnet18(weights=None, num_classes=4).eval()
    with pytest.raises((InputError, MethodError, sw.LayerError), match=pattern):
        sw.saliency(m, torch.randn(1, 3, 32, 32), target=0, method=method, **options)


# ---------------------------------------------------------------- agreement with Captum (vgg11, weights=None)
captum_attr = pytest.importorskip("captum.attr")


@pytest.fixture(scope="module")
def vgg() -> nn.Module:
    torch.manual_seed(13)
    m = torchvision.models.vgg11(weights=None)
    m.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 10))
    for mod in m.modules():
        if isinstance(mod, nn.ReLU):
            mod.inplace = False  # Captum's layer hooks cannot follow in-place modules
    return m.double().eval()


@pytest.fixture(scope="module")
def vx() -> torch.Tensor:
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(14), dtype=torch.float64)


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


# ---------------------------------------------------------------- the widget offers the new methods
@pytest.fixture(scope="module")
def explorer():  # type: ignore[no-untyped-def]
    from saliency_widget.widget import explore

    w = explore()
    w.wait(60)
    yield w
    w.close()


@pytest.mark.parametrize("method", NEW)
def test_widget_offers_and_renders_new_method(explorer, method: str) -> None:  # type: ignore[no-untyped-def]
    from saliency_widget.viz import render as R

    assert method in explorer.w_method.options
    before = explorer.images["map"]
    explorer.method = method
    assert explorer.wait(120)
    assert explorer.status.startswith(method), explorer.status
    png = explorer.images["map"]
    assert png != before and not R.is_blank(R.from_png(png))


@pytest.mark.parametrize(
    ("shape", "device", "want"),
    [((1, 3, 224, 224), "cpu", 3), ((2, 3, 128, 128), "cpu", 10), ((1, 3, 8, 8), "cpu", 64), ((1, 3, 2048, 2048), "cpu", 1),
     ((1, 3, 224, 224), "meta", 256)],
)
def test_occlusion_default_batch_size(shape: tuple[int, ...], device: str, want: int) -> None:
    # cache-sized batches on a CPU (per-image cost grows with the batch there), large elsewhere
    from saliency_widget.engine.occlusion import default_batch_size

    assert default_batch_size(torch.empty(shape, device=device)) == want
