"""The data of an interactive report: quantised arrays in one compressed binary payload.

An interactive report (:mod:`saliency_widget.viz.interactive`) ships raw map values, not
pictures, so the reader's browser applies the display options (sign, clipping, colormap,
overlay) itself. This module is the encoding both sides agree on:

* a saliency map ``(C, H, W)`` becomes two ``(H, W)`` planes, the only reductions
  :func:`saliency_widget.viz.render.prepare_map` ever uses: ``abs`` = ``max_c |g|`` (sign
  ``absolute``) and ``sum`` = ``sum_c g`` (``positive``, ``negative``, ``signed``);
* a plane is quantised linearly with one scale per plane: ``abs`` as uint16
  (``q = rint(v / s)``, ``s = max / 65535``), ``sum`` as int16 (``s = max|v| / 32767``), so
  zero stays exactly zero and the error is at most ``s / 2`` (1/131070 of the plane's largest
  magnitude);
* a single-channel map (``(H, W)``, ``C = 1``, or C equal channels, as every CAM and
  occlusion repeat theirs) stores only its ``sum`` plane: its ``abs`` plane is ``|q_sum| * s``
  with ``s = s_sum / C`` (:func:`quantised_planes`; error at most 1/65534 of its largest
  magnitude), so the widget, the page and Python decode the same values from half the bytes;
* every array is appended to a :class:`Packer`; 16-bit arrays are stored filtered (each row's
  differences ``q[j] - q[j-1]`` modulo 2^16, then all low bytes before all high bytes, as
  PNG's "Sub" filter and HDF5's "shuffle" do: smooth maps then deflate to ~0.8 of the plain
  bytes); the payload is one zlib stream (the browser inflates it with the built-in
  ``DecompressionStream("deflate")``), base64 in the page;
* an array is referred to by a :class:`Ref`-shaped dict ``{"o": offset, "n": count, "t":
  dtype, "s": scale, "shape": [...]}`` (``"f": "sub"`` when filtered; ``"m": "abs"`` for an
  ``abs`` plane read from a ``sum`` plane's bytes); the decoded value is ``q * s`` (``|q| * s``)
  in float64, the same product in numpy and JavaScript (``js/planes.js``).

Pure numpy; nothing here imports torch or a Jupyter package.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError, choices

__all__ = [
    "BUDGET_BYTES",
    "DTYPES",
    "BundleSize",
    "Packer",
    "decode",
    "map_planes",
    "quantise",
    "quantised_planes",
    "single_channel",
]

#: Documented size budget of one interactive report: the bundled model, one image, every
#: registered method x top-5 classes, one layer of 64 filters with their projections.
BUDGET_BYTES = 5_000_000

#: Element types of the payload (little-endian), by the short names the viewer reads.
DTYPES: dict[str, str] = {"u1": "<u1", "u2": "<u2", "i2": "<i2"}

_QMAX = {"u2": 65535, "i2": 32767}


def quantise(values: NDArray[np.floating], kind: str) -> tuple[NDArray[np.integer], float]:
    """Quantise finite ``values`` linearly with one scale.

    Parameters
    ----------
    values
        Any shape; must be finite, and non-negative for ``kind="u2"``.
    kind
        ``"u2"`` (uint16, for magnitudes) or ``"i2"`` (int16, for signed values).

    Returns
    -------
    q, scale
        ``q`` of the same shape; ``q * scale`` is within ``scale / 2`` of ``values``
        (``scale`` is 0.0 for an all-zero array).

    Raises
    ------
    InputError
        Unknown ``kind``, non-finite values, or negative values for ``"u2"``.
    """
    if kind not in _QMAX:
        raise InputError(f"unknown quantisation {kind!r}; expected one of {choices(_QMAX)}")
    v = np.asarray(values, dtype=np.float64)
    if not np.isfinite(v).all():
        raise InputError("cannot quantise non-finite values (NaN/Inf); ship a message instead")
    if kind == "u2" and bool((v < 0).any()):
        raise InputError(f"uint16 quantisation needs non-negative values, got a minimum of {float(v.min())!r}")
    peak = float(np.abs(v).max()) if v.size else 0.0
    if peak == 0.0:
        return np.zeros(v.shape, dtype=DTYPES[kind]), 0.0
    scale = peak / _QMAX[kind]
    q = np.clip(np.rint(v / scale), -_QMAX[kind], _QMAX[kind])
    return q.astype(DTYPES[kind]), scale


def map_planes(saliency: NDArray[np.floating]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The two ``(H, W)`` planes every display option of a ``(C, H, W)`` or ``(H, W)`` map is computed from.

    Returns
    -------
    abs_plane, sum_plane
        ``max_c |g|`` and ``sum_c g`` in float64, as
        :func:`saliency_widget.viz.render.prepare_map` reduces the map.
    """
    m = np.asarray(saliency, dtype=np.float64)
    if m.ndim == 2:
        return np.abs(m), m
    if m.ndim != 3:
        raise InputError(f"a map must be (H, W) or (C, H, W), got shape {m.shape} ({m.ndim} dimensions)")
    return np.abs(m).max(axis=0), m.sum(axis=0)


