"""Explainer.unavailable: which methods cannot run on a recorded forward, and why, in one line."""

from __future__ import annotations

import pytest
import torch

import saliency_widget as sw
from saliency_widget.engine import available_methods
from tests.nets import NoReLU, seeded, small_cnn

X = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("method", available_methods())
def test_a_relu_model_can_run_everything(method: str) -> None:
    assert sw.Explainer(small_cnn(), X).unavailable(method) is None


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("gradient", None),
        ("gradcam", None),
        ("occlusion", None),
        ("deconvnet", "DeconvNet is unavailable: it changes the backward pass at ReLUs, and this model has no ReLU (it uses Tanh)"),
        ("guided_backprop", "Guided Backprop is unavailable: it changes the backward pass at ReLUs, and this model has no ReLU (it uses Tanh)"),
    ],
)
def test_a_model_without_relu(method: str, expected: str | None) -> None:
    model = seeded(lambda: NoReLU())
    assert sw.Explainer(model, X).unavailable(method) == expected


def test_the_reason_matches_the_refusal() -> None:
    model = seeded(lambda: NoReLU())
    ex = sw.Explainer(model, X)
    with pytest.raises(sw.ModelError, match="ran no ReLU"):
        ex.saliency(method="deconvnet")


def test_without_interception() -> None:
    ex = sw.Explainer(small_cnn(), X, intercept=False)
    assert ex.unavailable("guided_backprop") == "Guided Backprop is unavailable: this Explainer was created with intercept=False"
    assert ex.unavailable("gradient") is None


def test_unknown_method_is_a_method_error() -> None:
    with pytest.raises(sw.MethodError, match="unknown method 'nope'"):
        sw.Explainer(small_cnn(), X).unavailable("nope")
