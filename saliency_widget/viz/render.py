"""Pure map -> RGB rendering: colormaps, sign handling, clipping, overlays, PNG encoding.

Everything here works on numpy arrays and PIL only (no matplotlib, no torch), so reports
and the widget share one implementation and it can be tested without a notebook.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from ..errors import InputError, choices

__all__ = [
    "COLORMAPS",
    "COUNTS",
    "DIVERGING",
    "SIGNS",
    "RenderedMap",
    "apply_colormap",
    "colormap_lut",
    "compose",
    "draw_box",
    "label_font",
    "tile",
    "from_png",
    "input_to_rgb",
    "is_blank",
    "message_panel",
    "overlay",
    "panel_or_message",
    "prepare_map",
    "render_map",
    "to_png",
    "upscale",
]

Sign = Literal["absolute", "positive", "negative", "signed"]
SIGNS: tuple[str, ...] = ("absolute", "positive", "negative", "signed")

# Anchor colours (position in [0, 1], RGB 0..255), interpolated linearly into a 256-entry
# lookup table. The sequential maps approximate matplotlib's perceptual maps closely enough
# for saliency display without depending on matplotlib.
_ANCHORS: dict[str, list[tuple[float, tuple[int, int, int]]]] = {
    "viridis": [
        (0.0, (68, 1, 84)), (0.125, (71, 44, 122)), (0.25, (59, 81, 139)),
        (0.375, (44, 113, 142)), (0.5, (33, 144, 141)), (0.625, (39, 173, 129)),
        (0.75, (92, 200, 99)), (0.875, (170, 220, 50)), (1.0, (253, 231, 37)),
    ],
    "magma": [
        (0.0, (0, 0, 4)), (0.125, (28, 16, 68)), (0.25, (79, 18, 123)),
        (0.375, (129, 37, 129)), (0.5, (181, 54, 122)), (0.625, (229, 80, 100)),
        (0.75, (251, 135, 97)), (0.875, (254, 194, 135)), (1.0, (252, 253, 191)),
    ],
    "hot": [
        (0.0, (10, 0, 0)), (0.365, (255, 0, 0)), (0.746, (255, 255, 0)), (1.0, (255, 255, 255)),
    ],
    "gray": [(0.0, (0, 0, 0)), (1.0, (255, 255, 255))],
    # Diverging maps: the midpoint (0.5) is zero, so a signed map keeps its sign visible.
    "coolwarm": [
        (0.0, (59, 76, 192)), (0.25, (141, 176, 254)), (0.5, (221, 221, 221)),
        (0.75, (244, 154, 123)), (1.0, (180, 4, 38)),
    ],
    "bwr": [(0.0, (0, 0, 255)), (0.5, (255, 255, 255)), (1.0, (255, 0, 0))],
}
COLORMAPS: tuple[str, ...] = tuple(_ANCHORS)
DIVERGING: tuple[str, ...] = ("coolwarm", "bwr")

_LUT_CACHE: dict[str, NDArray[np.uint8]] = {}

#: How often this process applied a colormap (``"colormap"``) and encoded a PNG (``"png"``): a
#: browser test reads them to prove that a display-only change costs the kernel nothing.
COUNTS: Counter[str] = Counter()


@dataclass(frozen=True)
class RenderedMap:
    """Result of :func:`render_map`.

    Attributes
    ----------
    rgb
        ``(H, W, 3)`` uint8 image, or None when the map cannot be shown.
    message
        Human-readable reason why ``rgb`` is None (all zeros, NaN/Inf, one value everywhere), else None.
    weight
        ``(H, W)`` float array in [0, 1]: how strongly each pixel is highlighted, used as
        the per-pixel alpha of overlays. None together with ``rgb``.
    vmax
        The clipping value the map was divided by (0.0 when degenerate).
    """

    rgb: NDArray[np.uint8] | None
    message: str | None
    weight: NDArray[np.float64] | None
    vmax: float


def colormap_lut(name: str) -> NDArray[np.uint8]:
    """Return the ``(256, 3)`` uint8 lookup table of colormap ``name``.

    Parameters
    ----------
    name
        One of :data:`COLORMAPS`.

    Returns
    -------
    numpy.ndarray
        The lookup table; row 0 is the colour of 0.0, row 255 of 1.0.

    Raises
    ------
    InputError
        If the colormap is unknown (a ``ValueError``).
    """
    if name not in _ANCHORS:
        raise InputError(f"unknown colormap {name!r}; expected one of {choices(COLORMAPS)}")
    lut = _LUT_CACHE.get(name)
    if lut is None:
        pos = np.array([p for p, _ in _ANCHORS[name]], dtype=np.float64)
        cols = np.array([c for _, c in _ANCHORS[name]], dtype=np.float64)
        t = np.linspace(0.0, 1.0, 256)
        lut = np.stack([np.interp(t, pos, cols[:, k]) for k in range(3)], axis=1)
        lut = np.clip(np.rint(lut), 0, 255).astype(np.uint8)
        _LUT_CACHE[name] = lut
    return lut


def apply_colormap(values: NDArray[np.floating], cmap: str) -> NDArray[np.uint8]:
    """Map values in [0, 1] to RGB through ``cmap``.

    Parameters
    ----------
    values
        ``(H, W)`` array; values outside [0, 1] are clipped, NaN maps to 0.
    cmap
        Colormap name.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.
    """
    COUNTS["colormap"] += 1
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    idx = np.clip(np.rint(np.clip(v, 0.0, 1.0) * 255.0), 0, 255).astype(np.intp)
    return colormap_lut(cmap)[idx]


def _as_2d(saliency: NDArray[np.floating], sign: str) -> NDArray[np.float64]:
    """Reduce a ``(C, H, W)`` map to ``(H, W)``.

    ``absolute`` takes the channel maximum of ``|g|`` (Simonyan et al.); the signed
    variants sum over channels so that positive and negative evidence can cancel.
    """
    m = np.asarray(saliency, dtype=np.float64)
    if m.ndim == 2:
        return np.abs(m) if sign == "absolute" else m
    if m.ndim != 3:
        raise InputError(f"a map must be (H, W) or (C, H, W), got shape {m.shape} ({m.ndim} dimensions)")
    if sign == "absolute":
        return np.abs(m).max(axis=0)
    return m.sum(axis=0)


def prepare_map(
    saliency: NDArray[np.floating], sign: str = "absolute", clip_percentile: float = 99.0
) -> tuple[NDArray[np.float64] | None, str | None, float]:
    """Apply sign selection and percentile clipping.

    Parameters
    ----------
    saliency
        ``(H, W)`` or ``(C, H, W)`` raw map.
    sign
        ``"absolute"``, ``"positive"``, ``"negative"`` (values in [0, 1]) or
        ``"signed"`` (values in [-1, 1]).
    clip_percentile
        Values above this percentile of the (absolute) map saturate; 100 = no clipping.

    Returns
    -------
    values, message, vmax
        ``values`` is None when the map is degenerate (all zeros, NaN/Inf, or one value at
        every pixel under ``sign``), and ``message`` says why.
    """
    if sign not in SIGNS:
        raise InputError(f"unknown sign {sign!r}; expected one of {choices(SIGNS)}")
    if not 0.0 < clip_percentile <= 100.0:
        raise InputError(f"clip_percentile must be in (0, 100], got {clip_percentile!r}")
    raw = np.asarray(saliency, dtype=np.float64)
    bad = int(raw.size - np.count_nonzero(np.isfinite(raw)))
    if bad:
        return None, f"map contains {bad} non-finite value(s) (NaN/Inf); nothing to show", 0.0
    m = _as_2d(raw, sign)
    if sign == "positive":
        m = np.maximum(m, 0.0)
    elif sign == "negative":
        m = np.maximum(-m, 0.0)
    mag = np.abs(m)
    if not np.any(mag > 0):
        what = {"positive": "positive part", "negative": "negative part"}.get(sign, "map")
        return None, f"the {what} is all zeros; nothing to show", 0.0
    if m.size > 1 and m.max() == m.min():
        # one value everywhere would draw one flat colour: a blank panel that looks like a map
        # (e.g. occlusion on a model whose score no patch changes more than another)
        what = {"positive": "positive part", "negative": "negative part", "absolute": "map's magnitude"}.get(sign, "map")
        return None, f"the {what} is the same at every pixel; nothing to show", 0.0
    # Percentile over non-zero magnitudes would hide sparse maps; use all pixels but fall
    # back to the max when the percentile lands on zero (very sparse maps).
    vmax = float(np.percentile(mag, clip_percentile))
    if vmax <= 0.0:
        vmax = float(mag.max())
    if sign == "signed":
        return np.clip(m / vmax, -1.0, 1.0), None, vmax
    return np.clip(m / vmax, 0.0, 1.0), None, vmax


def render_map(
    saliency: NDArray[np.floating],
    *,
    sign: str = "absolute",
    clip_percentile: float = 99.0,
    cmap: str = "magma",
) -> RenderedMap:
    """Render a raw map to RGB.

    Parameters
    ----------
    saliency
        ``(H, W)`` or ``(C, H, W)`` raw map.
    sign, clip_percentile
        See :func:`prepare_map`.
    cmap
        Colormap. ``signed`` maps use a diverging colormap; if ``cmap`` is sequential,
        ``coolwarm`` is used instead so zero stays neutral.

    Returns
    -------
    RenderedMap
        The image, or a message explaining why there is none.
    """
    values, message, vmax = prepare_map(saliency, sign, clip_percentile)
    if values is None:
        return RenderedMap(None, message, None, 0.0)
    if sign == "signed":
        use = cmap if cmap in DIVERGING else "coolwarm"
        return RenderedMap(apply_colormap((values + 1.0) / 2.0, use), None, np.abs(values), vmax)
    return RenderedMap(apply_colormap(values, cmap), None, values, vmax)


def overlay(
    image: NDArray[np.uint8],
    heat: NDArray[np.uint8],
    alpha: float,
    weight: NDArray[np.floating] | None = None,
) -> NDArray[np.uint8]:
    """Blend a heatmap over an image.

    Parameters
    ----------
    image, heat
        ``(H, W, 3)`` uint8 images of the same size.
    alpha
        Overall opacity of the heatmap in [0, 1].
    weight
        Optional ``(H, W)`` per-pixel opacity in [0, 1] (so unimportant pixels show the
        image rather than the colormap's zero colour).

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.
    """
    if image.shape != heat.shape:
        raise InputError(f"image {image.shape} and heatmap {heat.shape} differ in shape; resize one to the other")
    a = float(np.clip(alpha, 0.0, 1.0))
    w = np.full(image.shape[:2], a) if weight is None else a * np.clip(weight, 0.0, 1.0)
    w = w[..., None]
    out = image.astype(np.float64) * (1.0 - w) + heat.astype(np.float64) * w
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def to_png(rgb: NDArray[np.uint8]) -> bytes:
    """Encode an ``(H, W, 3)`` or ``(H, W)`` uint8 array as PNG bytes."""
    COUNTS["png"] += 1
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def from_png(data: bytes) -> NDArray[np.uint8]:
    """Decode PNG bytes to an ``(H, W, 3)`` uint8 array."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def is_blank(rgb: NDArray[np.uint8]) -> bool:
    """True if every pixel has the same colour (an empty-looking panel)."""
    flat = np.asarray(rgb).reshape(-1, np.asarray(rgb).shape[-1] if np.asarray(rgb).ndim == 3 else 1)
    return bool(np.all(flat == flat[0]))


def draw_box(
    rgb: NDArray[np.uint8],
    box: tuple[int, int, int, int],
    color: tuple[int, int, int] = (0, 255, 0),
    width: int = 2,
) -> NDArray[np.uint8]:
    """Draw a half-open ``(y0, x0, y1, x1)`` rectangle outline on a copy of ``rgb``.

    The box is clipped to the image, so receptive fields that extend into the padding
    still show the visible part.
    """
    out = np.array(rgb, copy=True)
    h, w = out.shape[:2]
    y0, x0, y1, x1 = (int(v) for v in box)
    y0, x0 = max(0, y0), max(0, x0)
    y1, x1 = min(h, y1), min(w, x1)
    if y1 <= y0 or x1 <= x0:
        return out
    t = max(1, int(width))
    c = np.asarray(color, dtype=np.uint8)
    out[y0 : min(y0 + t, y1), x0:x1] = c
    out[max(y1 - t, y0) : y1, x0:x1] = c
    out[y0:y1, x0 : min(x0 + t, x1)] = c
    out[y0:y1, max(x1 - t, x0) : x1] = c
    return out


def upscale(rgb: NDArray[np.uint8], min_size: int) -> NDArray[np.uint8]:
    """Nearest-neighbour upscale by an integer factor so the short side is >= ``min_size``."""
    h, w = rgb.shape[:2]
    f = max(1, int(np.ceil(min_size / max(1, min(h, w)))))
    if f == 1:
        return rgb
    return np.repeat(np.repeat(rgb, f, axis=0), f, axis=1)


def label_font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """The font of every caption drawn into a PNG (panel titles, messages, colorbar ticks)."""
    return ImageFont.load_default()


def message_panel(text: str, size: tuple[int, int] = (128, 128)) -> NDArray[np.uint8]:
    """A light-grey ``(H, W, 3)`` panel with ``text`` word-wrapped on it (for PNG export)."""
    h, w = size
    im = Image.new("RGB", (w, h), (235, 235, 235))
    draw = ImageDraw.Draw(im)
    words, lines, line = text.split(), [], ""
    max_chars = max(8, w // 7)
    for word in words:
        cand = f"{line} {word}".strip()
        if len(cand) > max_chars and line:
            lines.append(line)
            line = word
        else:
            line = cand
    if line:
        lines.append(line)
    draw.multiline_text((4, 4), "\n".join(lines), fill=(120, 0, 0), font=label_font())
    return np.asarray(im)


def panel_or_message(
    image: bytes | NDArray[np.uint8] | None,
    message: str | None,
    size: tuple[int, int] = (128, 128),
) -> NDArray[np.uint8]:
    """The panel to show for one map: its image, or a message panel saying why there is none.

    Parameters
    ----------
    image
        PNG bytes or an ``(H, W, 3)`` uint8 array; None or empty bytes when nothing rendered.
    message
        Why there is no image (e.g. :attr:`RenderedMap.message`); None shows an empty panel.
    size
        ``(H, W)`` of the message panel.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8: the decoded image, else :func:`message_panel` of ``size``.
    """
    if isinstance(image, (bytes, bytearray)):
        if image:
            return from_png(bytes(image))
    elif image is not None:
        return np.asarray(image)
    return message_panel(message or "", size)


def compose(
    panels: Sequence[NDArray[np.uint8]],
    titles: Sequence[str] | None = None,
    height: int = 160,
    gap: int = 6,
) -> NDArray[np.uint8]:
    """Place panels side by side (each resized to ``height``) with optional titles above.

    Parameters
    ----------
    panels
        ``(H, W, 3)`` uint8 images.
    titles
        One caption per panel, drawn as text (never interpreted as markup).
    height
        Height every panel is resized to, keeping its aspect ratio.
    gap
        White space between panels, in pixels.

    Returns
    -------
    numpy.ndarray
        The composite ``(H', W', 3)`` uint8 image.
    """
    if not panels:
        raise InputError("compose() needs at least one panel, got none")
    title_h = 14 if titles else 0
    resized = []
    for p in panels:
        im = Image.fromarray(np.ascontiguousarray(p))
        w = max(1, round(im.width * height / im.height))
        resized.append(im.resize((w, height), Image.Resampling.NEAREST))
    total_w = sum(im.width for im in resized) + gap * (len(resized) + 1)
    canvas = Image.new("RGB", (total_w, height + title_h + 2 * gap), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x = gap
    for i, im in enumerate(resized):
        if titles:
            draw.text((x, gap // 2), str(titles[i])[:60], fill=(0, 0, 0), font=label_font())
        canvas.paste(im, (x, gap + title_h))
        x += im.width + gap
    return np.asarray(canvas)


def input_to_rgb(
    x: NDArray[np.floating],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> NDArray[np.uint8]:
    """Turn a ``(C, H, W)`` model input back into a displayable ``(H, W, 3)`` uint8 image.

    With ``mean``/``std`` the normalisation is undone; without, the tensor is min-max
    scaled (so an arbitrary preprocessing still gives a recognisable picture).
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 3:
        raise InputError(f"a model input must be (C, H, W), got shape {a.shape} ({a.ndim} dimensions)")
    if mean is not None and std is not None and len(mean) == a.shape[0] == len(std):
        a = a * np.asarray(std)[:, None, None] + np.asarray(mean)[:, None, None]
        a = np.clip(a, 0.0, 1.0)
    else:
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    if a.shape[0] == 1:
        a = np.repeat(a, 3, axis=0)
    elif a.shape[0] != 3:
        a = np.repeat(a.mean(axis=0, keepdims=True), 3, axis=0)
    return np.clip(np.rint(a.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)


def tile(images: Sequence[NDArray[np.uint8]], cols: int, cell: int, gap: int = 2) -> NDArray[np.uint8]:
    """Lay images out row-major on a white grid, each resized (nearest) to ``cell`` x ``cell``.

    Parameters
    ----------
    images
        ``(H, W, 3)`` uint8 images, any sizes.
    cols
        Images per row.
    cell
        Side of each tile in pixels.
    gap
        White border around and between tiles, in pixels.

    Returns
    -------
    numpy.ndarray
        ``(rows * (cell + gap) + gap, cols * (cell + gap) + gap, 3)`` uint8, with
        ``rows = ceil(len(images) / cols)``.
    """
    rows = math.ceil(len(images) / cols)
    out = np.full((rows * (cell + gap) + gap, cols * (cell + gap) + gap, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        pil = Image.fromarray(np.ascontiguousarray(im)).resize((cell, cell), Image.Resampling.NEAREST)
        y, x = gap + r * (cell + gap), gap + c * (cell + gap)
        out[y : y + cell, x : x + cell] = np.asarray(pil)
    return out
