"""The compare view's composite: every method's tile, in rows, under a readable title."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..viz import render as R

__all__ = ["compare_grid", "TITLE_PX"]

#: Font size of the tile titles: text ~14 px tall when the view shows at its own size (the
#: default 10 px font made titles ~7 px tall once the browser scaled the composite down).
TITLE_PX = 14


def _titled_row(tiles: Sequence[np.ndarray], titles: Sequence[str], height: int, gap: int = 6) -> np.ndarray:
    """One row of tiles (resized to ``height``) with a strip of titles above them."""
    body = R.compose(tiles, None, height=height, gap=gap)
    strip = Image.new("RGB", (body.shape[1], TITLE_PX + 6), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default(size=TITLE_PX)
    x = gap
    for tile, title in zip(tiles, titles):
        draw.text((x, 1), str(title)[:40], fill=(0, 0, 0), font=font)
        x += max(1, round(tile.shape[1] * height / tile.shape[0])) + gap
    return np.concatenate([np.asarray(strip), body], axis=0)


def compare_grid(tiles: Sequence[np.ndarray], titles: Sequence[str], per_row: int = 5, height: int = 186) -> np.ndarray:
    """The compare view's tiles in rows of ``per_row``, so the composite is shown at its own size.

    One row of nine tiles is ~1500 px wide and the browser shrinks it (titles became ~7 px tall).

    Parameters
    ----------
    tiles
        ``(H, W, 3)`` uint8 tiles (each resized to ``height``, keeping its aspect ratio).
    titles
        One title per tile, drawn as text (never markup) in a :data:`TITLE_PX` font.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8; rows are left-aligned on white.
    """
    rows = [_titled_row(tiles[i : i + per_row], titles[i : i + per_row], height) for i in range(0, len(tiles), per_row)]
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(padded, axis=0)
