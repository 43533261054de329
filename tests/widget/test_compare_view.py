"""The compare view sends every method's raw map once, as binary, and display changes redraw it in the browser.

Kernel side: a display change after compare-all renders nothing (the render log and the
renderer's counters stay as they were); the tiles travel as one ``bytes`` buffer of 16-bit
planes, never as JSON lists. The browser side (the same pixels as Python) is in
tests/views/test_same_pixels_js.py and tests/browser/test_e2e_display_speed.py.
"""

from __future__ import annotations

import numpy as np

from saliency_widget.viz import render as R
from tests.helpers import cnn_explorer, settle


def test_a_display_change_after_compare_all_renders_nothing_in_the_kernel() -> None:
    w = cnn_explorer()
    try:
        w.view = "compare"
        settle(w)
        canvas = w.ui.w_compare
        assert w.ui.w_compare.layout.display == ""
        shown = [t.method for t in w._last.compare] if w._last is not None else []
        assert shown == w.methods and [t["method"] for t in canvas.tiles] == shown
        # one binary buffer of every tile's planes: 4 bytes per pixel (uint16 abs + int16 sum), 2 for a
        # single-channel map (a CAM, occlusion: the sum plane alone)
        assert isinstance(canvas.planes, bytes)
        sizes = [t["shape"][0] * t["shape"][1] * (2 if t["single"] else 4) for t in canvas.tiles if not t["message"]]
        assert {t["method"] for t in canvas.tiles if t.get("single")} >= {"gradcam", "occlusion"}
        assert len(canvas.planes) == sum(sizes) > 0
        assert all(not isinstance(v, list) or k in ("shape", "dtype") for t in canvas.tiles for k, v in t.items())
        assert all(k.startswith("compare:") or k in ("input", "feature", "map", "projection") for k in w.render_log[-1].images)

        png = w.images["compare"]  # an export's picture, drawn on request
        renders, log, counts = w.computations, len(w.render_log), dict(R.COUNTS)
        w.cmap = "viridis"
        w.sign = "signed"
        w.clip = 95.0
        w.overlay = True
        settle(w)
        assert w.computations == renders and len(w.render_log) == log  # no kernel render
        # the grid follows its controls in the browser (jsdlink), like the map panels
        assert {ln.target[1] for ln in canvas._links} == {"sign_index", "clip", "cmap_index", "overlay", "alpha"}
        assert dict(R.COUNTS) == counts  # no colormap applied, no PNG encoded
        assert w.images["compare"] != png  # an export draws the grid with the current options, on request
        first = R.from_png(w.images["compare"])
        assert first.ndim == 3 and first.shape[2] == 3 and np.ptp(first) > 0
    finally:
        w.close()


def test_a_click_on_a_compare_tile_shows_its_method() -> None:
    w = cnn_explorer()
    try:
        w.view = "compare"
        settle(w)
        w.ui.w_compare.picked = {"method": "gradcam", "seq": 1}  # what js/compare_view.js sets on a click
        settle(w)
        assert w.method == "gradcam" and w.view == "compare" and w.render_log[-1].state["method"] == "gradcam"
        w.ui.w_compare.picked = {"method": "nope", "seq": 2}  # unknown: ignored
        assert w.method == "gradcam"
    finally:
        w.close()
