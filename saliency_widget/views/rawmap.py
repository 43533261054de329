"""A raw map as every surface receives it: two 16-bit planes, rendered with :class:`DisplayOptions`.

Every display option is computed from two ``(H, W)`` planes of a ``(C, H, W)`` map:
``abs = max_c |g|`` (sign "absolute") and ``sum = sum_c g`` (the other signs), each quantised
to 16 bits with one scale (:func:`saliency_widget.viz.bundle.quantised_planes`; a
single-channel map's ``abs`` plane is ``|sum|`` with its own scale, so only ``sum`` travels).
The offline page stores these planes; the widget sends them once as binary
(:meth:`RawMap.to_bytes`) and its front end decodes them with ``js/planes.js`` and renders
them with ``js/render.js``. :meth:`RawMap.render` is the Python side of the
same arithmetic (:func:`saliency_widget.viz.render.render_map` on the decoded planes), so the
widget, the offline page and Python give the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..viz import render as R
from ..viz.bundle import quantised_planes
from .options import DisplayOptions

__all__ = ["RawMap", "Rendered"]


@dataclass(frozen=True)
class Rendered:
    """One map rendered with one :class:`DisplayOptions`.

    Attributes
    ----------
    rgb
        ``(H, W, 3)`` uint8, or None when the map has nothing to show.
    message
        Why ``rgb`` is None (all zeros under this sign, NaN/Inf), else None.
    vmax
        The value at the colormap's end (0.0 without image).
    cmap
        The colormap drawn (a signed map with a sequential ``cmap`` uses ``coolwarm``).
    """

    rgb: NDArray[np.uint8] | None
    message: str | None
    vmax: float
    cmap: str


@dataclass(frozen=True, eq=False)
class RawMap:
    """The two quantised planes of one map (or the message of a map that has none).

    Attributes
    ----------
    abs_q, sum_q
        ``(H, W)`` uint16 and int16 (None with a message).
    abs_scale, sum_scale
        Value of one step of each plane.
    message
        Why there are no planes (NaN/Inf in the map), else None.
    single
        True for a single-channel map: ``abs_q`` is ``|sum_q|`` and only ``sum_q`` is sent.
    """

    abs_q: NDArray[np.uint16] | None
    sum_q: NDArray[np.int16] | None
    abs_scale: float
    sum_scale: float
    message: str | None = None
    single: bool = False

    @classmethod
    def from_map(cls, saliency: NDArray[np.floating]) -> RawMap:
        """Quantise a ``(C, H, W)`` or ``(H, W)`` map (a map with NaN/Inf keeps only its message)."""
        raw = np.asarray(saliency, dtype=np.float64)
        bad = int(raw.size - np.count_nonzero(np.isfinite(raw)))
        if bad:
            return cls(None, None, 0.0, 0.0, f"map contains {bad} non-finite value(s) (NaN/Inf); nothing to show")
        aq, ascale, sq, sscale = quantised_planes(raw)
        if aq is None:  # single-channel: the abs plane is |sum| with its own scale
            return cls(np.abs(sq.astype(np.int32)).astype(np.uint16), sq, ascale, sscale, single=True)
        return cls(aq, sq, ascale, sscale)

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the planes (``(0, 0)`` without planes)."""
        return (0, 0) if self.abs_q is None else (int(self.abs_q.shape[0]), int(self.abs_q.shape[1]))

    def plane(self, sign: str) -> NDArray[np.float64]:
        """The decoded plane ``sign`` reads (``abs`` for "absolute", ``sum`` otherwise), as ``q * scale``."""
        if self.abs_q is None or self.sum_q is None:
            raise ValueError("a map without planes has no plane to decode")
        if sign == "absolute":
            return self.abs_q.astype(np.float64) * self.abs_scale
        return self.sum_q.astype(np.float64) * self.sum_scale

    def render(self, options: DisplayOptions, base: NDArray[np.uint8] | None = None) -> Rendered:
        """The map's pixels with ``options`` (``base``: the ``(H, W, 3)`` input, for the overlay)."""
        if self.message is not None:
            return Rendered(None, self.message, 0.0, options.shown_cmap)
        rm = R.render_map(self.plane(options.sign), sign=options.sign, clip_percentile=options.clip, cmap=options.cmap)
        if rm.rgb is None:
            return Rendered(None, rm.message, 0.0, options.shown_cmap)
        rgb = rm.rgb
        if options.overlay and base is not None and rgb.shape == base.shape:
            rgb = R.overlay(base, rgb, options.alpha, rm.weight)
        return Rendered(rgb, None, rm.vmax, options.shown_cmap)

    def to_bytes(self) -> bytes:
        """The binary the widget sends: the ``abs`` plane (uint16) then the ``sum`` plane (int16), little-endian.

        A single-channel map sends its ``sum`` plane alone (``meta()["single"]``).
        """
        if self.abs_q is None or self.sum_q is None:
            return b""
        if self.single:
            return self.sum_q.astype("<i2").tobytes()
        return self.abs_q.astype("<u2").tobytes() + self.sum_q.astype("<i2").tobytes()

    def meta(self) -> dict[str, Any]:
        """What the front end (``js/planes.js``) needs to decode :meth:`to_bytes`: shape, dtypes, scales, message."""
        return {"shape": list(self.shape), "dtype": ["<i2"] if self.single else ["<u2", "<i2"], "abs": self.abs_scale,
                "sum": self.sum_scale, "single": self.single, "message": self.message or ""}

    def all_zero(self) -> bool:
        """True when every value of the map is zero (nothing to show under any sign)."""
        return self.abs_q is not None and not bool(self.abs_q.any())

    def has_structure(self) -> bool:
        """True when the map has at least two distinct values (it shows more than one colour)."""
        return self.abs_q is not None and self.sum_q is not None and bool(np.ptp(self.sum_q) > 0 or np.ptp(self.abs_q) > 0)