def single_channel(saliency: NDArray[np.floating]) -> int:
    """``C`` when a ``(C, H, W)`` map's channels are all equal (1 for an ``(H, W)`` map), else 0.

    Such a map's ``abs`` plane is ``|sum| / C``: :func:`quantised_planes` stores only ``sum``.
    """
    m = np.asarray(saliency)
    if m.ndim == 2:
        return 1
    if m.ndim == 3 and all(np.array_equal(m[0], m[c]) for c in range(1, m.shape[0])):
        return int(m.shape[0])
    return 0


def quantised_planes(saliency: NDArray[np.floating]) -> tuple[NDArray[np.uint16] | None, float, NDArray[np.int16], float]:
    """The quantised planes of a finite ``(C, H, W)`` or ``(H, W)`` map: the one encoding of every surface.

    Returns
    -------
    abs_q, abs_scale, sum_q, sum_scale
        ``(H, W)`` uint16 ``abs`` and int16 ``sum`` with their scales; ``abs_q`` is None for a
        single-channel map (:func:`single_channel`): its ``abs`` plane is ``|sum_q| * abs_scale``
        with ``abs_scale = sum_scale / C``.
    """
    a, s = map_planes(saliency)
    sq, sscale = quantise(s, "i2")
    channels = single_channel(saliency)
    if channels:
        return None, sscale / channels, sq, sscale  # type: ignore[return-value]
    aq, ascale = quantise(a, "u2")
    return aq, ascale, sq, sscale  # type: ignore[return-value]


def _filter(a: NDArray[Any]) -> bytes:
    """16-bit ``a``'s bytes, filtered: row differences modulo 2^16 (the last axis), low bytes then high bytes."""
    q = a.astype(np.int64).reshape(-1, a.shape[-1] if a.ndim else 1)
    d = (np.diff(q, axis=1, prepend=0) & 0xFFFF).astype("<u2").ravel()
    b = d.view(np.uint8).reshape(-1, 2)
    return b[:, 0].tobytes() + b[:, 1].tobytes()


def _unfilter(data: bytes, kind: str, shape: list[int]) -> NDArray[Any]:
    """The inverse of :func:`_filter`: the stored 16-bit values of ``shape``."""
    b = np.frombuffer(data, dtype=np.uint8)
    n = b.size // 2
    d = (b[:n].astype(np.int64) | (b[n:].astype(np.int64) << 8)).reshape(-1, shape[-1] if shape else 1)
    q = (np.cumsum(d, axis=1) & 0xFFFF).astype("<u2")
    return q.view(DTYPES[kind]).reshape(shape)


@dataclass
class BundleSize:
    """Bytes of an interactive report, by part (filled in as the page is built).

    Attributes
    ----------
    parts
        Raw (decompressed) payload bytes per part name (``"maps"``, ``"features"``, ...).
    payload
        Compressed payload bytes (before base64).
    page
        The whole HTML page in bytes (UTF-8), 0 until it is assembled.
    """

    parts: dict[str, int] = field(default_factory=dict)
    payload: int = 0
    page: int = 0

    @property
    def raw(self) -> int:
        """Decompressed payload bytes."""
        return sum(self.parts.values())

    def summary(self, budget: int = BUDGET_BYTES) -> str:
        """One line: the page size, its budget and the raw size per part."""
        parts = ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in self.parts.items())
        mark = "within" if self.page <= budget else "OVER"
        return (
            f"{self.page / 1e6:.2f} MB page ({mark} the {budget / 1e6:.2f} MB budget); "
            f"payload {self.payload / 1e6:.2f} MB compressed from {self.raw / 1e6:.2f} MB ({parts})"
        )


