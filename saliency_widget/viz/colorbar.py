"""A map's colour scale: the colormap strip with its value range and sign convention, under a map.

Pure numpy + PIL like :mod:`saliency_widget.viz.render`, whose colormaps it draws.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from ..errors import InputError, choices
from .render import DIVERGING, SIGNS, apply_colormap, label_font

__all__ = ["colorbar", "colorbar_labels", "with_colorbar"]


def colorbar_labels(sign: str, vmax: float) -> tuple[str, str, str]:
    """The ``(left, middle, right)`` labels of a map's colour scale.

    ``absolute``/``positive`` run from 0 to ``vmax`` (the clip value, where the colormap
    saturates); ``negative`` from 0 to ``-vmax``; ``signed`` from ``-vmax`` through 0 to ``+vmax``.
    """
    if sign not in SIGNS:
        raise InputError(f"unknown sign {sign!r}; expected one of {choices(SIGNS)}")
    v = f"{vmax:.3g}"
    return {
        "absolute": ("0", "|value|", v),
        "positive": ("0", "positive part", v),
        "negative": ("0", "negative part", f"-{v}"),
        "signed": (f"-{v}", "0", f"+{v}"),
    }[sign]


def colorbar(sign: str, vmax: float, cmap: str = "magma", width: int = 224, height: int = 26) -> NDArray[np.uint8]:
    """A colour scale strip with its value range: ``(height, width, 3)`` uint8.

    Parameters
    ----------
    sign, cmap
        As given to :func:`render_map` (a signed map uses its diverging colormap).
    vmax
        :attr:`RenderedMap.vmax`: the value at the colormap's end (values beyond saturate).
    width, height
        Size in pixels; the top 10 rows are the strip, the rest the labels.

    Returns
    -------
    numpy.ndarray
        The strip, with ``0 .. vmax`` (``-vmax .. 0 .. +vmax`` when signed) written under it.
    """
    left, mid, right = colorbar_labels(sign, vmax)
    use = (cmap if cmap in DIVERGING else "coolwarm") if sign == "signed" else cmap
    strip = apply_colormap(np.tile(np.linspace(0.0, 1.0, width), (10, 1)), use)
    im = Image.new("RGB", (width, height), (255, 255, 255))
    im.paste(Image.fromarray(strip), (0, 0))
    draw = ImageDraw.Draw(im)
    font = label_font()
    y = 11
    draw.text((1, y), left, fill=(0, 0, 0), font=font)
    draw.text(((width - draw.textlength(mid, font=font)) / 2, y), mid, fill=(0, 0, 0), font=font)
    draw.text((width - 1 - draw.textlength(right, font=font), y), right, fill=(0, 0, 0), font=font)
    return np.asarray(im)


def with_colorbar(
    rgb: NDArray[np.uint8], sign: str, vmax: float, cmap: str = "magma", height: int = 160
) -> NDArray[np.uint8]:
    """``rgb`` resized to ``height`` rows (aspect kept) with its 26-row :func:`colorbar` below, for composites.

    Returns
    -------
    numpy.ndarray
        ``(height + 26, W, 3)`` uint8.
    """
    im = Image.fromarray(np.ascontiguousarray(rgb))
    w = max(1, round(im.width * height / im.height))
    big = np.asarray(im.resize((w, height), Image.Resampling.NEAREST))
    return np.concatenate([big, colorbar(sign, vmax, cmap, width=w)], axis=0)
