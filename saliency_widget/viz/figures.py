"""Figures of the analyses as PNG bytes: top-k grids, sanity-check line plots and galleries.

Drawn with numpy and PIL only (no matplotlib, no Jupyter), so notebooks, reports, scripts and
the docs share them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..analysis import SanityResult, TopActivations
from ..errors import InputError, choices
from . import render as R

__all__ = ["SANITY_METRICS", "sanity_gallery_png", "sanity_plot_png", "topk_grid_png"]

#: Per-step similarity series of :class:`~saliency_widget.analysis.SanityResult` that
#: :func:`sanity_plot_png` can draw.
SANITY_METRICS: tuple[str, ...] = ("spearman_abs", "spearman_signed", "ssim")

# Line colours of the sanity plot (matplotlib's tab10, first six).
_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def topk_grid_png(
    res: TopActivations,
    channel: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    cell: int = 64,
) -> bytes:
    """Zeiler-Fergus figure 2 for one filter: the k projections (left) and image patches (right).

    Parameters
    ----------
    res
        Result of :func:`~saliency_widget.analysis.top_activations`.
    channel
        The filter, one of ``res.channels``.
    mean, std
        Per-channel normalisation of the inputs, to show the patches in their colours;
        None min-max scales each patch.
    cell
        Side of each tile in pixels.

    Returns
    -------
    bytes
        A PNG: two ``ceil(sqrt(k))``-column grids side by side, titled.
    """
    projs, patches = [], []
    for img_patch, proj_patch in res.patches(channel):
        rm = R.render_map(proj_patch.cpu().numpy(), sign="signed", clip_percentile=99.5, cmap="coolwarm")
        projs.append(R.panel_or_message(rm.rgb, "zero", (cell, cell)))
        patches.append(R.input_to_rgb(img_patch.cpu().numpy(), mean, std))
    cols = max(1, math.ceil(math.sqrt(len(projs))))
    left, right = R.tile(projs, cols, cell), R.tile(patches, cols, cell)
    titles = [f"{res.layer} #{channel}: projections ({res.method})", "image patches"]
    return R.to_png(R.compose([left, right], titles, height=left.shape[0]))


def sanity_plot_png(results: Sequence[SanityResult], metric: str = "spearman_abs", size: tuple[int, int] = (560, 300)) -> bytes:
    """Similarity to the original map vs. randomisation step, one line per method.

    Parameters
    ----------
    results
        Sanity checks over the same steps (``results[0].steps`` labels the x axis).
    metric
        Which per-step series to draw, one of :data:`SANITY_METRICS`; the y axis spans [-0.2, 1].
    size
        ``(width, height)`` of the image in pixels.

    Returns
    -------
    bytes
        A PNG line chart of ``size``.

    Raises
    ------
    InputError
        ``results`` is empty or ``metric`` is not a series of :class:`SanityResult`.
    """
    if not results:
        raise InputError("sanity_plot_png needs at least one SanityResult, got none")
    if metric not in SANITY_METRICS:
        raise InputError(f"unknown sanity metric {metric!r}; expected one of {choices(SANITY_METRICS)}")
    w, h = size
    left, right, top, bottom = 46, 130, 20, 90
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    steps = results[0].steps
    n = len(steps)
    pw, ph = w - left - right, h - top - bottom
    lo, hi = -0.2, 1.0

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (pw * i / max(1, n - 1))
        y = top + ph * (hi - max(lo, min(hi, v))) / (hi - lo)
        return x, y

    for v in (0.0, 0.5, 1.0):
        y = xy(0, v)[1]
        d.line([(left, y), (left + pw, y)], fill=(225, 225, 225))
        d.text((4, y - 6), f"{v:.1f}", fill=(80, 80, 80))
    d.rectangle([left, top, left + pw, top + ph], outline=(150, 150, 150))
    for i, s in enumerate(steps):
        x = xy(i, 0)[0]
        label = s.split(".")[-1]
        d.text((x - 3, top + ph + 4 + 12 * (i % 2)), label[:10], fill=(60, 60, 60))
    d.text((left, h - 30), f"randomised from the top down to (cascading) -> {metric}", fill=(60, 60, 60))
    for k, r in enumerate(results):
        vals = [float(v) for v in getattr(r, metric)]
        pts = [xy(i, v) for i, v in enumerate(vals) if math.isfinite(v)]
        col = _COLORS[k % len(_COLORS)]
        if len(pts) > 1:
            d.line(pts, fill=col, width=2)
        for p in pts:
            d.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=col)
        d.text((left + pw + 10, top + 14 * k), r.method, fill=col)
    return R.to_png(np.asarray(img))


def sanity_gallery_png(res: SanityResult, image: int = 0, height: int = 96) -> bytes:
    """The map of one image after each randomisation step, side by side.

    Parameters
    ----------
    res
        A sanity check; ``res.maps`` has shape ``(steps, N, H, W)``.
    image
        Which of the N images to show.
    height
        Height of each panel in pixels.

    Returns
    -------
    bytes
        A PNG with one titled panel per step (a message panel where the map is degenerate).
    """
    n = int(res.maps.shape[1])
    if not -n <= image < n:
        raise InputError(f"image {image} is out of range: the sanity check holds {n} image(s), 0..{n - 1}")
    panels, titles = [], []
    for s, m in zip(res.steps, res.maps[:, image]):
        rm = R.render_map(m.cpu().numpy(), sign="absolute", clip_percentile=99.0)
        panels.append(R.panel_or_message(rm.rgb, rm.message, (height, height)))
        titles.append(s.split(".")[-1])
    return R.to_png(R.compose(panels, titles, height=height))
