"""LRP: literal values on a hand-weighted layer, conservation, zennit equality, functional layers, model untouched."""

from __future__ import annotations

import functools
import threading
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import saliency_widget as sw
from saliency_widget.engine.lrp import lrp_relevance
from saliency_widget.engine.lrprules import COMPOSITES, make_composite
from saliency_widget.errors import LRPCoverageWarning, MethodError, reset_warnings

BOX = {"low": -3.0, "high": 3.0}


def _kw(name: str) -> dict[str, float]:
    return BOX if name == "epsilon_gamma_box" else {}


class OneDense(nn.Module):
    """``logit = w . x`` on a (1, 2, 1, 1) input: small enough to do LRP by hand."""

    def __init__(self, weight: list[float], bias: float | None = None) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 1, bias=bias is not None)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([weight]))
            if bias is not None:
                self.fc.bias.fill_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


X12 = torch.tensor([1.0, 2.0], dtype=torch.float64).view(1, 2, 1, 1)


@pytest.mark.parametrize(
    ("composite", "expected"),
    [
        # z = 1*1 + 2*(-1) = -1: R_in = x * w / z = [1/-1, -2/-1]
        ("epsilon", [-1.0, 2.0]),
        # a dense layer gets epsilon in every composite but "epsilon_plus_flat" makes it the first layer: flat
        ("epsilon_plus", [-1.0, 2.0]),
        ("epsilon_plus_flat", [0.5, 0.5]),
        ("alpha_beta", [-1.0, 2.0]),
    ],
)
def test_dense_layer_by_hand(composite: str, expected: list[float]) -> None:
    model = OneDense([1.0, -1.0]).double()
    rel = sw.saliency(model, X12, target=0, method="lrp", composite=composite, epsilon=0.0, stabilizer=0.0)
    torch.testing.assert_close(rel.flatten(), torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-9)


class OneConv(nn.Module):
    """A 1x1 convolution with two input channels and one output, summed to one logit."""

    def __init__(self, weight: list[float], bias: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor(weight).view(1, 2, 1, 1))
            self.conv.bias.fill_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).flatten(1)


@pytest.mark.parametrize(
    ("composite", "expected"),
    [
        # z+ with x = (1, 2), w = (1, -1): only x0 * w0 = 1 is positive, so it takes everything
        ("epsilon_plus", [1.0, 0.0]),
        # alpha 2, beta 1: positive part [1, 0] / 1, negative part [0, -2] / -2 = [0, 1]: 2 [1, 0] - [0, 1]
        ("alpha_beta", [2.0, -1.0]),
    ],
)
def test_conv_rules_by_hand(composite: str, expected: list[float]) -> None:
    model = OneConv([1.0, -1.0]).double()
    rel = sw.saliency(model, X12, target=0, method="lrp", composite=composite, stabilizer=0.0)
    torch.testing.assert_close(rel.flatten(), torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-9)


def test_zbox_by_hand() -> None:
    # x = (1, 2), w = (1, -1), low = 0, high = 3: z = -1 - 0 - (3 * -1) = 2
    # R_in = x * w - low * w+ - high * w-, over z: (1 - 0 - 0, -2 - 0 + 3) / 2 = (0.5, 0.5)
    model = OneConv([1.0, -1.0]).double()
    rel = sw.saliency(model, X12, target=0, method="lrp", composite="epsilon_gamma_box", stabilizer=0.0,
                      low=0.0, high=3.0)
    torch.testing.assert_close(rel.flatten(), torch.tensor([0.5, 0.5], dtype=torch.float64), rtol=1e-9, atol=1e-9)


