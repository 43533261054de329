"""Odd models: a forward that changes its input in place, a ``@torch.no_grad()`` forward, an input too
small for the network, a bad device string. Each gives correct maps or an error of our family that
names the bad value, and leaves the model (and the user's tensor) unchanged."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import saliency_widget as sw
from saliency_widget.engine import available_methods, get_method
from saliency_widget.engine.checks import check_device, min_input_side
from saliency_widget.errors import InputError, ModelError
from saliency_widget.models import shapes_cnn
from tests.helpers import assert_unchanged, seeded_randn, snapshot
from tests.nets import SmallCNN, seeded

X = seeded_randn(1, 3, 12, 12, seed=7)
OPTIONS: dict[str, dict[str, int]] = {"smoothgrad": {"n": 4}, "integrated_gradients": {"steps": 4}, "occlusion": {"window": 4, "stride": 4}}


class Centred(nn.Module):
    """``SmallCNN`` on ``x - 0.5``, subtracted in place (``inplace=True``) or out of place (the reference)."""

    def __init__(self, inplace: bool) -> None:
        super().__init__()
        self.inplace = inplace
        self.net = seeded(SmallCNN, 3).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.sub_(0.5) if self.inplace else x - 0.5
        return self.net(x)


@pytest.mark.parametrize("method", available_methods())
def test_forward_modifying_its_input_in_place(method: str) -> None:
    model, ref = Centred(inplace=True), Centred(inplace=False)
    x = X.clone()
    before = snapshot(model)
    got = sw.saliency(model, x, target=2, method=method, **OPTIONS.get(method, {}))
    want = sw.saliency(ref, X, target=2, method=method, **OPTIONS.get(method, {}))
    assert bool(want.any())  # a non-trivial map, so the comparison can fail
    assert_close(got, want)
    assert torch.equal(x, X)  # the user's tensor is untouched
    assert_unchanged(model, before)


def test_in_place_forward_keeps_the_explainers_inputs_and_activations() -> None:
    model, ref = Centred(inplace=True), Centred(inplace=False)
    ex, ex_ref = sw.Explainer(model, X), sw.Explainer(ref, X)
    layer = "net.features.0"
    assert_close(ex.activation(layer), ex_ref.activation(layer))
    assert_close(ex.activation(layer), ex_ref.activation(layer))  # twice: the no-grad recompute changed nothing
    assert torch.equal(ex.inputs, X)
    assert_close(ex.logits, ex_ref.logits)
    assert_close(ex.project(layer, 2), ex_ref.project(layer, 2))


class NoGradNet(nn.Module):
    """``SmallCNN`` whose forward is decorated with ``@torch.no_grad()``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = seeded(SmallCNN, 4).eval()

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


NO_GRAD_MESSAGE = r"the model disables gradients.*@torch\.no_grad\(\).*occlusion, which needs only forward passes, still works"


@pytest.mark.parametrize("method", [m for m in available_methods() if get_method(m).needs_gradients])
def test_no_grad_forward_is_a_model_error_naming_occlusion(method: str) -> None:
    model = NoGradNet()
    before = snapshot(model)
    with pytest.raises(ModelError, match=NO_GRAD_MESSAGE):
        sw.saliency(model, X, target=0, method=method, **OPTIONS.get(method, {}))
    ex = sw.Explainer(model, X)
    assert ex.unavailable(method) is not None and "disables gradients" in ex.unavailable(method)  # type: ignore[operator]
    assert_unchanged(model, before)


@pytest.mark.parametrize("method", ["eigencam", "scorecam"])
def test_no_grad_forward_still_runs_gradient_free_cams(method: str) -> None:
    model = NoGradNet()
    before = snapshot(model)
    ex = sw.Explainer(model, X)
    assert ex.unavailable(method) is None
    got = ex.saliency(target=0, method=method, layer="net.features.4")
    assert_close(got, sw.Explainer(model.net, X).saliency(target=0, method=method, layer="features.4"))
    assert_unchanged(model, before)


