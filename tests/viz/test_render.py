"""Rendering maps to images (saliency_widget.viz.render): degenerate maps, colormaps, clipping, boxes."""

from __future__ import annotations

import numpy as np
import pytest

from saliency_widget.viz import render as R


def test_render_degenerate_and_colormaps() -> None:
    nan = np.zeros((3, 8, 8))
    nan[0, 1, 1] = np.nan
    assert "non-finite" in R.render_map(nan).message
    assert "all zeros" in R.render_map(np.zeros((8, 8))).message
    pos = np.abs(np.random.RandomState(0).randn(3, 8, 8))
    assert "negative part is all zeros" in R.render_map(pos, sign="negative").message
    for name in R.COLORMAPS:
        lut = R.colormap_lut(name)
        assert lut.shape == (256, 3) and lut.dtype == np.uint8
    signed = R.render_map(np.array([[-1.0, 0.0, 1.0]]), sign="signed", cmap="magma", clip_percentile=100)
    cw = R.colormap_lut("coolwarm")
    assert (signed.rgb[0, 0] == cw[0]).all() and (signed.rgb[0, 2] == cw[255]).all()
    with pytest.raises(ValueError):
        R.colormap_lut("nope")


def test_render_clip_and_box() -> None:
    m = np.arange(100, dtype=float).reshape(10, 10)
    v, msg, vmax = R.prepare_map(m, "absolute", 50.0)
    assert msg is None and vmax == pytest.approx(np.percentile(m, 50)) and v.max() == 1.0
    boxed = R.draw_box(np.zeros((10, 10, 3), np.uint8), (-3, 2, 5, 8), width=1)
    assert (boxed[0, 2:8] == (0, 255, 0)).all() and (boxed[4, 2:8] == (0, 255, 0)).all()
    assert (boxed[2, 3] == 0).all()