def test_gamma_by_hand() -> None:
    # a second convolution gets gamma (the first gets z^B): feed the first an identity
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = nn.Conv2d(2, 2, 1, bias=False)
            self.second = OneConv([1.0, -1.0])
            with torch.no_grad():
                self.first.weight.copy_(torch.eye(2).view(2, 2, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.second(self.first(x))

    rel = lrp_relevance(Two().double(), X12, torch.ones(1, 1, dtype=torch.float64),
                        make_composite("epsilon_gamma_box", gamma=1.0, stabilizer=1e-12, low=-10.0, high=10.0))
    # gamma: z = -1 < 0 -> weights w + w- = (1, -2), contributions (1, -4), denominator -3: (-1/3, 4/3);
    # the first layer (identity, z^B with a wide box) passes each channel's relevance to its own input
    # in proportion (x w - low w+ - high w-) / z = (x + 10) / (x + 10) = 1
    torch.testing.assert_close(rel.flatten(), torch.tensor([-1 / 3, 4 / 3], dtype=torch.float64), rtol=1e-9, atol=1e-9)


def test_wsquare_first_layer_by_hand() -> None:
    # w² with inputs 1: weights (1, -1) squared are (1, 1), bias 0.5 squared 0.25: z = 2.25, shares (1, 1) / 2.25
    model = OneConv([1.0, -1.0], bias=0.5).double()
    rel = sw.saliency(model, X12, target=0, method="lrp", composite="epsilon_plus", first="wsquare", stabilizer=0.0)
    torch.testing.assert_close(rel.flatten(), torch.tensor([1 / 2.25, 1 / 2.25], dtype=torch.float64), rtol=1e-9, atol=1e-9)


def test_alpha_sets_beta_by_hand() -> None:
    # alpha 3, beta 2: positive part [1, 0], negative part [0, 1]: 3 [1, 0] - 2 [0, 1]
    model = OneConv([1.0, -1.0]).double()
    rel = sw.saliency(model, X12, target=0, method="lrp", composite="alpha_beta", alpha=3.0, stabilizer=0.0)
    torch.testing.assert_close(rel.flatten(), torch.tensor([3.0, -2.0], dtype=torch.float64), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        # the dense layer of epsilon_plus_flat without its flat first rule: epsilon, x * w / z
        ("none", [-1.0, 2.0]),
        ("flat", [0.5, 0.5]),
        # w = (1, -1) squared: even shares
        ("wsquare", [0.5, 0.5]),
        # low 0, high 3 (see test_zbox_by_hand)
        ("zbox", [0.5, 0.5]),
    ],
)
def test_first_layer_rule_replaces_the_composites(first: str, expected: list[float]) -> None:
    model = OneDense([1.0, -1.0]).double()
    rel = sw.saliency(model, X12, target=0, method="lrp", composite="epsilon_plus_flat", first=first, epsilon=0.0,
                      stabilizer=0.0, low=0.0, high=3.0)
    torch.testing.assert_close(rel.flatten(), torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-9)


def test_gamma_box_without_its_box_needs_no_bounds() -> None:
    """epsilon_gamma_box with another first rule needs no low/high (only the z^B rule reads them)."""
    model = OneConv([1.0, -1.0]).double()
    rel = sw.saliency(model, X12, target=0, method="lrp", composite="epsilon_gamma_box", first="flat", stabilizer=0.0)
    torch.testing.assert_close(rel.flatten(), torch.tensor([0.5, 0.5], dtype=torch.float64), rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------- conservation


class BiasFree(nn.Module):
    """conv-relu-maxpool-conv(+bn)-relu-residual-avgpool-linear, no biases anywhere (BN shift 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.c2 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 4, bias=False)
        with torch.no_grad():
            self.bn.running_var.uniform_(0.5, 2.0)
            self.bn.weight.uniform_(0.5, 1.5)  # BN bias and running mean stay 0: the merged layer has no bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.max_pool2d(torch.relu(self.c1(x)), 2)
        b = torch.relu(self.bn(self.c2(a)))
        return self.fc(F.adaptive_avg_pool2d(a + b, 1).flatten(1))


@pytest.mark.parametrize("composite", sorted(COMPOSITES))
def test_relevance_is_conserved_without_biases(composite: str) -> None:
    """With no bias and epsilon -> 0, every rule passes on exactly the relevance it receives: the map sums to 1."""
    torch.manual_seed(0)
    model = BiasFree().double().eval()
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    seed = F.one_hot(torch.tensor([0, 1, 3]), 4).double()
    rel = lrp_relevance(model, x, seed, make_composite(composite, epsilon=1e-12, stabilizer=1e-12, low=-5.0, high=5.0))
    # tolerance: the stabiliser (1e-12) against denominators of order 1e-3 at worst
    torch.testing.assert_close(rel.sum((1, 2, 3)), torch.ones(3, dtype=torch.float64), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- zennit, the reference


def _zennit_composite(name: str, arch: str) -> object:
    zc = pytest.importorskip("zennit.composites")
    from zennit.rules import Epsilon
    from zennit.torchvision import ResNetCanonizer, VGGCanonizer
    from zennit.types import Convolution

    canonizers = [ResNetCanonizer() if arch == "resnet18" else VGGCanonizer()]
    if name == "epsilon":
        return zc.LayerMapComposite(
            layer_map=[*zc.layer_map_base(), (Convolution, Epsilon()), (nn.Linear, Epsilon())], canonizers=canonizers
        )
    if name == "epsilon_gamma_box":
        return zc.EpsilonGammaBox(canonizers=canonizers, **BOX)
    cls = {"epsilon_plus": zc.EpsilonPlus, "epsilon_plus_flat": zc.EpsilonPlusFlat, "alpha_beta": zc.EpsilonAlpha2Beta1}
    return cls[name](canonizers=canonizers)


@functools.lru_cache(maxsize=2)
def _torchvision(arch: str) -> nn.Module:
    """VGG-11 / ResNet-18 with random weights and random batch-norm statistics, built once per arch."""
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None, num_classes=10).double().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                # non-trivial statistics, so that merging matters; eps 0: zennit's canonizer sets the merged
                # batch norm's statistics to (0, 1) but keeps eps, so its "identity" scales by 1/sqrt(1 + eps)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.eps = 0.0
    return model


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["vgg11", "resnet18"])
@pytest.mark.parametrize("composite", sorted(COMPOSITES))
def test_equals_zennit(arch: str, composite: str) -> None:
    """Same relevance as zennit's Gradient attributor with the same composite and canonizers (float64)."""
    attribution = pytest.importorskip("zennit.attribution")
    model = _torchvision(arch)
    torch.manual_seed(1)
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    targets = torch.tensor([3])
    seed = F.one_hot(targets, 10).double()
    xi = x.clone().requires_grad_(True)
    with attribution.Gradient(model, _zennit_composite(composite, arch)) as attributor:
        _, expected = attributor(xi, seed)
    ours = sw.saliency(model, x, target=targets, method="lrp", composite=composite, **_kw(composite))
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


def _zennit_variant(variant: str, arch: str) -> object:
    """zennit composites for our parameters beyond its named composites: alpha=3 and each first-layer rule."""
    zc = pytest.importorskip("zennit.composites")
    from zennit.rules import AlphaBeta, Epsilon, Flat, WSquare, ZBox, ZPlus
    from zennit.torchvision import ResNetCanonizer, VGGCanonizer
    from zennit.types import Convolution, Linear

    canonizers = [ResNetCanonizer() if arch == "resnet18" else VGGCanonizer()]
    if variant == "alpha3":
        return zc.LayerMapComposite(
            layer_map=[*zc.layer_map_base(), (Convolution, AlphaBeta(3.0, 2.0)), (nn.Linear, Epsilon())], canonizers=canonizers
        )
    first = {"first_wsquare": WSquare(), "first_flat": Flat(), "first_zbox": ZBox(**BOX)}[variant]
    return zc.SpecialFirstLayerMapComposite(
        layer_map=[*zc.layer_map_base(), (Convolution, ZPlus()), (nn.Linear, Epsilon())], first_map=[(Linear, first)],
        canonizers=canonizers,
    )


_VARIANTS = {
    "alpha3": {"composite": "alpha_beta", "alpha": 3.0},
    "first_wsquare": {"composite": "epsilon_plus", "first": "wsquare"},
    "first_flat": {"composite": "epsilon_plus", "first": "flat"},
    "first_zbox": {"composite": "epsilon_plus", "first": "zbox", **BOX},
}


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["vgg11", "resnet18"])
@pytest.mark.parametrize("variant", sorted(_VARIANTS))
def test_parameters_equal_zennit(arch: str, variant: str) -> None:
    """α (β = α − 1) and the first-layer rule as zennit's AlphaBeta and SpecialFirstLayerMapComposite (float64)."""
    attribution = pytest.importorskip("zennit.attribution")
    model = _torchvision(arch)
    torch.manual_seed(1)
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    seed = F.one_hot(torch.tensor([3]), 10).double()
    xi = x.clone().requires_grad_(True)
    with attribution.Gradient(model, _zennit_variant(variant, arch)) as attributor:
        _, expected = attributor(xi, seed)
    ours = sw.saliency(model, x, target=3, method="lrp", **_VARIANTS[variant])  # type: ignore[arg-type]
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


# ---------------------------------------------------------------- functional layers


class ModuleNet(nn.Module):
    """conv-bn-relu, maxpool, a residual block with batch norms, average pooling, a dense head: as modules."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv3, self.bn3 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.pool, self.avg = nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)
        with torch.no_grad():
            for bn in (self.bn1, self.bn2, self.bn3):
                bn.running_mean.normal_(0, 0.2)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_(0, 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        out = self.bn3(self.conv3(self.relu(self.bn2(self.conv2(x)))))
        out += x
        return self.fc(torch.flatten(self.avg(self.relu(out)), 1))


class FunctionalNet(ModuleNet):
    """The same network (same parameters) written with functional calls and ``@``: no module runs but the root."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def bn(t: torch.Tensor, m: nn.BatchNorm2d) -> torch.Tensor:
            return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)

        x = F.max_pool2d(F.relu(bn(F.conv2d(x, self.conv1.weight, self.conv1.bias, padding=1), self.bn1)), 2)
        h = F.relu(bn(F.conv2d(x, self.conv2.weight, self.conv2.bias, padding=1), self.bn2))
        out = bn(F.conv2d(h, self.conv3.weight, self.conv3.bias, padding=1), self.bn3) + x
        pooled = F.relu(out).mean((2, 3))
        return pooled @ self.fc.weight.T + self.fc.bias