def test_no_grad_forward_still_runs_occlusion_and_projections_say_why() -> None:
    model = NoGradNet()
    before = snapshot(model)
    ex = sw.Explainer(model, X)
    assert ex.unavailable("occlusion") is None
    got = ex.saliency(target=0, method="occlusion", window=4, stride=4)
    want = sw.Explainer(model.net, X).saliency(target=0, method="occlusion", window=4, stride=4)
    assert_close(got, want)
    with pytest.raises(ModelError, match=NO_GRAD_MESSAGE):
        ex.project("net.features.0", 1)
    with pytest.raises(ModelError, match=NO_GRAD_MESSAGE):
        ex.layer_gradient("net.features.0", torch.tensor([0]))
    assert_unchanged(model, before)


# ----------------------------------------------------------------------------- inputs too small


def test_input_too_small_for_shapes_cnn_names_shape_and_minimum() -> None:
    model = shapes_cnn(pretrained=False)
    before = snapshot(model)
    # five 2x2 max-pools: 32 px is the least that leaves one pixel
    assert min_input_side(model) == 32
    with pytest.raises(InputError, match=r"inputs of shape \(1, 3, 16, 16\) \(16x16 pixels\) are too small .* at least 32x32 pixels"):
        sw.saliency(model, torch.zeros(1, 3, 16, 16))
    with pytest.raises(InputError, match=r"\(1, 3, 64, 8\) \(64x8 pixels\) are too small .* at least 32x32"):
        sw.Explainer(model, torch.zeros(1, 3, 64, 8))
    assert sw.Explainer(model, torch.zeros(1, 3, 32, 32)).logits.shape == (1, 6)  # the minimum works
    assert_unchanged(model, before)


class FixedSize(nn.Module):
    """conv 3x3 then flatten + linear for exactly 8x8 inputs: other sizes fail in the linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_input_of_the_wrong_size_wraps_the_models_error_with_the_shape() -> None:
    model = seeded(FixedSize).eval()
    before = snapshot(model)
    with pytest.raises(InputError, match=r"cannot run on inputs of shape \(1, 3, 6, 6\) \(6x6 pixels\): mat1 and mat2 shapes"):
        sw.Explainer(model, torch.zeros(1, 3, 6, 6))
    assert_unchanged(model, before)


class Raises(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("the model's own failure")


def test_other_model_errors_pass_unchanged() -> None:
    with pytest.raises(RuntimeError, match=r"^the model's own failure$"):
        sw.Explainer(Raises(), torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize(
    ("layers", "side"),
    [
        ([nn.Conv2d(3, 4, 3)], 3),  # valid 3x3: 3 px
        ([nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2)], 2),
        ([nn.Conv2d(3, 4, 7, stride=2, padding=3), nn.MaxPool2d(3, 2, 1)], 1),
        ([nn.Conv2d(3, 4, 5), nn.AvgPool2d(2), nn.Conv2d(4, 4, 3, dilation=2)], 14),  # 5 -> (5-1)*2+2 = 10 -> 10+4 = 14
        ([nn.Linear(3, 3)], None),
    ],
)
def test_min_input_side_layer_arithmetic(layers: list[nn.Module], side: int | None) -> None:
    assert min_input_side(nn.Sequential(*layers)) == side


# ----------------------------------------------------------------------------- devices


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "", 1.5, True])
def test_bad_device_lists_valid_device_strings(device: object) -> None:
    model = seeded(SmallCNN)
    before = snapshot(model)
    with pytest.raises(InputError, match=rf"unknown device {repr(device)}; expected a device string such as 'cpu', 'cuda', 'cuda:N', 'mps'"):
        sw.Explainer(model, X, device=device)  # type: ignore[arg-type]
    assert_unchanged(model, before)


@pytest.mark.parametrize(("device", "want"), [(None, None), ("cpu", torch.device("cpu")), ("cuda:1", torch.device("cuda:1")), (torch.device("cpu"), torch.device("cpu"))])
def test_check_device_accepts_valid_devices(device: object, want: torch.device | None) -> None:
    assert check_device(device) == want
