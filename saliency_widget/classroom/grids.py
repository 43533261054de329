"""Small matrices as HTML for the classroom explorers: numbers, a heatmap beside them, hover pop-ups.

Plain HTML strings (values escaped, inline styles and one scoped ``<style>`` rule for the
hover pop-ups), so they show the same in JupyterLab, Notebook 7, Voilà and a saved notebook;
no Jupyter package is imported here.
"""

from __future__ import annotations

import html

import torch

from ..errors import InputError

__all__ = ["parse_matrix", "matrix_html", "heatmap_html", "heat_color", "grid_pair", "HOVER_CSS"]

# A hovered output cell shows its pop-up (the kernel placements that wrote it); pure CSS, so it
# works wherever the HTML is shown, with no JavaScript and no kernel round trip.
HOVER_CSS = (
    "<style>.swc-cell{position:relative}.swc-cell .swc-pop{display:none;position:absolute;z-index:10;left:100%;top:0;"
    "background:#fff;border:1px solid #888;box-shadow:2px 2px 6px #0003;padding:4px 6px;white-space:nowrap;text-align:left;"
    "font-family:monospace;font-size:12px}.swc-cell:hover .swc-pop{display:block}.swc-cell:hover{outline:2px solid #000}</style>"
)


def parse_matrix(text: str) -> torch.Tensor:
    """Parse ``"1 -2; -4 5"`` (rows split by ``;`` or newlines) into a float64 ``(rows, cols)`` tensor."""
    rows = [r for r in (part.strip() for part in text.replace("\n", ";").split(";")) if r]
    try:
        vals = [[float(v) for v in r.replace(",", " ").split()] for r in rows]
    except ValueError as err:
        raise InputError(f"cannot read {text!r} as a matrix of numbers ({err}); write rows like '1 -2; -4 5'") from None
    if not vals or any(len(r) != len(vals[0]) for r in vals) or not vals[0]:
        raise InputError(f"{text!r} is not a rectangular matrix; every row needs the same number of values")
    return torch.tensor(vals, dtype=torch.float64)


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e4 else f"{v:.2e}"


def heat_color(v: float, vmax: float) -> str:
    """Diverging colour of ``v`` on a scale symmetric about 0: white at 0, red at ``+vmax``, blue at ``-vmax``."""
    t = 0.0 if vmax <= 0 else max(-1.0, min(1.0, v / vmax))
    # interpolate white -> (215, 48, 39) for positive, white -> (69, 117, 180) for negative
    r, g, b = (215, 48, 39) if t >= 0 else (69, 117, 180)
    a = abs(t)
    return f"#{round(255 + (r - 255) * a):02x}{round(255 + (g - 255) * a):02x}{round(255 + (b - 255) * a):02x}"


def matrix_html(
    t: torch.Tensor,
    colors: list[list[str]] | None = None,
    title: str = "",
    pops: list[list[str]] | None = None,
    outline: tuple[int, int, int, int] | None = None,
) -> str:
    """A small ``(rows, cols)`` matrix as an HTML table (values escaped).

    ``colors`` gives per-cell backgrounds; ``pops`` per-cell HTML shown on hover (include
    :data:`HOVER_CSS` once in the page); ``outline = (top, left, height, width)`` draws a
    thick border around that window of cells (the kept crop of a full output).
    """
    t = t.detach().cpu()
    cells = []
    for i in range(t.shape[0]):
        row = []
        for j in range(t.shape[1]):
            style = f"border:1px solid #bbb;padding:2px 6px;text-align:right;background:{colors[i][j] if colors else '#fff'}"
            if outline is not None:
                top, left, h, w = outline
                inside = top <= i < top + h and left <= j < left + w
                style += "" if inside else ";color:#999"
                edges = {"top": i == top, "bottom": i == top + h - 1, "left": j == left, "right": j == left + w - 1}
                style += "".join(f";border-{side}:2px solid #1a7f37" for side, on in edges.items() if on and inside)
            pop = f"<div class='swc-pop'>{pops[i][j]}</div>" if pops else ""
            cls = " class='swc-cell'" if pops else ""
            row.append(f'<td{cls} style="{style}">{html.escape(_fmt(float(t[i, j])))}{pop}</td>')
        cells.append(f"<tr>{''.join(row)}</tr>")
    cap = f"<div style='font-weight:600;margin-bottom:2px'>{html.escape(title)}</div>" if title else ""
    return (
        f"<div style='display:inline-block;margin:4px 10px;vertical-align:top'>{cap}"
        f"<table style='border-collapse:collapse;font-family:monospace'>{''.join(cells)}</table></div>"
    )


def heatmap_html(t: torch.Tensor, title: str = "", size: int = 96) -> str:
    """The same matrix as a heatmap (no numbers): squares coloured by :func:`heat_color`, with its scale.

    The scale is symmetric about 0 (``vmax = max |t|``), so the sign reads off the hue; the
    whole grid is about ``size`` pixels on its longer side.
    """
    t = t.detach().cpu().to(torch.float64)
    rows, cols = t.shape
    vmax = float(t.abs().max()) if t.numel() else 0.0
    px = max(9, min(28, size // max(rows, cols, 1)))
    squares = "".join(
        f"<div title='{html.escape(_fmt(float(t[i, j])))}' style='width:{px}px;height:{px}px;background:{heat_color(float(t[i, j]), vmax)}'></div>"
        for i in range(rows)
        for j in range(cols)
    )
    grid = f"<div class='swc-heat' style='display:grid;grid-template-columns:repeat({cols},{px}px);border:1px solid #bbb;width:max-content'>{squares}</div>"
    scale = f"blue −{_fmt(vmax)} · white 0 · red +{_fmt(vmax)}" if vmax > 0 else "all 0"
    scale = f"<div style='font-size:11px;color:#555'>{scale}</div>"
    cap = f"<div style='font-weight:600;margin-bottom:2px'>{html.escape(title)}</div>" if title else ""
    return f"<div style='display:inline-block;margin:4px 10px;vertical-align:top'>{cap}{grid}{scale}</div>"


def grid_pair(t: torch.Tensor, title: str = "", **matrix_kwargs: object) -> str:
    """The numbers of ``t`` (:func:`matrix_html`) with its heatmap (:func:`heatmap_html`) beside them."""
    return (
        "<div style='display:inline-block;vertical-align:top;border-left:3px solid #eee;margin:2px 4px'>"
        + matrix_html(t, title=title, **matrix_kwargs)  # type: ignore[arg-type]
        + heatmap_html(t, title="heatmap")
        + "</div>"
    )
