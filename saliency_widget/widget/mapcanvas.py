"""The explorer's map panels: raw maps sent once as binary, drawn in the browser by ``js/render.js``.

A display-only change (any :class:`~saliency_widget.views.options.DisplayOptions` field) changes
the indices and numbers the controls are linked to in the browser (``jsdlink``), and
``js/map_view.js`` (one map) or ``js/compare_view.js`` (the compare view's tiles) draws the new
pixels from the planes it already holds: the kernel computes and encodes nothing. The synced
option traits, their links and :meth:`DisplayCanvas.set_options` are generated from the
options' specs (:func:`~saliency_widget.views.options.display_specs`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anywidget
import ipywidgets as W
import numpy as np
import traitlets
from numpy.typing import NDArray

from ..views.options import COLORMAPS, DIVERGING, DisplayOptions, display_specs
from ..views.pipeline import CompareTile
from ..views.rawmap import RawMap
from ..viz import render as R
from ..viz.jsmodules import js_bundle
from .optionwidgets import canvas_link, canvas_trait, canvas_trait_name, spec_traits

__all__ = ["COMPARE_ESM", "CompareCanvas", "DisplayCanvas", "MAP_ESM", "MapCanvas"]

MAP_ESM = "map_view.js"
COMPARE_ESM = "compare_view.js"


def _luts(names: Sequence[str]) -> bytes:
    return b"".join(R.colormap_lut(name).tobytes() for name in names)


def _choices() -> dict[str, list[str]]:
    return {s.name: [str(c) for c in s.choices] for s in display_specs() if s.kind == "choice"}


class DisplayCanvas(anywidget.AnyWidget):
    """What every map panel shares: the display options (one synced trait each), the colormaps and the input image.

    ``option_specs`` tells the front end each option's name, kind and trait; ``choices`` the
    names a choice's index refers to (``choices["cmap"]`` is also the order of ``luts``).
    """

    option_specs = traitlets.List(traitlets.Dict()).tag(sync=True)
    choices = traitlets.Dict().tag(sync=True)
    base = traitlets.Bytes(b"").tag(sync=True)
    luts = traitlets.Bytes(b"").tag(sync=True)
    diverging = traitlets.List(traitlets.Unicode(), default_value=list(DIVERGING)).tag(sync=True)
    size = traitlets.Int(224).tag(sync=True)
    # one synced trait per display option: <name>_index for a choice, <name> otherwise
    locals().update(spec_traits(display_specs(), canvas_trait))

    def __init__(self, **kwargs: Any) -> None:
        choices = _choices()
        specs = [{"name": s.name, "kind": s.kind, "trait": canvas_trait_name(s)} for s in display_specs()]
        super().__init__(option_specs=specs, choices=choices, luts=_luts(choices.get("cmap", COLORMAPS)), **kwargs)
        self._links: list[W.Widget] = []

    def link_controls(self, controls: Mapping[str, W.ValueWidget]) -> None:
        """Tie the display controls (``{option name: control}``) to this panel in the browser (``jsdlink``).

        Selection widgets sync their ``index`` (not their value) with the front end, hence the
        indices of a choice. One-way: a control (set by the user, or from Python through the
        explorer's traits) drives the panel, never the reverse.
        """
        choices = dict(self.choices)
        for spec in display_specs():
            if spec.kind == "choice":
                choices[spec.name] = [str(v) for _, v in _pairs(controls[spec.name].options)]
        with self.hold_sync():
            self.choices = choices
            self.luts = _luts(choices.get("cmap", COLORMAPS))
        self.set_options(DisplayOptions(**{s.name: controls[s.name].value for s in display_specs()}))
        self._links = [canvas_link(spec, controls[spec.name], self) for spec in display_specs()]

    def set_options(self, options: DisplayOptions) -> None:
        """Set the display options from Python (the browser's links do the same on a control change)."""
        with self.hold_sync():
            for spec in display_specs():
                value = getattr(options, spec.name)
                if spec.kind == "choice":
                    value = list(self.choices[spec.name]).index(value)
                setattr(self, canvas_trait_name(spec), value)

    def close(self) -> None:
        """Close the links and the widget."""
        for link in self._links:
            link.close()
        super().close()


class MapCanvas(DisplayCanvas):
    """One map panel: the raw map's planes (binary), the input image and the display options.

    :meth:`show_map` sets a new map, :meth:`link_controls` ties the display controls to it in
    the browser (``js/map_view.js`` draws it).
    """

    _esm = js_bundle(MAP_ESM)

    planes = traitlets.Bytes(b"").tag(sync=True)
    meta = traitlets.Dict(default_value={"shape": [0, 0], "abs": 0.0, "sum": 0.0, "message": "no map"}).tag(sync=True)

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


class CompareCanvas(DisplayCanvas):
    """The compare view: every method's raw map as one binary buffer, drawn as a grid of tiles by ``js/compare_view.js``.

    ``planes`` holds each tile's planes (:meth:`RawMap.to_bytes`) one after the other; ``tiles``
    says, per tile, its method, label, shape, scales, byte offset and message. A display change
    redraws every tile in the browser, with its own colour scale.
    """

    _esm = js_bundle(COMPARE_ESM)

    planes = traitlets.Bytes(b"").tag(sync=True)
    tiles = traitlets.List(traitlets.Dict()).tag(sync=True)
    columns = traitlets.Int(5).tag(sync=True)
    tile_size = traitlets.Int(160).tag(sync=True)
    #: ``{"method": name, "seq": n}`` of the last tile clicked in the browser.
    picked = traitlets.Dict().tag(sync=True)

    def show_tiles(self, tiles: Sequence[CompareTile], base: NDArray[np.uint8]) -> None:
        """Send every tile's planes once (one binary buffer) and the input image they may be drawn over."""
        chunks, meta, offset = [], [], 0
        for t in tiles:
            data = t.raw.to_bytes() if t.raw is not None else b""
            entry: dict[str, Any] = {"method": t.method, "label": t.label, "offset": offset, "length": len(data)}
            if t.raw is not None and data:
                entry.update(t.raw.meta())
            else:
                entry.update({"shape": [0, 0], "abs": 0.0, "sum": 0.0,
                              "message": (t.raw.message if t.raw is not None else None) or t.message or "no map"})
            chunks.append(data)
            meta.append(entry)
            offset += len(data)
        with self.hold_sync():
            self.base = np.ascontiguousarray(base, dtype=np.uint8).tobytes()
            self.planes = b"".join(chunks)
            self.tiles = meta

    def clear(self) -> None:
        """No tiles (the single view)."""
        with self.hold_sync():
            self.tiles = []
            self.planes = b""


def _pairs(options: Any) -> list[tuple[Any, Any]]:
    return [o if isinstance(o, tuple) else (o, o) for o in options]
