"""The user's model and input come back exactly as they were: after success, and after faults."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import saliency_widget as sw
from saliency_widget import NonReLUActivationWarning
from tests.helpers import assert_unchanged, global_hook_state, seeded_randn, snapshot


class Boom(Exception):
    pass


class BoomBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.clone()

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        raise Boom("raised in the middle of the backward pass")


class Faulty(nn.Module):
    """A small CNN with BatchNorm and Dropout that can fail in forward or backward on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(0.5)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)
        self.fail: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn(self.conv1(x)))
        if self.fail == "forward":
            raise Boom("raised in the middle of the forward pass")
        if self.fail == "backward":
            x = BoomBackward.apply(x)
        x = F.relu(self.conv2(self.drop(x)))
        return self.fc(x.mean((2, 3)))


@pytest.fixture
def faulty() -> Faulty:
    m = Faulty()
    m.train()  # train mode: must run in eval and be restored
    m.conv2.eval()  # a mixed state must come back exactly
    m.fc.weight.requires_grad_(False)
    m.conv1.register_forward_hook(lambda *a: None)  # the user's own hook stays, alone
    return m


X = seeded_randn(2, 3, 8, 8, seed=3)


@pytest.mark.parametrize("method", ["gradient", "deconvnet", "guided_backprop"])
def test_model_and_input_untouched_after_success(faulty: Faulty, method: str) -> None:
    before = snapshot(faulty)
    x = X.clone()
    out = sw.saliency(faulty, x, method=method)
    ex = sw.Explainer(faulty, x)
    ex.saliency(method=method)
    ex.project("relu", 1)
    ex.project("conv2", 0, position=(2, 3))
    ex.receptive_field("conv2", 1, 1)
    ex.activation("bn")
    sw.project(faulty, x, "conv2", 2)
    sw.layers(faulty, x)
    assert out.shape == x.shape
    assert torch.equal(x, X) and not x.requires_grad and x.grad is None
    assert_unchanged(faulty, before)


def test_eval_mode_is_used_during_the_call(faulty: Faulty) -> None:
    # Dropout in train mode would make two calls differ; in eval they agree exactly.
    a = sw.saliency(faulty, X, target=0)
    b = sw.saliency(faulty, X, target=0)
    assert torch.equal(a, b)
    assert faulty.training and faulty.drop.training and not faulty.conv2.training


@pytest.mark.parametrize("where", ["forward", "backward"])
@pytest.mark.parametrize("method", ["gradient", "guided_backprop"])
@pytest.mark.parametrize("api", ["saliency", "explainer", "project"])
def test_model_untouched_after_exception(faulty: Faulty, where: str, method: str, api: str) -> None:
    before = snapshot(faulty)
    faulty.fail = where
    with pytest.raises(Boom):
        if api == "saliency":
            sw.saliency(faulty, X, method=method)
        elif api == "explainer":
            sw.Explainer(faulty, X).saliency(method=method)
        else:
            sw.project(faulty, X, "conv2", 0, method=method)
    faulty.fail = None
    assert_unchanged(faulty, before)
    # and the next call works and gives the same result as on a model that never failed
    clean = Faulty()
    clean.load_state_dict(faulty.state_dict())
    torch.testing.assert_close(sw.saliency(faulty, X, method=method), sw.saliency(clean, X, method=method))


def test_keyboard_interrupt_in_forward_hook_leaves_nothing_behind(faulty: Faulty) -> None:
    before = snapshot(faulty)

    def interrupt(*args: Any) -> None:
        raise KeyboardInterrupt

    h = faulty.conv2.register_forward_hook(interrupt)
    with pytest.raises(KeyboardInterrupt):
        sw.Explainer(faulty, X)
    h.remove()
    assert_unchanged(faulty, before)


def test_no_torch_function_mode_left_active(faulty: Faulty) -> None:
    n = torch._C._len_torch_function_stack()
    sw.Explainer(faulty, X).saliency(method="deconvnet")
    assert torch._C._len_torch_function_stack() == n
    # plain torch calls afterwards are ordinary: relu backward is the gradient again
    t = torch.tensor([-1.0, 2.0], requires_grad=True)
    (g,) = torch.autograd.grad(torch.relu(t), t, torch.tensor([5.0, -3.0]))
    assert torch.equal(g, torch.tensor([0.0, -3.0]))


def test_explainer_graph_does_not_leak_rules_into_user_autograd(faulty: Faulty) -> None:
    # After an Explainer is made, the user's own backward passes are untouched.
    faulty.eval()
    ex = sw.Explainer(faulty, X)
    ex.saliency(method="deconvnet")
    xr = X.clone().requires_grad_(True)
    (g_user,) = torch.autograd.grad(faulty(xr)[:, 0].sum(), xr)
    torch.testing.assert_close(g_user, sw.saliency(faulty, X, target=0))


@pytest.mark.parametrize("method", ["gradient", "deconvnet", "guided_backprop"])
def test_single_use_explainer_frees_graph_and_says_so(faulty: Faulty, method: str) -> None:
    # saliency() frees the graph during its one backward (faster); the map is the same, and a
    # second request on such an Explainer is a clear error rather than autograd's message.
    faulty.eval()
    kept = sw.Explainer(faulty, X).saliency(0, method)
    once = sw.Explainer(faulty, X, retain_graph=False)
    torch.testing.assert_close(once.saliency(0, method), kept, rtol=0, atol=0)
    with pytest.raises(sw.ModelError, match="retain_graph=False"):
        once.saliency(1, method)
    torch.testing.assert_close(sw.saliency(faulty, X, 0, method), kept, rtol=0, atol=0)


def test_resnet_unchanged_bitwise() -> None:
    m = torchvision.models.resnet18(weights=None)
    m.train()
    before = snapshot(m)
    ex = sw.Explainer(m, seeded_randn(1, 3, 32, 32, seed=4))
    for method in ("gradient", "deconvnet", "guided_backprop"):
        ex.saliency(method=method)
    ex.project("layer2.1.relu", 3, call=1)
    assert_unchanged(m, before)
    assert global_hook_state() == before["global_hooks"]


class WithGelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.gelu = nn.GELU()
        self.conv2 = nn.Conv2d(4, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gelu(self.conv(x))
        x = F.relu(self.conv2(x))
        return self.fc(x.mean((2, 3)))


def test_non_relu_activation_warns_once_naming_it() -> None:
    m = WithGelu().eval()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        sw.saliency(m, X, method="guided_backprop")
        sw.saliency(m, X, method="guided_backprop")
        sw.Explainer(m, X).saliency(method="guided_backprop")
    hits = [w for w in rec if issubclass(w.category, NonReLUActivationWarning)]
    assert len(hits) == 1
    assert "GELU" in str(hits[0].message) and "plain gradient" in str(hits[0].message)


def test_non_relu_activation_no_warning_for_gradient() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonReLUActivationWarning)
        sw.saliency(WithGelu().eval(), X, method="gradient")
