"""The explorer's map panels: raw maps sent once as binary, drawn in the browser by ``js/render.js``.

A display-only change (sign, clip, colormap, overlay, alpha) changes the indices and numbers
the controls are linked to in the browser (``jsdlink``), and ``js/map_view.js`` draws the new
pixels from the planes it already holds: the kernel computes and encodes nothing.
"""

from __future__ import annotations

from typing import Any

import anywidget
import ipywidgets as W
import numpy as np
import traitlets
from numpy.typing import NDArray

from ..views.options import COLORMAPS, DIVERGING, SIGNS
from ..views.rawmap import RawMap
from ..viz import render as R
from ..viz.jsmodules import js_bundle

__all__ = ["MapCanvas", "MAP_ESM"]

MAP_ESM = "map_view.js"


def _luts() -> bytes:
    return b"".join(R.colormap_lut(name).tobytes() for name in COLORMAPS)


class MapCanvas(anywidget.AnyWidget):
    """One map panel: the raw map's planes (binary), the input image and the display options.

    Attributes are synced with ``js/map_view.js``; :meth:`show_map` sets a new map,
    :meth:`link_controls` ties the display controls to it in the browser.
    """

    _esm = js_bundle(MAP_ESM)

    planes = traitlets.Bytes(b"").tag(sync=True)
    meta = traitlets.Dict(default_value={"shape": [0, 0], "abs": 0.0, "sum": 0.0, "message": "no map"}).tag(sync=True)
    base = traitlets.Bytes(b"").tag(sync=True)
    luts = traitlets.Bytes(b"").tag(sync=True)
    cmaps = traitlets.List(traitlets.Unicode(), default_value=list(COLORMAPS)).tag(sync=True)
    signs = traitlets.List(traitlets.Unicode(), default_value=list(SIGNS)).tag(sync=True)
    diverging = traitlets.List(traitlets.Unicode(), default_value=list(DIVERGING)).tag(sync=True)
    sign_index = traitlets.Int(0).tag(sync=True)
    cmap_index = traitlets.Int(COLORMAPS.index("magma")).tag(sync=True)
    clip = traitlets.Float(99.0).tag(sync=True)
    overlay = traitlets.Bool(False).tag(sync=True)
    alpha = traitlets.Float(0.6).tag(sync=True)
    size = traitlets.Int(224).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(luts=_luts(), **kwargs)
        self._links: list[W.Widget] = []

    def show_map(self, raw: RawMap | None, base: NDArray[np.uint8], message: str | None = None, fraction: float | None = None) -> None:
        """Send a new map (its planes once, as binary) and the input image it may be drawn over.

        Parameters
        ----------
        raw
            The map's planes; None (or a map without planes) shows ``message`` instead.
        base
            ``(H, W, 3)`` uint8 input image.
        message
            Why there is no map (a method this model cannot run).
        fraction
            A partial map's share of the work done (0..1, in ``meta["fraction"]``); None: final.
        """
        with self.hold_sync():
            self.base = np.ascontiguousarray(base, dtype=np.uint8).tobytes()
            if raw is None or raw.message is not None:
                self.meta = {"shape": [0, 0], "abs": 0.0, "sum": 0.0, "message": (raw.message if raw else None) or message or "no map"}
                self.planes = b""
            else:
                self.planes = raw.to_bytes()
                self.meta = raw.meta() if fraction is None else {**raw.meta(), "fraction": float(fraction)}

    def link_controls(self, sign: W.Dropdown, cmap: W.Dropdown, clip: W.FloatSlider, overlay: W.Checkbox, alpha: W.FloatSlider) -> None:
        """Tie the display controls to this panel in the browser (``jsdlink``), so their changes never need the kernel.

        Selection widgets sync their ``index`` (not their value) with the front end, hence the
        indices. One-way: a control (set by the user, or from Python through the explorer's
        traits) drives the panel, never the reverse.
        """
        self.signs = [str(v) for _, v in _pairs(sign.options)]
        self.cmaps = [str(v) for _, v in _pairs(cmap.options)]
        self.luts = b"".join(R.colormap_lut(name).tobytes() for name in self.cmaps)
        self.set_options(sign.value, cmap.value, clip.value, overlay.value, alpha.value)
        self._links = [
            W.jsdlink((sign, "index"), (self, "sign_index")), W.jsdlink((cmap, "index"), (self, "cmap_index")),
            W.jsdlink((clip, "value"), (self, "clip")), W.jsdlink((overlay, "value"), (self, "overlay")),
            W.jsdlink((alpha, "value"), (self, "alpha")),
        ]

    def set_options(self, sign: str, cmap: str, clip: float, overlay: bool, alpha: float) -> None:
        """Set the display options from Python (the browser's links do the same on a control change)."""
        with self.hold_sync():
            self.sign_index = self.signs.index(sign)
            self.cmap_index = self.cmaps.index(cmap)
            self.clip, self.overlay, self.alpha = float(clip), bool(overlay), float(alpha)

    def close(self) -> None:
        """Close the links and the widget."""
        for link in self._links:
            link.close()
        super().close()


def _pairs(options: Any) -> list[tuple[Any, Any]]:
    return [o if isinstance(o, tuple) else (o, o) for o in options]
