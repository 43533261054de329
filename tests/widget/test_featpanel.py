"""The explorer's feature-visualization panel (widget/featpanel.py) on the bundled model."""

from __future__ import annotations

import html
import io
import time
from collections.abc import Iterator

import pytest
import torch
from PIL import Image

from saliency_widget.engine import Explainer
from saliency_widget.models import shapes_cnn
from saliency_widget.widget import explore
from saliency_widget.widget.explorer import Explorer
from saliency_widget.widget.featpanel import SIZE, STEPS, FeatRequest, FeaturePanel
from tests.helpers import assert_unchanged, snapshot

LAYER = "features.relu5"


@pytest.fixture(scope="module")
def explorer() -> Iterator[Explorer]:
    w = explore(shapes_cnn())
    try:
        assert w.wait(60)
        yield w
    finally:
        w.close()


def _png(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_filter_button_shows_a_png_of_the_filters_visualization(explorer: Explorer) -> None:
    before = snapshot(explorer.model)
    explorer.layer = LAYER
    explorer.channel = 5
    assert explorer.wait(60)
    panel = explorer.featpanel
    panel.w_filter.click()
    assert panel.wait(120)
    res = panel.result
    assert res is not None and res.request == FeatRequest("filter", LAYER, 5, f"filter 5 of {LAYER}", STEPS, SIZE)
    assert panel.w_image.value == res.png and panel.w_image.format == "png"
    img = _png(bytes(panel.w_image.value))
    assert img.format == "PNG" and img.size == (SIZE, SIZE) and img.mode == "RGB"
    vis = res.visualization
    assert vis.images.shape == (1, 3, SIZE, SIZE) and vis.history.shape == (STEPS, 1)
    # the optimisation did its job: the objective grew well above its start
    assert float(vis.values[0]) > float(vis.history[0, 0]) + 0.5
    assert float(vis.history[-8:, 0].mean()) > float(vis.history[:8, 0].mean())
    # the caption names the objective, the steps and the final value
    cap = res.caption
    assert res.caption in html.unescape(panel.w_caption.value)
    assert f"channel('{LAYER}', 5)" in cap and f"{STEPS} steps" in cap and f"{float(vis.values[0]):.3g}" in cap
    assert_unchanged(explorer.model, before)


def test_channel_value_is_the_activation_mean_at_the_returned_input(explorer: Explorer) -> None:
    explorer.layer = LAYER
    explorer.channel = 5
    panel = explorer.featpanel
    panel.visualize_filter()
    assert panel.wait(120)
    assert panel.result is not None
    vis = panel.result.visualization
    act = Explainer(explorer.model, vis.inputs).activation(LAYER)  # (1, C, h, w), an independent forward pass
    torch.testing.assert_close(vis.values, act[:, 5].mean((1, 2)), rtol=1e-4, atol=1e-5)


def test_class_button_visualizes_the_selected_class(explorer: Explorer) -> None:
    explorer.target = 2
    assert explorer.wait(60)
    panel = explorer.featpanel
    panel.w_class.click()
    assert panel.wait(120)
    res = panel.result
    assert res is not None and res.request.kind == "class" and res.request.index == 2
    assert res.request.label == f"class {explorer.labels[2]!r}"
    assert _png(res.png).size == (SIZE, SIZE)
    vis = res.visualization
    assert vis.names == ["class_logit(2)"] and "class_logit(2)" in res.caption
    assert float(vis.values[0]) > float(vis.history[0, 0])
    assert vis.probabilities is not None and int(vis.probabilities[0].argmax()) == 2


def test_a_newer_request_cancels_the_running_one(explorer: Explorer) -> None:
    panel = FeaturePanel(explorer, steps=400, size=48)
    try:
        panel.request(FeatRequest("filter", LAYER, 1, "first", 400, 48))
        deadline = time.monotonic() + 60
        while panel.w_progress.value == 0.0 and time.monotonic() < deadline:  # the first one is running
            time.sleep(0.01)
        assert panel.w_progress.value > 0.0
        second = FeatRequest("filter", LAYER, 2, "second", 8, 48)
        panel.request(second)
        assert panel.wait(120)
        assert [s for _, s in panel.served] == ["cancelled", "done"]
        assert panel.served[1][0] == f"channel('{LAYER}', 2)"
        assert panel.result is not None and panel.result.request == second
        assert panel.result.visualization.history.shape == (8, 1)
        # asked again: served from the cache, at once
        panel.request(second)
        assert panel.served[-1][1] == "cached" and panel.wait(5)
    finally:
        panel.close()


def test_the_explorer_renders_while_a_visualization_runs(explorer: Explorer) -> None:
    panel = FeaturePanel(explorer, steps=300, size=48)
    try:
        panel.request(FeatRequest("filter", LAYER, 3, "long", 300, 48))
        while panel.w_progress.value == 0.0:
            time.sleep(0.01)
        n = explorer.computations
        explorer.method = "deconvnet" if explorer.method != "deconvnet" else "gradient"
        assert explorer.wait(60)  # served between two steps, not after the optimisation
        assert explorer.computations == n + 1
        assert not panel.wait(0)  # the optimisation is still running
        panel.close()  # stops at its next step
    finally:
        panel.close()
