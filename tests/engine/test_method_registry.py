"""The method registry: declared order, required attributes, and ReLURule.is_plain_gradient."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
import torch

import saliency_widget as sw
from saliency_widget import MethodError
from saliency_widget.engine import (
    RULES,
    get_method,
    method_label,
    register_method,
    registry,
)
from saliency_widget.engine.methods import RuleMethod
from saliency_widget.engine.registry import BUILTIN_METHODS
from saliency_widget.engine.rules import ReLURule

BUILTIN_ORDER = [
    "gradient",
    "deconvnet",
    "guided_backprop",
    "gradcam",
    "guided_gradcam",
    "gradcampp",
    "xgradcam",
    "layercam",
    "eigencam",
    "scorecam",
    "smoothgrad",
    "integrated_gradients",
    "input_x_gradient",
    "occlusion",
    "lrp",
]


def test_builtins_are_declared_in_order() -> None:
    assert [m.name for m in BUILTIN_METHODS] == BUILTIN_ORDER
    assert sw.available_methods() == BUILTIN_ORDER


@pytest.mark.parametrize(
    ("name", "label", "paper"),
    [
        ("gradient", "Gradient", "Simonyan et al. 2013"),
        ("deconvnet", "DeconvNet", "Zeiler & Fergus 2014"),
        ("guided_backprop", "Guided Backprop", "Springenberg et al. 2014"),
        ("gradcam", "Grad-CAM", "Selvaraju et al. 2017"),
        ("guided_gradcam", "Guided Grad-CAM", "Selvaraju et al. 2017"),
        ("gradcampp", "Grad-CAM++", "Chattopadhay et al. 2018"),
        ("xgradcam", "XGrad-CAM", "Fu et al. 2020"),
        ("layercam", "LayerCAM", "Jiang et al. 2021"),
        ("eigencam", "Eigen-CAM", "Muhammad & Yeasin 2020"),
        ("scorecam", "Score-CAM", "Wang et al. 2020"),
        ("smoothgrad", "SmoothGrad", "Smilkov et al. 2017"),
        ("integrated_gradients", "Integrated Gradients", "Sundararajan et al. 2017"),
        ("input_x_gradient", "Gradient × Input", "Shrikumar et al. 2016"),
        ("occlusion", "Occlusion", "Zeiler & Fergus 2014"),
        ("lrp", "LRP", "Bach et al. 2015"),
    ],
)
def test_builtin_label_and_description(name: str, label: str, paper: str) -> None:
    m = get_method(name)
    assert m.label == label == method_label(name)
    # one line for a tooltip: "<label>: what it is (<paper>)"
    assert m.description.startswith(f"{label}: ")
    assert m.description.endswith(f"({paper})")
    assert "\n" not in m.description


@pytest.mark.parametrize(
    ("name", "needs_relu_rules", "single_backward"),
    [
        ("gradient", False, True),
        ("deconvnet", True, True),
        ("guided_backprop", True, True),
        ("gradcam", False, False),
        ("guided_gradcam", True, True),
        ("gradcampp", False, False),
        ("xgradcam", False, False),
        ("layercam", False, False),
        ("eigencam", False, False),
        ("scorecam", False, False),
        ("smoothgrad", False, False),
        ("integrated_gradients", False, False),
        ("input_x_gradient", False, True),
        ("occlusion", False, False),
        ("lrp", False, False),
    ],
)
def test_builtin_flags(name: str, needs_relu_rules: bool, single_backward: bool) -> None:
    m = get_method(name)
    assert (m.needs_relu_rules, m.single_backward) == (needs_relu_rules, single_backward)


@pytest.mark.parametrize(
    ("rule", "plain"),
    [
        (RULES["gradient"], True),
        (RULES["deconvnet"], False),
        (RULES["guided_backprop"], False),
        (ReLURule("pass_all", forward_mask=False, signal_mask=False), False),
    ],
)
def test_is_plain_gradient(rule: ReLURule, plain: bool) -> None:
    assert rule.is_plain_gradient is plain
    assert RuleMethod(rule, "x", "x: y (z)").needs_relu_rules is not plain


@dataclass(frozen=True)
class Doubled:
    """A third-party method: twice the gradient."""

    name: str = "test_doubled_gradient"
    label: str = "Doubled"
    description: str = "Doubled: twice the gradient (nobody 2024)"
    needs_relu_rules: bool = False
    needs_gradients: bool = True
    single_backward: bool = True

    def compute(self, explainer: Any, targets: torch.Tensor, **options: Any) -> torch.Tensor:
        return 2 * explainer.backward_logits(targets, RULES["gradient"])


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugins registered by a test vanish after it (other tests list the registry)."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_plugin_is_listed_after_the_builtins_and_works(scratch_registry: None) -> None:
    register_method(Doubled())
    assert sw.available_methods() == [*BUILTIN_ORDER, "test_doubled_gradient"]
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8, 3))
    x = torch.randn(2, 1, 4, 4)
    torch.testing.assert_close(
        sw.saliency(net, x, target=1, method="test_doubled_gradient"), 2 * sw.saliency(net, x, target=1)
    )
    with pytest.raises(MethodError, match="already registered"):
        register_method(Doubled())


@dataclass(frozen=True)
class NoFlags:
    name: str = "test_no_flags"
    label: str = "No flags"

    def compute(self, explainer: Any, targets: torch.Tensor, **options: Any) -> torch.Tensor:
        raise AssertionError("never called")


@dataclass(frozen=True)
class WrongType:
    name: str = "test_wrong_type"
    label: str = "Wrong"
    description: str = "Wrong: a flag that is not a bool (nobody 2024)"
    needs_relu_rules: bool = False
    needs_gradients: bool = True
    single_backward: Any = "yes"
    compute: Any = None


@pytest.mark.parametrize(
    ("method", "pattern"),
    [
        (NoFlags(), "cannot register method 'test_no_flags'.*missing " + re.escape("['description', 'needs_relu_rules', 'needs_gradients', 'single_backward']")),
        (WrongType(), r"'test_wrong_type'.*missing \['compute'\]; single_backward must be bool, got str"),
    ],
)
def test_register_rejects_incomplete_methods(scratch_registry: None, method: Any, pattern: str) -> None:
    with pytest.raises(MethodError, match=pattern):
        register_method(method)
    assert method.name not in sw.available_methods()
