"""What a newcomer can decode (issue 17, item 5): colour scales, the receptive-field caption,
the clip tooltip and a class chart with every class of a small model, values shown."""

from __future__ import annotations

import numpy as np
import pytest

from saliency_widget.viz import colorbar as CB
from saliency_widget.viz import render as R
from saliency_widget.widget import Explorer
from tests.helpers import cnn_explorer


@pytest.mark.parametrize(
    ("sign", "labels"),
    [
        ("absolute", ("0", "|value|", "0.0123")),
        ("positive", ("0", "positive part", "0.0123")),
        ("negative", ("0", "negative part", "-0.0123")),
        ("signed", ("-0.0123", "0", "+0.0123")),
    ],
)
def test_colorbar_labels(sign: str, labels: tuple[str, str, str]) -> None:
    assert CB.colorbar_labels(sign, 0.012345) == labels


@pytest.mark.parametrize(("sign", "cmap", "lut"), [("absolute", "magma", "magma"), ("signed", "magma", "coolwarm")])
def test_colorbar_strip_runs_through_the_colormap(sign: str, cmap: str, lut: str) -> None:
    bar = CB.colorbar(sign, 1.0, cmap, width=100)
    assert bar.shape == (26, 100, 3) and bar.dtype == np.uint8
    table = R.colormap_lut(lut)
    np.testing.assert_array_equal(bar[0, 0], table[0])  # left end: the colormap's start
    np.testing.assert_array_equal(bar[0, -1], table[-1])  # right end: where the map saturates
    assert (bar[12:, :, :] < 128).any()  # the labels are written under the strip


def test_with_colorbar_stacks_the_scale_under_the_resized_map() -> None:
    out = CB.with_colorbar(np.zeros((8, 16, 3), np.uint8), "absolute", 1.0, height=40)
    assert out.shape == (66, 80, 3)


@pytest.fixture
def w() -> Explorer:
    widget = cnn_explorer()
    yield widget
    widget.close()


def test_map_and_projection_have_colour_scales(w: Explorer) -> None:
    assert w.wait(30)
    last = w._last
    assert last is not None
    scales = {k: last.colorbar(k, w.display_options) for k in ("map", "projection")}  # what an export shows
    assert all(scales.values()) and R.from_png(scales["map"]).shape == (26, 224, 3)  # type: ignore[arg-type]
    w.sign = "signed"  # the browser draws its scale from the same tables (js/render.js colorbarRamp)
    np.testing.assert_array_equal(R.from_png(last.colorbar("map", w.display_options))[0, 0], R.colormap_lut("coolwarm")[0])  # type: ignore[arg-type]


def test_compare_tiles_carry_their_own_scale(w: Explorer) -> None:
    w.view = "compare"
    assert w.wait(60)
    rows = -(-len(w.methods) // 5)  # five tiles a row: the composite is not shrunk by the browser
    assert R.from_png(w.images["compare"]).shape[0] == rows * (160 + 26 + 20 + 2 * 6)  # map + scale + title strip + gaps


def test_receptive_field_caption_and_clip_tooltip(w: Explorer) -> None:
    assert w.wait(30)
    assert "receptive field" in w.ui.w_input_note.value
    assert w.w_clip.tooltip.startswith("clip the top (100 − clip)% of values to the colormap's end")


def test_class_chart_shows_every_class_of_a_small_model_top_first_with_values(w: Explorer) -> None:
    assert w.wait(30)
    probs = w._last.probs  # type: ignore[union-attr]
    k = probs.shape[0]
    assert k <= 8
    assert len(w.w_bars.x) == k  # every class, none hidden
    order = np.argsort(-probs, kind="stable")
    assert w.w_bars.x[0] == f"{w.labels[order[0]]}  {probs[order[0]]:.1%}"  # first bar = most probable, value in the name
    assert w.ui._xs.reverse  # ... drawn on top
    assert w.ui._ys.max == pytest.approx(float(probs.max()))  # scaled to the largest probability


@pytest.mark.parametrize(("count", "shape"), [(3, (218, 3 * 8 + 4 * 6, 3)), (7, (436, 5 * 8 + 6 * 6, 3))])
def test_compare_grid_wraps_rows_of_five(count: int, shape: tuple[int, int, int]) -> None:
    from saliency_widget.views.compare import compare_grid

    # 8x186 tiles keep their width at height 186; a 20 px title strip and 6 px gaps; rows padded to the widest
    out = compare_grid([np.zeros((186, 8, 3), np.uint8)] * count, ["t"] * count)
    assert out.shape == shape


def test_compare_titles_are_at_least_11_px_tall() -> None:
    from saliency_widget.views.compare import compare_grid

    out = compare_grid([np.full((186, 160, 3), 255, np.uint8)] * 2, ["Hg", "Integrated Gradients"])
    ink = np.nonzero((out[:20, :166] < 128).any(axis=(1, 2)))[0]  # rows of the first title with dark pixels
    assert ink.max() - ink.min() + 1 >= 11  # 'H' top to 'g' bottom, at the view's own size


def test_no_described_widget_has_a_null_tooltip(w: Explorer) -> None:
    from ipywidgets.widgets.widget_description import DescriptionWidget

    w.ui.w_analyses.selected_index = 0  # the analyses panel too, once built
    assert w.wait(30)
    stack: list[object] = list(w.children)
    found = []
    while stack:
        node = stack.pop()
        if isinstance(node, DescriptionWidget):
            found.append(node)
        stack.extend(getattr(node, "children", ()) or ())
    assert len(found) > 20 and all(x.tooltip is not None for x in found)
    described = {x.description: x.tooltip for x in found if x.description}
    assert all(described[d] for d in ("method", "view", "sample", "sign", "colormap", "clip %", "alpha", "layer", "filter"))