def _pair() -> tuple[nn.Module, nn.Module, torch.Tensor]:
    torch.manual_seed(2)
    modules = ModuleNet().double().eval()
    functional = FunctionalNet().double().eval()
    functional.load_state_dict(modules.state_dict())
    return modules, functional, torch.randn(2, 3, 12, 12, dtype=torch.float64)


@pytest.mark.parametrize("composite", sorted(COMPOSITES))
def test_functional_network_gets_the_same_relevance(composite: str) -> None:
    modules, functional, x = _pair()
    torch.testing.assert_close(functional(x), modules(x))
    a = sw.saliency(modules, x, target=[1, 4], method="lrp", composite=composite, **_kw(composite))
    b = sw.saliency(functional, x, target=[1, 4], method="lrp", composite=composite, **_kw(composite))
    torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12)


def test_zennit_misses_functional_layers() -> None:
    """zennit hooks modules: on the functional twin its "LRP" is silently the plain gradient; ours is not."""
    attribution = pytest.importorskip("zennit.attribution")
    from zennit.composites import EpsilonPlus

    _, functional, x = _pair()
    seed = F.one_hot(torch.tensor([1, 4]), 5).double()
    xi = x.clone().requires_grad_(True)
    with attribution.Gradient(functional, EpsilonPlus()) as attributor:
        _, theirs = attributor(xi, seed)
    gradient = sw.saliency(functional, x, target=[1, 4], method="gradient")
    ours = sw.saliency(functional, x, target=[1, 4], method="lrp", composite="epsilon_plus")
    torch.testing.assert_close(theirs, gradient)  # no rule ran
    assert (ours - gradient).abs().max() > 0.1 * gradient.abs().max()


