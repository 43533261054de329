"""The channel grid: a thumbnail of every filter's activations in the current layer; a click selects one.

The thumbnails travel as one PNG atlas (binary, never JSON lists): ``cols`` tiles per row, each
tile ``th x tw`` pixels plus a one-pixel white gap, every filter scaled to its own range like the
feature-map panel (viridis; a filter with NaN/Inf is grey). ``js/channel_grid.js`` draws the
atlas scaled up, marks :attr:`ChannelGrid.selected` (the explorer's filter) and writes
:attr:`ChannelGrid.click` on a click; the explorer's view sets its filter slider from that. The atlas is rebuilt only when the layer or the image changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import anywidget
import numpy as np
import torch
import traitlets
from numpy.typing import NDArray

from ..errors import InputError
from ..viz import render as R
from ..viz.jsmodules import js_bundle

__all__ = ["ChannelGrid", "GRID_ESM", "MAX_TILE", "atlas"]

GRID_ESM = "channel_grid.js"
MAX_TILE = 24  # px: larger feature maps are average-pooled down to this (a thumbnail, not the map)
_COLS = 16


def atlas(activations: torch.Tensor | NDArray[np.floating], cols: int = _COLS, max_tile: int = MAX_TILE) -> tuple[NDArray[np.uint8], list[int]]:
    """Tile the ``(C, H, W)`` activations of one layer into one RGB image.

    Parameters
    ----------
    activations
        ``(C, H, W)`` activations of one image.
    cols
        Tiles per row (fewer when the layer has fewer filters).
    max_tile
        Longest tile side in pixels; larger maps are average-pooled to fit.

    Returns
    -------
    rgb : numpy.ndarray
        ``(rows * (th + 1), cols * (tw + 1), 3)`` uint8; tile ``c`` at row ``c // cols``, column ``c % cols``.
    shape : list of int
        ``[count, th, tw, cols]``, what the front end needs to map a click to a filter.
    """
    a = torch.as_tensor(activations).detach().float().cpu()
    if a.ndim != 3:
        raise ValueError(f"activations must be (C, H, W), got shape {tuple(a.shape)}")
    c, h, w = a.shape
    scale = min(1.0, max_tile / max(h, w))
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    finite = torch.isfinite(a).flatten(1).all(dim=1)
    a = torch.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    if (th, tw) != (h, w):
        a = torch.nn.functional.adaptive_avg_pool2d(a.unsqueeze(0), (th, tw))[0]
    flat = a.flatten(1)
    lo, hi = flat.amin(dim=1, keepdim=True), flat.amax(dim=1, keepdim=True)
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    idx = ((flat - lo) / span * 255.0).round().clamp(0, 255).to(torch.uint8).numpy().reshape(c, th, tw)
    tiles = R.colormap_lut("viridis")[idx]  # (C, th, tw, 3)
    tiles[~finite.numpy()] = 235
    cols = max(1, min(cols, c))
    rows = math.ceil(c / cols)
    out = np.full((rows * (th + 1), cols * (tw + 1), 3), 255, np.uint8)
    for i in range(c):
        y, x = (i // cols) * (th + 1), (i % cols) * (tw + 1)
        out[y:y + th, x:x + tw] = tiles[i]
    return out, [int(c), int(th), int(tw), int(cols)]


class ChannelGrid(anywidget.AnyWidget):
    """Every filter of one layer as a clickable thumbnail (``js/channel_grid.js``).

    Attributes
    ----------
    png : bytes
        The atlas of :func:`atlas` as PNG (a binary buffer on the wire).
    shape : list of int
        ``[count, th, tw, cols]`` of the atlas.
    selected : int
        The selected filter (marked; follows the explorer's filter slider).
    click : dict
        ``{"channel", "seq"}`` of the last click on a thumbnail (written by the browser).
    key : str
        What the atlas shows (``"<image version>/<layer>"``); a new key rebuilds it.
    """

    _esm = js_bundle(GRID_ESM)

    png = traitlets.Bytes(b"").tag(sync=True)
    shape = traitlets.List(traitlets.Int(), default_value=[0, 1, 1, 1]).tag(sync=True)
    selected = traitlets.Int(0).tag(sync=True)
    click = traitlets.Dict(default_value={}).tag(sync=True)
    key = traitlets.Unicode("").tag(sync=True)
    tile_px = traitlets.Int(28).tag(sync=True)

    def show(self, activations: Callable[[], Any] | Any, key: str) -> None:
        """Show the layer's ``(C, H, W)`` activations, read once per ``key`` (image version and layer).

        ``activations`` is the tensor or a function returning it (called only for a new ``key``).
        """
        if key != self.key:
            rgb, shape = atlas(activations() if callable(activations) else activations)
            with self.hold_sync():
                self.png, self.shape, self.key = R.to_png(rgb), shape, key

    def click_filter(self, channel: int) -> None:
        """Click the thumbnail of filter ``channel``, as the browser does.

        Raises
        ------
        InputError
            The layer shown has no filter ``channel``.
        """
        count = self.shape[0]
        if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not 0 <= int(channel) < count:
            raise InputError(f"filter {channel!r} is out of range: the grid shows {count} filters, valid 0..{count - 1}")
        self.click = {"channel": int(channel), "seq": int(self.click.get("seq", 0)) + 1}
