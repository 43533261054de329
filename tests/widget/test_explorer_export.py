""""export PNG" is a browser download of the current view (issue 17, item 6); to_png(path) stays for scripts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from saliency_widget.views.pipeline import PANEL
from saliency_widget.viz import render as R
from saliency_widget.widget import Explorer
from saliency_widget.widget.view import map_title
from tests.helpers import cnn_explorer, settle


@pytest.fixture
def w() -> Explorer:
    widget = cnn_explorer()
    yield widget
    widget.close()


def test_export_button_sends_the_view_as_a_download_and_writes_no_file(
    w: Explorer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sent: list[tuple[Any, Any]] = []
    monkeypatch.setattr(w.ui.w_canvas, "send", lambda content, buffers=None: sent.append((content, buffers)))
    w.w_export.click()
    assert len(sent) == 1
    content, buffers = sent[0]
    assert content["type"] == "download" and content["mime"] == "image/png"
    assert re.fullmatch(r"saliency_\d{8}-\d{6}\.png", content["filename"])
    assert buffers == [w.to_png()]
    assert R.from_png(buffers[0]).ndim == 3
    assert w.status == f"downloaded the view as {content['filename']}"
    assert list(tmp_path.iterdir()) == []  # nothing written into the kernel's folder


def test_to_png_still_writes_a_file(w: Explorer, tmp_path: Path) -> None:
    data = w.to_png(tmp_path / "view.png")
    assert (tmp_path / "view.png").read_bytes() == data


def test_exported_map_title_names_method_class_and_probability(w: Explorer) -> None:
    assert w.wait(30)
    last = w._last
    assert last is not None
    assert map_title(last, "gradient") == f"Gradient: {last.class_label} p={last.probability:.3f}"
    assert map_title(None, "smoothgrad") == "SmoothGrad"


def _scale_rows(w: Explorer) -> tuple[np.ndarray, int]:
    """The PNG of the view and the row index of its colour strips (under the four square panels)."""
    png = R.from_png(w.to_png())
    assert all(R.from_png(w.images[k]).shape[0] == R.from_png(w.images[k]).shape[1] for k in ("input", "map", "projection"))
    # R.compose: a 6 px gap around panels, 14 px of titles, the panels at PANEL rows, then the 26-row scales
    assert png.shape[:2] == (6 + 14 + PANEL + 26 + 6, 6 + 4 * (PANEL + 6)), png.shape
    return png, 6 + 14 + PANEL + 5  # a row in the middle of the 10-row strip


@pytest.mark.parametrize("cmap", ["magma", "viridis"])
def test_to_png_shows_each_map_with_its_colour_scale(w: Explorer, cmap: str) -> None:
    # Issue 29: the widget and to_html() show a colour scale under each map; to_png() had none.
    w.cmap = cmap
    settle(w)
    png, y = _scale_rows(w)
    ramp = R.apply_colormap(np.linspace(0.0, 1.0, PANEL)[None, :], cmap)[0]  # the colormap from its low to its high end
    for x0 in (6 + 1 * (PANEL + 6), 6 + 3 * (PANEL + 6)):  # the map and the projection
        np.testing.assert_array_equal(png[y, x0:x0 + PANEL], ramp)
        labels = png[y + 8:y + 20, x0:x0 + PANEL]
        assert (labels < 128).any(axis=2).any(axis=0)[:20].any() and (labels < 128).any(axis=2).any(axis=0)[-40:].any()  # "0" ... vmax
    # the input and the feature map have no scale: blank rows as high, so every panel lines up
    for x0 in (6, 6 + 2 * (PANEL + 6)):
        assert (png[y - 5:y + 21, x0:x0 + PANEL] == 255).all()


def test_to_png_scale_follows_the_sign(w: Explorer) -> None:
    w.sign = "signed"  # a diverging colormap, from -vmax to +vmax
    settle(w)
    png, y = _scale_rows(w)
    np.testing.assert_array_equal(png[y, 6 + PANEL + 6:6 + 2 * PANEL + 6], R.apply_colormap(np.linspace(0.0, 1.0, PANEL)[None, :], w.cmap)[0])
    assert w.cmap == "coolwarm"
