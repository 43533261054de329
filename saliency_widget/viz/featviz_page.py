"""Write a :class:`~saliency_widget.featviz.result.Visualization` as PNG files and one HTML page.

Pure code (no Jupyter): used by ``saliency-widget visualize`` and usable from a script. The
page is offline: it names each objective, its final value and, when the model gives class
scores, its top class; the images are the PNG files next to it.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.atomic import replacing, write_atomic
from ..featviz.result import Visualization
from .render import compose, tile, to_png

__all__ = ["grid_png", "to_pil", "write_visualizations"]


def to_pil(vis: Visualization, i: int, scale: int = 1) -> Image.Image:
    """Image ``i`` of ``vis`` as an RGB PIL image (``(H * scale, W * scale)``, nearest-neighbour)."""
    arr = (vis.images[i].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    img = Image.fromarray(arr)
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST) if scale > 1 else img


def _rgb(vis: Visualization, i: int) -> np.ndarray:
    return np.asarray(to_pil(vis, i))


def grid_png(vis: Visualization, cols: int = 8, cell: int | None = None, titles: list[str] | None = None) -> bytes:
    """The images of ``vis`` as one PNG: a grid of ``cols`` columns, or, with ``titles``, one captioned row.

    Parameters
    ----------
    vis
        The visualization.
    cols
        Images per row of the grid.
    cell
        Side of each tile (default: the image side, at least 96).
    titles
        One caption per image: lay them out side by side with the captions above.

    Returns
    -------
    bytes
        PNG data.
    """
    side = cell or max(96, int(vis.images.shape[-1]))
    images = [_rgb(vis, i) for i in range(len(vis))]
    if titles is not None:
        return to_png(compose(images, titles, height=side))
    return to_png(tile(images, cols, side))


def write_visualizations(vis: Visualization, out: str | Path, title: str, labels: list[str] | None = None, stems: list[str] | None = None) -> Path:
    """Write ``vis`` into the folder ``out``: one PNG per image and ``index.html``.

    Parameters
    ----------
    vis
        The result of :func:`saliency_widget.visualize`.
    out
        Folder (created).
    title
        Page title, e.g. ``"shapes: features.relu5"``.
    labels
        Class names, to name each image's top class.
    stems
        File names without ``.png``, one per image (default ``image-000``, ...).

    Returns
    -------
    Path
        The page.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    names = stems if stems is not None else [f"image-{i:03d}" for i in range(len(vis))]
    cells = []
    for i, stem in enumerate(names):
        with replacing(folder / f"{stem}.png") as tmp:
            to_pil(vis, i).save(tmp, format="PNG")
        caption = f"{html.escape(vis.names[i])}<br>value {float(vis.values[i]):.3g}"
        if vis.probabilities is not None:
            k = int(vis.probabilities[i].argmax())
            name = labels[k] if labels is not None and k < len(labels) else str(k)
            caption += f"<br>model: {html.escape(name)} p={float(vis.probabilities[i, k]):.3f}"
        cells.append(f'<figure><img src="{html.escape(stem)}.png" alt="{html.escape(vis.names[i])}"><figcaption>{caption}</figcaption></figure>')
    h, w = vis.images.shape[-2:]
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; }}
main {{ display: flex; flex-wrap: wrap; gap: 12px; }}
figure {{ margin: 0; width: {max(w, 128)}px; }}
img {{ width: {max(w, 128)}px; image-rendering: pixelated; }}
figcaption {{ font-size: 12px; color: #444; overflow-wrap: anywhere; }}  /* long objective names wrap, not overlap */
</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{len(vis)} image(s), {h}x{w} px, param={html.escape(vis.param)}, seed={vis.seed}, {int(vis.history.shape[0])} step(s).</p>
<main>
{chr(10).join(cells)}
</main></body></html>
"""
    return write_atomic(folder / "index.html", page)
