"""ReLU rules applied through hooks on the recorded graph's ReLU nodes (engine/relugraph.py).

The forward runs natively; each ReLU node of the Explainer's own graph gets a post hook that
applies the current rule at backward time. These tests pin what that must never do (touch a
node outside the forward, leave a rule behind after a map) and the one case where the graph
hides a ReLU (an in-place ReLU on a view), which falls back to the interceptor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

import saliency_widget as sw
from saliency_widget.engine.intercept import ReLUInterceptor
from saliency_widget.engine.relugraph import GraphRules
from saliency_widget.engine.rules import GUIDED_BACKPROP, ReLURule
from tests.helpers import RefReLU, seeded_randn
from tests.nets import seeded

METHODS = ["gradient", "deconvnet", "guided_backprop"]


class Net(nn.Module):
    """conv-relu-conv-relu-linear; ``form`` picks how the second ReLU runs (``ref`` = the reference ReLU)."""

    def __init__(self, form: str = "module") -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 3)
        self.form = form
        self.ref: str | None = None

    def relu(self, t: torch.Tensor) -> torch.Tensor:
        return RefReLU.apply(t, self.ref) if self.ref is not None else F.relu(t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c2(self.relu(self.c1(x)))
        if self.form == "view_inplace" and self.ref is not None:
            h = torch.cat([self.relu(h[:, :2]), h[:, 2:]], 1)
        elif self.form == "view_inplace":
            h = h * 1
            h[:, :2].relu_()  # in place on a view: the graph keeps it inside a CopySlices node
        return self.fc(h.flatten(1))


def _reference(net: Net, x: torch.Tensor, target: torch.Tensor, method: str) -> torch.Tensor:
    net.ref = method
    try:
        xr = x.clone().requires_grad_(True)
        out = net(xr)
        (g,) = torch.autograd.grad(out.gather(1, target.view(-1, 1)).sum(), xr)
    finally:
        net.ref = None
    return g


@pytest.mark.parametrize("method", METHODS)
def test_inplace_relu_on_a_view_falls_back_to_the_interceptor_and_is_exact(method: str) -> None:
    net = seeded(lambda: Net("view_inplace"), 3).double().eval()
    x = seeded_randn(2, 3, 8, 8, seed=4, dtype=torch.float64)
    target = torch.tensor([0, 2])
    ex = sw.Explainer(net, x)
    assert isinstance(ex._interceptor, ReLUInterceptor)  # the graph hid a ReLU: interceptor path
    assert ex._interceptor.relu_calls == 2
    assert_close(ex.saliency(target, method), _reference(net, x, target, method), rtol=0, atol=1e-12)


def test_a_plain_model_uses_the_graph_hooks() -> None:
    net = seeded(lambda: Net(), 3).double().eval()
    ex = sw.Explainer(net, seeded_randn(1, 3, 8, 8, seed=4, dtype=torch.float64))
    assert isinstance(ex._interceptor, GraphRules)
    assert ex._interceptor.relu_calls == 1 and not ex._interceptor.hidden


class CachesARelu(nn.Module):
    """Adds a bias that went through a ReLU in an earlier forward (a node outside the engine's forward)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.raw = nn.Parameter(torch.tensor([0.5, -0.25]))
        self.cached = torch.relu(self.raw * 1)  # made once, with its own ReLU node

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        return h.mean((2, 3)) + self.cached


def test_a_relu_node_from_outside_the_forward_is_left_alone() -> None:
    model = seeded(CachesARelu, 1).eval()
    x = seeded_randn(1, 3, 6, 6, seed=2)
    ex = sw.Explainer(model, x)
    ex.saliency(0, "guided_backprop")
    assert ex._interceptor is not None and ex._interceptor.relu_calls == 1  # the conv's ReLU only
    # the user's own backward through the cached node still gets the plain ReLU gradient
    seed = torch.tensor([-1.0, 1.0])
    (g,) = torch.autograd.grad(model.cached, model.raw, seed, retain_graph=True)
    assert_close(g, torch.tensor([-1.0, 0.0]), rtol=0, atol=0)


def test_a_backward_outside_the_engine_gets_the_plain_gradient_after_a_map() -> None:
    net = seeded(lambda: Net(), 3).double().eval()
    x = seeded_randn(1, 3, 8, 8, seed=4, dtype=torch.float64)
    ex = sw.Explainer(net, x)
    ex.saliency(1, "deconvnet")
    rec = ex.record("fc")
    (g,) = torch.autograd.grad(rec.tensor[0, 1], ex._rec.x, retain_graph=True)
    assert_close(g, _reference(net, x, torch.tensor([1]), "gradient"), rtol=0, atol=1e-12)


@dataclass(frozen=True)
class OwnArithmetic(ReLURule):
    """Guided Backprop written out with the forward output, as a third-party rule would."""

    def backward(self, grad: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:  # noqa: D102
        assert out is not None
        return grad * (out > 0) * (grad > 0)


def test_a_rule_with_its_own_arithmetic_gets_each_relus_output() -> None:
    net = seeded(lambda: Net(), 3).double().eval()
    x = seeded_randn(2, 3, 8, 8, seed=5, dtype=torch.float64)
    ex = sw.Explainer(net, x)
    seed = ex.target_seed(torch.tensor([0, 1]))
    own = ex.backward_to(ex._logits, seed, OwnArithmetic("own", forward_mask=True, signal_mask=True))
    assert_close(own, ex.backward_to(ex._logits, seed, GUIDED_BACKPROP), rtol=0, atol=0)


def test_an_explainer_made_under_no_grad_still_explains() -> None:
    net = seeded(lambda: Net(), 3).double().eval()
    x = seeded_randn(1, 3, 8, 8, seed=6, dtype=torch.float64)
    with torch.no_grad():
        ex = sw.Explainer(net, x)
    assert_close(ex.saliency(2, "guided_backprop"), _reference(net, x, torch.tensor([2]), "guided_backprop"), rtol=0, atol=1e-12)


class Activation(nn.Module):
    """conv, then ``act`` (a module or a function), then a ReLU."""

    def __init__(self, act: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.act(self.conv(x))).mean((2, 3))


@pytest.mark.parametrize(
    ("act", "name"),
    [
        (F.relu6, "ReLU6"),
        (nn.Hardtanh(), "Hardtanh"),
        (nn.LeakyReLU(), "LeakyReLU"),
        (nn.ELU(), "ELU"),
        (nn.SELU(), "SELU"),
        (nn.CELU(2.0), "CELU"),
        (nn.GELU(), "GELU"),
        (nn.SiLU(), "SiLU"),
        (nn.Mish(), "Mish"),
        (nn.Hardswish(), "Hardswish"),
        (nn.Softplus(), "Softplus"),
        (nn.PReLU(), "PReLU"),
        (nn.RReLU(), "RReLU"),
        (nn.Tanh(), "Tanh"),
        (nn.Sigmoid(), "Sigmoid"),
    ],
)
def test_other_activations_are_named_as_the_interceptor_names_them(act: Callable[[torch.Tensor], torch.Tensor], name: str) -> None:
    model = seeded(lambda: Activation(act), 2).eval()
    x = seeded_randn(1, 3, 6, 6, seed=1)
    ex = sw.Explainer(model, x)
    assert isinstance(ex._interceptor, GraphRules)
    assert dict(ex._interceptor.other_activations) == {name: 1}
    box = ex._rec.box
    assert box is not None
    mode = ReLUInterceptor(box)
    with torch.enable_grad(), mode:
        model(x.clone().requires_grad_(True))
    assert dict(mode.other_activations) == {name: 1}
