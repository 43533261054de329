"""The analysis panel, driven from Python, and its place in the explorer."""

from __future__ import annotations

import io

import torch
import torchvision
from PIL import Image

from saliency_widget.analysis import SanityResult, TopActivations
from saliency_widget.widget import explore
from saliency_widget.widget.analyses import AnalysisPanel, sanity_gallery_png, sanity_plot_png


def _png_ok(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG" and img.width > 50
    return img


def test_panel_topk_sanity_pointing() -> None:
    p = AnalysisPanel(dataset_size=24)
    p.w_layer.value = "features.relu3"
    res = p.run("topk")
    assert isinstance(res, TopActivations) and res.images_seen == 24
    assert p.w_progress.value == 1.0 and p.w_filter.max == len(res.channels) - 1
    first = p.w_out_img.value
    _png_ok(first)
    p.w_filter.value = 3  # paging through filters redraws the grid
    assert p.w_out_img.value != first and "filter 3" in p.w_out_html.value
    assert p.w_sanity_method.value == "gradient"  # no explorer: the first method of the registry
    p.w_sanity_method.value = "guided_backprop"  # the method chooser
    results = p.run("sanity")
    assert [r.method for r in results] == ["guided_backprop"]
    _png_ok(p.w_sanity_img.value)
    assert "<table" in p.w_sanity_html.value and "| original |" not in p.w_sanity_html.value
    grid = p.w_out_img.value
    res = p.run("pointing")
    assert res.n_images == 24 and "centre baseline" in p.w_pointing_html.value and "<table" in p.w_pointing_html.value
    assert p.w_out_img.value == grid and p.w_out_img.layout.display == ""  # the top-9 grid stays


def test_panel_pointing_refuses_foreign_model() -> None:
    p = AnalysisPanel(torchvision.models.resnet18(weights=None, num_classes=6).eval(), dataset_size=8)
    assert p.run("pointing") is None
    assert "bundled shapes data" in p.w_pointing_html.value and p.w_progress.description == "error"


def test_sanity_pngs() -> None:
    maps = torch.rand(3, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    r = SanityResult("gradient", "cascading", ["original", "fc", "conv"], [1.0, 0.5, 0.2], [1.0, 0.1, 0.0], [1.0, 0.6, 0.3], maps)
    _png_ok(sanity_plot_png([r]))
    _png_ok(sanity_gallery_png(r))


def test_explorer_builds_analyses_on_open() -> None:
    w = explore()
    try:
        assert getattr(w, "analysis_panel", None) is None
        w.w_analyses.selected_index = 0
        assert isinstance(w.analysis_panel, AnalysisPanel)
        assert w.w_analyses.children[0] is w.analysis_panel
    finally:
        w.close()