class Packer:
    """Appends arrays to one binary buffer and hands out the references the viewer decodes.

    Offsets are aligned to 2 bytes so a 16-bit array never straddles an odd offset.
    """

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self.sizes = BundleSize()

    def add(self, array: NDArray[Any], part: str, scale: float = 1.0) -> dict[str, Any]:
        """Append ``array`` (uint8, uint16 or int16; 16-bit arrays filtered, see the module) and return its reference.

        Parameters
        ----------
        array
            The quantised values; its shape is kept in the reference.
        part
            The size-report bucket it counts in.
        scale
            Multiplier that turns a stored value into the real one.

        Returns
        -------
        dict
            ``{"o", "n", "t", "s", "shape"}`` (offset and count in elements of ``t``), and
            ``"f": "sub"`` for a filtered 16-bit array.
        """
        a = np.ascontiguousarray(array)
        kind = {("u", 1): "u1", ("u", 2): "u2", ("i", 2): "i2"}.get((a.dtype.kind, a.dtype.itemsize))
        if kind is None:
            raise InputError(f"cannot pack dtype {a.dtype}; expected one of {choices(DTYPES)}")
        data = a.astype(DTYPES[kind], copy=False).tobytes() if kind == "u1" or a.size == 0 else _filter(a)
        if self._size % 2:
            self._chunks.append(b"\0")
            self._size += 1
        ref = {"o": self._size, "n": int(a.size), "t": kind, "s": float(scale), "shape": [int(d) for d in a.shape]}
        if kind != "u1" and a.size:
            ref["f"] = "sub"
        self._chunks.append(data)
        self._size += len(data)
        self.sizes.parts[part] = self.sizes.parts.get(part, 0) + len(data)
        return ref

    def add_plane(self, values: NDArray[np.floating], kind: str, part: str) -> dict[str, Any]:
        """:func:`quantise` ``values`` and :meth:`add` them with their scale."""
        q, scale = quantise(values, kind)
        return self.add(q, part, scale)

    def add_map(self, saliency: NDArray[np.floating], part: str) -> dict[str, Any]:
        """The ``{"abs", "sum"}`` references of a finite map's planes (:func:`quantised_planes`).

        A single-channel map's ``abs`` reference points at its ``sum`` plane's bytes with
        ``"m": "abs"`` and its own scale.
        """
        aq, ascale, sq, sscale = quantised_planes(saliency)
        sum_ref = self.add(sq, part, sscale)
        if aq is None:
            return {"abs": {**sum_ref, "s": float(ascale), "m": "abs"}, "sum": sum_ref}
        return {"abs": self.add(aq, part, ascale), "sum": sum_ref}

    def raw(self) -> bytes:
        """The uncompressed buffer (what the viewer decodes references against)."""
        return b"".join(self._chunks)

    def payload_base64(self) -> str:
        """The buffer as one zlib stream, base64 (ASCII), for the page."""
        packed = zlib.compress(self.raw(), 9)
        self.sizes.payload = len(packed)
        return base64.b64encode(packed).decode("ascii")


def decode(buffer: bytes, ref: Mapping[str, Any]) -> NDArray[np.float64] | NDArray[np.uint8]:
    """The values a reference points at, as the viewer decodes them.

    Parameters
    ----------
    buffer
        The uncompressed payload (:meth:`Packer.raw`, or the inflated page payload).
    ref
        A reference returned by :meth:`Packer.add`.

    Returns
    -------
    numpy.ndarray
        uint8 data as stored (shape ``ref["shape"]``); 16-bit data as ``q * s`` in float64
        (``|q| * s`` with ``"m": "abs"``).
    """
    kind = str(ref["t"])
    if kind not in DTYPES:
        raise InputError(f"unknown element type {kind!r} in a bundle reference; expected one of {choices(DTYPES)}")
    n, o = int(ref["n"]), int(ref["o"])
    if ref.get("f") == "sub":
        q = _unfilter(buffer[o:o + 2 * n], kind, list(ref["shape"]))
    else:
        q = np.frombuffer(buffer, dtype=DTYPES[kind], count=n, offset=o).reshape(ref["shape"])
    if kind == "u1":
        return q.copy()
    v = q.astype(np.float64)
    return (np.abs(v) if ref.get("m") == "abs" else v) * float(ref["s"])
