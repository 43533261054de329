"""The explorer's feature-visualization panel (widget/featpanel.py) on the bundled model."""

from __future__ import annotations

import base64
import html
import io
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from saliency_widget.engine import Explainer
from saliency_widget.models import shapes_cnn
from saliency_widget.views.pipeline import PANEL
from saliency_widget.widget import explore
from saliency_widget.widget.explorer import Explorer
from saliency_widget.widget.featpanel import SIZE, STEPS, FeatRequest, FeatResult, FeaturePanel
from tests.helpers import assert_unchanged, cnn_explorer, snapshot

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


# ---------------------------------------------------------------- exports carry what the panel shows
@pytest.fixture
def shown_explorer(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Explorer, list[tuple[str, dict[str, Any]]]]]:
    """A tiny-net explorer displayed in a fake notebook (its saved view's displays and updates are logged)."""
    import IPython.display

    log: list[tuple[str, dict[str, Any]]] = []

    class Handle:
        def update(self, data: dict[str, Any], raw: bool, metadata: dict[str, Any]) -> None:
            log.append(("update", data))

    def display(data: dict[str, Any], raw: bool = False, metadata: dict[str, Any] | None = None, display_id: Any = None) -> Any:
        log.append(("display", data))
        return Handle() if display_id else None

    monkeypatch.setattr(IPython.display, "display", display)
    w = cnn_explorer()
    w._ipython_display_()
    try:
        yield w, log
    finally:
        w.close()


def _visualize_filter(w: Explorer, channel: int) -> FeatResult:
    w.featpanel.steps, w.featpanel.size = 6, 24  # tiny: the panel's own requests use these too
    req = FeatRequest("filter", str(w.layer), channel, f"filter {channel} of {w.layer}", 6, 24)
    w.featpanel.request(req)
    assert w.featpanel.wait(120) and w.wait(60)
    res = w.featpanel.result
    assert res is not None and res.request == req
    return res


def test_to_png_adds_the_shown_visualization_as_a_fifth_titled_panel(shown_explorer: tuple[Explorer, list[Any]]) -> None:
    w, _ = shown_explorer
    before = np.asarray(_png(w.to_png()).convert("RGB"))
    res = _visualize_filter(w, 1)
    after = np.asarray(_png(w.to_png()).convert("RGB"))
    # one more 224 px panel and its 6 px gap, same height
    assert after.shape == (before.shape[0], before.shape[1] + PANEL + 6, 3)
    # its pixels: the panel's PNG scaled to the panel size (nearest), at the right end under the title row
    tile = np.asarray(_png(res.png).convert("RGB").resize((PANEL, PANEL), Image.Resampling.NEAREST))
    np.testing.assert_array_equal(after[6 + 14 : 6 + 14 + PANEL, -6 - PANEL : -6], tile)
    np.testing.assert_array_equal(after[:, : before.shape[1] - 6], before[:, : before.shape[1] - 6])  # the others unchanged


def test_to_html_shows_the_visualization_with_its_caption(shown_explorer: tuple[Explorer, list[Any]]) -> None:
    w, _ = shown_explorer
    assert "what the unit wants" not in w.to_html()  # nothing shown yet: no empty figure
    res = _visualize_filter(w, 2)
    page = w.to_html()
    assert f"data:image/png;base64,{base64.b64encode(res.png).decode()}" in page
    assert html.escape(res.caption) in page and f"channel(&#x27;{w.layer}&#x27;, 2)" in page


def test_the_saved_view_follows_a_new_visualization(shown_explorer: tuple[Explorer, list[Any]]) -> None:
    w, log = shown_explorer
    res = _visualize_filter(w, 3)
    updates = [d for kind, d in log if kind == "update"]
    assert updates, "the saved view was not refreshed after the visualization showed"
    assert base64.b64decode(updates[-1]["image/png"]) == w.to_png()
    assert res.title in updates[-1]["text/plain"] and res.title == f"what excites filter 3 of {w.layer}"


# ---------------------------------------------------------------- beside the top-9 grid
def test_the_visualization_sits_beside_the_top9_grid_and_follows_its_filter() -> None:
    import ipywidgets as W

    from tests.helpers import SIDE, seeded_rand, to_tensor
    from tests.nets import sequential_cnn

    image = Image.fromarray((np.random.default_rng(0).random((SIDE, SIDE, 3)) * 255).astype(np.uint8))
    w = explore(sequential_cnn(), image, transform=to_tensor, data=seeded_rand(6, 3, SIDE, SIDE, seed=5))
    try:
        assert w.wait(60)
        fp = w.featpanel
        fp.steps, fp.size = 6, 24
        w.ui.w_analyses.selected_index = 0  # opening the analyses builds the panel
        p = w.analysis_panel
        row = next(c for c in p.children if isinstance(c, W.HBox) and fp.w_beside_topk in c.children)
        assert p.w_out_img in row.children[0].children  # the grid, then "what excites it", in one row
        assert fp.w_image in fp.w_beside_topk.children and fp.w_image in fp.children[1].children  # one image, two places
        assert fp.w_topk_button.disabled  # nothing to visualize before a top-9 shows
        assert fp.w_image.layout.display == "none"  # no empty picture (a broken-image icon) before the first result
        p.w_follow.value = False
        p.w_filter.value = 1
        res = p.run("topk")
        c = res.channels[1]
        assert fp.w_topk_button.description == f"what excites filter {c}" and not fp.w_topk_button.disabled
        assert fp.result is None  # nothing computed before the button is pressed
        fp.w_topk_button.click()
        assert fp.wait(120)
        assert fp.result is not None and (fp.result.request.layer, fp.result.request.index) == (res.layer, c)
        assert fp.w_image.layout.display == "" and fp.w_image.value == fp.result.png
        p.w_filter.value = 2  # another filter: the button follows, the image stays until asked
        assert fp.w_topk_button.description == f"what excites filter {res.channels[2]}"
        assert fp.result.request.index == c
        fp.w_topk_button.click()
        assert fp.wait(120) and fp.result.request.index == res.channels[2]
        p.w_filter.value = 1  # back: the cached visualization shows at once
        assert fp.served[-1] == (f"channel('{res.layer}', {c})", "cached") and fp.result.request.index == c
    finally:
        w.close()


def test_moving_back_to_a_visualized_filter_shows_it_from_the_cache(shown_explorer: tuple[Explorer, list[Any]]) -> None:
    w, _ = shown_explorer
    first = _visualize_filter(w, 1)
    _visualize_filter(w, 2)
    w.channel = 1
    assert w.wait(60) and w.featpanel.wait(10)
    assert w.featpanel.result is first and w.featpanel.served[-1][1] == "cached"
    w.channel = 3  # never visualized: nothing is computed, the caption still names filter 1
    assert w.wait(60) and w.featpanel.wait(10)
    assert w.featpanel.result is first and len(w.featpanel.served) == 3
