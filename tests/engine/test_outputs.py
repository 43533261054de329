"""The output adapter: tensor, ``.logits``, ``{"logits"}`` and ``(logits, ...)`` all explain the same."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

import saliency_widget as sw
from saliency_widget.engine.outputs import logits_of
from saliency_widget.errors import ModelError


@dataclass
class Out:
    """Stand-in for a ModelOutput-like object without the Mapping interface."""

    logits: Any
    hidden: Any = None


Pair = namedtuple("Pair", ["scores", "aux"])

WRAPS: dict[str, Callable[[torch.Tensor], Any]] = {
    "tensor": lambda t: t,
    "attribute": lambda t: Out(t, hidden=t * 2),
    "dict": lambda t: {"aux": t * 3, "logits": t},
    "tuple": lambda t: (t, t.sum()),
    "list": lambda t: [t],
    "namedtuple": lambda t: Pair(t, None),
}


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3),
    ).eval()


class Wrapped(nn.Module):
    def __init__(self, net: nn.Module, wrap: Callable[[torch.Tensor], Any]) -> None:
        super().__init__()
        self.net = net
        self.wrap = wrap

    def forward(self, x: torch.Tensor) -> Any:
        return self.wrap(self.net(x))


@pytest.mark.parametrize("form", sorted(WRAPS))
def test_logits_of_returns_the_logits_tensor_itself(form: str) -> None:
    t = torch.arange(6.0).view(2, 3)
    assert logits_of(WRAPS[form](t)) is t


@pytest.mark.parametrize(
    ("output", "pattern"),
    [
        (torch.zeros(2, 3, 4, 4), r"returned a tensor of shape \(2, 3, 4, 4\)\. Wrap it"),
        (torch.zeros(3), r"returned a tensor of shape \(3,\)"),
        ({"scores": torch.zeros(2, 3)}, r"returned dict\. Wrap it"),
        ({"logits": None}, r"returned dict \(its 'logits' entry is NoneType\)"),
        (Out(None), r"returned Out \(its \.logits is NoneType\)"),
        ((torch.zeros(2, 3, 4),), r"returned tuple \(its first element is a tensor of shape \(2, 3, 4\)\)"),
        ((), r"returned tuple\. Wrap it"),
        ("logits", r"returned str\. Wrap it"),
        (None, r"returned NoneType\. Wrap it"),
    ],
)
def test_logits_of_refuses_everything_else(output: Any, pattern: str) -> None:
    with pytest.raises(ModelError, match=r"must return logits of shape \(N, K\); it " + pattern):
        logits_of(output)


def test_hugging_face_model_output_is_read() -> None:
    outputs = pytest.importorskip("transformers.modeling_outputs")
    t = torch.randn(2, 5)
    assert logits_of(outputs.ImageClassifierOutput(logits=t)) is t


X = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("form", sorted(set(WRAPS) - {"tensor"}))
@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("gradient", {}),
        ("guided_backprop", {}),
        ("gradcam", {"layer": "net.3"}),
        ("integrated_gradients", {"steps": 4}),
        ("occlusion", {"window": 4, "stride": 4}),
    ],
)
def test_every_method_reads_the_wrapped_logits(form: str, method: str, options: dict[str, Any]) -> None:
    net = _net()
    ref = sw.saliency(Wrapped(net, WRAPS["tensor"]), X, target=[0, 2], method=method, **options)
    got = sw.saliency(Wrapped(net, WRAPS[form]), X, target=[0, 2], method=method, **options)
    torch.testing.assert_close(got, ref, rtol=0, atol=0)


def test_explainer_logits_of_a_dict_model() -> None:
    net = _net()
    ex = sw.Explainer(Wrapped(net, WRAPS["dict"]), X)
    with torch.no_grad():
        torch.testing.assert_close(ex.logits, net(X))


def test_a_model_without_logits_is_refused_by_the_explainer() -> None:
    with pytest.raises(ModelError, match=r"returned dict\. Wrap it"):
        sw.saliency(Wrapped(_net(), lambda t: {"probs": t.softmax(1)}), X)
