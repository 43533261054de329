"""viz.render's errors in the error family, panel_or_message, and report's message/figure HTML and pure explorer_html."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from saliency_widget.errors import InputError
from saliency_widget.viz import render as R
from saliency_widget.viz import report


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: R.colormap_lut("nope"), r"unknown colormap 'nope'; expected one of 'viridis', 'magma', .*'bwr'"),
        (lambda: R.prepare_map(np.ones((2, 2)), sign="up"), r"unknown sign 'up'; expected one of 'absolute', 'positive', 'negative', 'signed'"),
        (lambda: R.prepare_map(np.ones((2, 2)), clip_percentile=0), r"clip_percentile must be in \(0, 100\], got 0"),
        (lambda: R.render_map(np.ones((1, 1, 2, 2))), r"must be \(H, W\) or \(C, H, W\), got shape \(1, 1, 2, 2\)"),
        (lambda: R.overlay(np.zeros((2, 2, 3), np.uint8), np.zeros((3, 2, 3), np.uint8), 0.5), r"\(2, 2, 3\) and heatmap \(3, 2, 3\) differ"),
        (lambda: R.compose([]), "at least one panel"),
        (lambda: R.input_to_rgb(np.zeros((4, 4))), r"must be \(C, H, W\), got shape \(4, 4\)"),
    ],
)
def test_render_errors_are_input_errors(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        call()
    assert isinstance(info.value, ValueError)  # callers catching ValueError keep working


def test_panel_or_message_decodes_png() -> None:
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(R.panel_or_message(R.to_png(rgb), "unused", (5, 5)), rgb)


def test_panel_or_message_passes_arrays_through() -> None:
    rgb = np.zeros((2, 3, 3), np.uint8)
    assert R.panel_or_message(rgb, None) is rgb


@pytest.mark.parametrize("image", [None, b""])
def test_panel_or_message_falls_back_to_the_message(image: bytes | None) -> None:
    out = R.panel_or_message(image, "all zeros", (20, 30))
    np.testing.assert_array_equal(out, R.message_panel("all zeros", (20, 30)))
    assert out.shape == (20, 30, 3) and not R.is_blank(out)  # the text is drawn


def test_panel_or_message_without_message_is_an_empty_panel() -> None:
    out = R.panel_or_message(None, None, (4, 6))
    assert out.shape == (4, 6, 3) and R.is_blank(out) and tuple(out[0, 0]) == (235, 235, 235)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("error", "<span style='color:#b00'>a &lt;b&gt; &amp; c</span>"), ("note", "<i>a &lt;b&gt; &amp; c</i>")],
)
def test_message_html(kind: str, expected: str) -> None:
    assert report.message_html("a <b> & c", kind) == expected  # type: ignore[arg-type]


def test_message_html_unknown_kind() -> None:
    with pytest.raises(InputError, match="unknown message kind 'loud'; expected one of 'error', 'note'"):
        report.message_html("x", "loud")  # type: ignore[arg-type]


def test_figure_html_image_or_message() -> None:
    png = R.to_png(np.zeros((2, 2, 3), np.uint8))
    with_img = report.figure_html(png, "map <1>", "ignored", size=50)
    assert with_img.startswith('<figure><img src="data:image/png;base64,') and 'width="50"' in with_img
    assert with_img.endswith("<figcaption>map &lt;1&gt;</figcaption></figure>") and "ignored" not in with_img
    assert report.figure_html(None, "map", "all <zeros>") == (
        "<figure><div class='msg'>all &lt;zeros&gt;</div><figcaption>map</figcaption></figure>"
    )


def _page(**kw: Any) -> str:
    args: dict[str, Any] = {
        "panels": {"input": R.to_png(np.zeros((2, 2, 3), np.uint8)), "map": None, "compare": b"x"},
        "messages": {"map": "the map is <all> zeros", "input": None},
        "labels": ["cat", "<dog>", "owl"],
        "probs": [0.2, 0.7, 0.1],
        "state": {"target": 0, "method": "gradient"},
        "status": "ready & waiting",
    }
    args.update(kw)
    return report.explorer_html(**args)


def test_explorer_html_from_data() -> None:
    page = _page()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    figs = re.findall(r"<figcaption>([^<]*)</figcaption>", page)
    assert figs == ["input", "saliency map"]  # panel order; "compare" is not an explorer panel
    assert "<div class='msg'>the map is &lt;all&gt; zeros</div>" in page
    rows = re.findall(r"<tr( style=\"font-weight:600\")?><td>([^<]*)</td><td style='text-align:right'>([^<]*)</td>", page)
    assert rows == [("", "&lt;dog&gt;", "0.700"), (' style="font-weight:600"', "cat", "0.200"), ("", "owl", "0.100")]
    assert "<tr><th>method</th><td>Gradient</td></tr>" in page  # the method's label, not its key
    assert "<tr><th>class</th><td>cat (chosen)</td></tr>" in page
    assert "<p>ready &amp; waiting</p>" in page


def test_explorer_html_settings_are_readable_and_maps_have_colour_scales() -> None:
    state = {"version": 1, "method": "smoothgrad", "target": None, "layer": "features.3", "channel": 5, "position": None,
             "sign": "signed", "clip": 99.0, "cmap": "coolwarm", "overlay": True, "alpha": 0.5, "view": "single"}
    bar = R.to_png(np.full((26, 224, 3), 200, np.uint8))
    page = _page(panels={"input": R.to_png(np.zeros((2, 2, 3), np.uint8)), "map": R.to_png(np.ones((2, 2, 3), np.uint8))},
                 messages={}, state=state, colorbars={"map": bar})
    rows = dict(re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td></tr>", page))
    assert rows == {
        "method": "SmoothGrad",
        "class": "&lt;dog&gt; (the predicted class)",
        "feature map": "layer features.3, filter 5",
        "projected activation": "the filter&#x27;s strongest activation",
        "display": "signed (diverging), colormap coolwarm, clipped at the 99th percentile, over the input (opacity 0.50)",
        "view": "one method",
    }
    assert "None" not in page and "version" not in page
    assert page.count('class="colorbar"') == 1 and "saliency map colour scale" in page


def test_explorer_html_without_probabilities_or_int_target() -> None:
    page = _page(probs=None, state={"target": None})
    assert page.count("<td style='text-align:right'>0.000</td>") == 3 and "font-weight:600" not in page


def test_explorer_html_probs_must_match_labels() -> None:
    with pytest.raises(InputError, match=r"probs has shape \(2,\) but there are 3 labels"):
        _page(probs=[0.5, 0.5])


def test_explorer_html_escapes_labels() -> None:
    assert html.escape("<dog>") in _page() and "<dog>" not in _page()
