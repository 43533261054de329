"""Robustness round 3 (issue 26), the analyses panel: data the model cannot take is one line in the panel."""

from __future__ import annotations

import torch

from saliency_widget.widget.analyses import AnalysisPanel
from tests.helpers import SIDE, seeded_rand, to_tensor
from tests.nets import small_cnn


def test_explore_data_with_the_wrong_channel_count_then_top9_names_its_shape_and_what_the_model_expects() -> None:
    """Item 9: ``explore(data=<(N, 1, H, W) tensor>)`` for an RGB model, then top-9: one error line, no traceback."""
    data = seeded_rand(5, 1, SIDE, SIDE, seed=5)
    p = AnalysisPanel(small_cnn(), data=data, transform=to_tensor)
    p.w_layer.value = "features.1"
    assert p.run("topk") is None
    text = p.w_out_html.value
    assert f"batch of shape (5, 1, {SIDE}, {SIDE})) do not fit the model" in text and "first convolution expects 3" in text
    assert "Traceback" not in text and "RuntimeError" not in text
    assert p.result is None and p.w_out_img.layout.display == "none"


def test_explore_data_of_uint8_pixels_then_top9_says_to_preprocess() -> None:
    data = (seeded_rand(3, 3, SIDE, SIDE, seed=1) * 255).to(torch.uint8)
    p = AnalysisPanel(small_cnn(), data=data, transform=to_tensor)
    p.w_layer.value = "features.1"
    assert p.run("topk") is None
    assert "have dtype torch.uint8; the model takes floating-point images" in p.w_out_html.value
