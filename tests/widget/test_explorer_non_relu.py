"""explore() on a model without ReLU (GELU): every method that needs no ReLU rule renders, the others say why."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from saliency_widget.engine import available_methods, get_method
from saliency_widget.widget import Explorer, explore
from tests.nets import seeded

RULE_METHODS = [m for m in available_methods() if get_method(m).needs_relu_rules]
OTHER_METHODS = [m for m in available_methods() if not get_method(m).needs_relu_rules]


def _gelu_cnn() -> nn.Module:
    return seeded(lambda: nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.GELU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    )).eval()


def _to_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img.convert("RGB").resize((24, 24)), dtype=np.float32) / 255.0).permute(2, 0, 1) - 0.5


@pytest.fixture(scope="module")
def w() -> Explorer:
    rng = np.random.default_rng(3)
    widget = explore(_gelu_cnn(), Image.fromarray((rng.random((24, 24, 3)) * 255).astype(np.uint8)), transform=_to_tensor)
    yield widget
    widget.close()


def test_the_bundled_method_lists_are_both_non_empty() -> None:
    assert RULE_METHODS == ["deconvnet", "guided_backprop", "guided_gradcam"]
    assert "gradient" in OTHER_METHODS and "gradcam" in OTHER_METHODS


@pytest.mark.parametrize("method", OTHER_METHODS)
def test_methods_without_relu_rules_render(w: Explorer, method: str) -> None:
    w.method = method
    assert w.wait(120)
    assert w.render_log[-1].error is None, w.render_log[-1].error
    assert "map" in w.images and w.messages["map"] is None
    assert not w.status.startswith(("error", "unexpected")), w.status


@pytest.mark.parametrize("method", RULE_METHODS)
def test_relu_rule_methods_say_why_in_one_line(w: Explorer, method: str) -> None:
    w.method = method
    assert w.wait(60)
    assert w.render_log[-1].error is None, w.render_log[-1].error
    assert "map" not in w.images
    msg = w.messages["map"]
    assert msg == f"{get_method(method).label} is unavailable: it changes the backward pass at ReLUs, and this model has no ReLU (it uses GELU)"
    assert "unavailable" in w.w_map_msg.value
    assert w.status.startswith(f"{get_method(method).label} (no map) for "), w.status
    # the feature map and its projection still show, with the gradient rule, labelled as such
    assert "feature" in w.images and "projection" in w.images
    assert "the model has no ReLU, so DeconvNet is undefined: gradient projection" in w.w_proj_title.value


def test_tooltips_name_the_unavailable_methods(w: Explorer) -> None:
    tips = dict(zip([v for _, v in w.w_method.options], w.w_method.tooltips))
    assert tips["deconvnet"].startswith("DeconvNet is unavailable")
    assert tips["gradcam"] == get_method("gradcam").description


def test_compare_view_renders_with_messages_for_the_rule_methods(w: Explorer) -> None:
    w.method = "gradient"
    w.view = "compare"
    assert w.wait(180)
    assert w.render_log[-1].error is None and "compare" in w.images
    w.view = "single"
    assert w.wait(60)