# ---------------------------------------------------------------- the user's model, warnings, errors


def test_model_untouched_on_success_and_on_error() -> None:
    modules, _, x = _pair()
    modules.train()
    modules.fc.weight.requires_grad_(False)
    calls: list[int] = []
    handle = modules.conv1.register_forward_hook(lambda m, i, o: calls.append(1))
    before = {k: v.clone() for k, v in modules.state_dict().items()}
    sw.saliency(modules, x, target=0, method="lrp")
    assert calls == [1, 1]  # the user's hook ran (explainer's forward and LRP's)
    with pytest.raises(MethodError, match="low= and high="):
        sw.saliency(modules, x, target=0, method="lrp", composite="epsilon_gamma_box")

    class Boom(nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    modules.avg = Boom()  # fails inside the LRP forward, after the rules were set up
    with pytest.raises(RuntimeError, match="boom"):
        sw.saliency(modules, x, target=0, method="lrp")
    modules.avg = nn.AdaptiveAvgPool2d(1)
    assert modules.training and not modules.fc.weight.requires_grad and modules.conv1.weight.requires_grad
    for k, v in modules.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert torch.overrides._get_current_function_mode() is None  # no mode left behind
    handle.remove()


def test_uncovered_operations_named_once() -> None:
    class WithNorm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.norm, self.fc = nn.Conv2d(3, 4, 3), nn.LayerNorm(4), nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t = self.conv(x).mean((2, 3))
            return self.fc(torch.softmax(self.norm(t), 1) * t)

    reset_warnings()
    model = WithNorm().eval()
    x = torch.randn(1, 3, 8, 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sw.saliency(model, x, method="lrp")
        sw.saliency(model, x, method="lrp")
    mine = [w for w in caught if issubclass(w.category, LRPCoverageWarning)]
    assert len(mine) == 1
    assert "layer_norm (x1)" in str(mine[0].message) and "softmax" in str(mine[0].message)
    assert "mul" in str(mine[0].message)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"composite": "zplus"}, "unknown LRP composite 'zplus'; expected one of"),
        ({"composite": "epsilon", "epsilon": -1.0}, "epsilon=-1.0 is invalid"),
        ({"composite": "alpha_beta", "alpha": 0.5}, "alpha=0.5 is invalid; expected a number >= 1"),
        ({"first": "zplus"}, "unknown LRP first-layer rule 'zplus'; expected one of"),
        ({"first": "zbox"}, "first-layer rule 'zbox' needs low= and high="),
        ({"gammma": 0.3}, "unknown option"),
        ({"composite": "epsilon_gamma_box", "low": [0.0, 1.0, 2.0, 3.0], "high": 1.0}, "do not fit inputs of shape"),
    ],
)
def test_option_errors_name_the_value_and_choices(options: dict[str, object], message: str) -> None:
    model = OneConv([1.0, -1.0]).double()
    with pytest.raises(MethodError, match=message.replace("(", r"\(")):
        sw.saliency(model, X12.expand(1, 2, 3, 3).contiguous(), target=0, method="lrp", **options)


def test_two_threads_see_their_own_rules() -> None:
    """LRP in one thread and Guided Backprop in another on one model: each equals its result alone."""
    modules, _, x = _pair()
    alone = {
        "lrp": sw.saliency(modules, x, target=1, method="lrp"),
        "guided_backprop": sw.saliency(modules, x, target=1, method="guided_backprop"),
    }
    got: dict[str, list[torch.Tensor]] = {k: [] for k in alone}

    def work(method: str) -> None:
        for _ in range(5):
            got[method].append(sw.saliency(modules, x, target=1, method=method))

    threads = [threading.Thread(target=work, args=(m,)) for m in alone]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for method, maps in got.items():
        for m in maps:
            torch.testing.assert_close(m, alone[method], rtol=0, atol=0)
