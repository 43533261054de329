"""The Explainer's public surface for method authors, and the checks every backward goes through.

The net is the hand-weighted one of test_tiny_net (redefined here so this folder stands alone):
relu output A: ch0 [[4, 3], [0, 5]], ch1 [[0, 0], [6, 0]]; logits [6, 12]. d logit0 / dA is 1
at ch1 (1, 0) only, d logit1 / dA is 2 there.
"""

from __future__ import annotations

import ast
import inspect
from types import ModuleType

import pytest
import torch
from torch.testing import assert_close

import saliency_widget as sw
from saliency_widget import LayerError, ModelError
from saliency_widget.engine import LayerKey, cam, occlusion, sampling
from saliency_widget.engine.rules import DECONVNET, GRADIENT
from tests.nets import HAND_X, HandWeightedNet

Tiny = HandWeightedNet  # the hand-weighted net of tests/engine/test_hand_weighted_net.py
X = HAND_X


def private_accesses(source: str) -> list[str]:
    """Every ``obj._name`` attribute access (single underscore, not dunder) in ``source``."""
    return [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
    ]


def test_private_access_detector_on_a_known_source() -> None:
    src = "def f(explainer):\n    with explainer._lock:\n        return explainer.inputs, explainer._x.__class__\n"
    assert private_accesses(src) == ["line 2: explainer._lock", "line 3: explainer._x"]


@pytest.mark.parametrize("module", [cam, sampling, occlusion], ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_methods_use_only_the_public_explainer_surface(module: ModuleType) -> None:
    # A method sees the Explainer through its public surface only, so every backward goes
    # through the checks (spent graph, in-place changes, ReLU rules); see Explainer's notes.
    assert private_accesses(inspect.getsource(module)) == []


def test_target_seed_literal() -> None:
    ex = sw.Explainer(Tiny(), torch.cat([X, X]))
    assert_close(ex.target_seed(torch.tensor([1, 0])), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))


@pytest.mark.parametrize(("target", "value"), [(0, 1.0), (1, 2.0)])
def test_layer_gradient_literal(target: int, value: float) -> None:
    ex = sw.Explainer(Tiny(), X)
    expected = torch.zeros(1, 2, 2, 2)
    expected[0, 1, 1, 0] = value
    assert_close(ex.layer_gradient("relu", torch.tensor([target])), expected)
    assert_close(ex.layer_gradient(LayerKey("relu"), torch.tensor([target])), expected)


@pytest.mark.parametrize("rule", [GRADIENT, DECONVNET], ids=lambda r: r.name)
def test_backward_to_from_the_logits_is_backward_logits(rule: object) -> None:
    ex = sw.Explainer(Tiny(), X)
    t = torch.tensor([0])
    assert_close(ex.backward_to(ex.record("fc2").edge, ex.target_seed(t), rule), ex.backward_logits(t, rule), rtol=0, atol=0)


def test_inputs_are_a_detached_copy_on_the_model_dtype() -> None:
    x = X.clone()
    ex = sw.Explainer(Tiny().double(), x)
    assert ex.inputs.dtype == torch.float64 and not ex.inputs.requires_grad
    assert_close(ex.inputs, x.double())
    assert ex.inputs.data_ptr() != x.data_ptr()


def test_layer_gradient_of_an_unknown_layer() -> None:
    with pytest.raises(LayerError, match=r"unknown layer 'nope'.*'conv'"):
        sw.Explainer(Tiny(), X).layer_gradient("nope", torch.tensor([0]))


METHODS_ON_THE_CACHED_FORWARD = ["gradient", "deconvnet", "guided_backprop", "gradcam", "guided_gradcam", "input_x_gradient"]


@pytest.mark.parametrize("first", ["gradient", "guided_backprop"])
@pytest.mark.parametrize("second", METHODS_ON_THE_CACHED_FORWARD)
def test_every_method_on_a_spent_explainer_raises_the_same_error(first: str, second: str) -> None:
    ex = sw.Explainer(Tiny(), X, retain_graph=False)
    ex.saliency(0, first)
    with pytest.raises(ModelError, match=r"retain_graph=False and its recorded graph was freed"):
        ex.saliency(0, second)


def test_gradcam_keeps_the_graph_for_what_follows() -> None:
    # Grad-CAM's backward stops at the layer and keeps the graph even without retain_graph,
    # so the guided backward of Guided Grad-CAM (or another map) can still run after it.
    ex = sw.Explainer(Tiny(), X, retain_graph=False)
    cam_map = ex.saliency(0, "gradcam")
    assert_close(ex.saliency(0, "gradcam"), cam_map, rtol=0, atol=0)
    ex.saliency(0, "gradient")
    with pytest.raises(ModelError, match="retain_graph=False"):
        ex.saliency(0, "gradcam")


@pytest.mark.parametrize("method", METHODS_ON_THE_CACHED_FORWARD)
def test_weights_changed_in_place_raise_model_error(method: str) -> None:
    net = Tiny()
    ex = sw.Explainer(net, X)
    with torch.no_grad():
        net.fc2.weight.mul_(2.0)  # saved for the backward of the recorded forward
    with pytest.raises(ModelError, match=r"changed in place after the Explainer was created"):
        ex.saliency(0, method)
