"""Deletion and insertion curves as inline SVG (no script, no external resource).

Pure string building: the static report embeds the result in its HTML as is, and a test
parses it as XML. Methods get fixed colours by their position; the random-order reference
is a grey dashed line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

__all__ = ["PALETTE", "REFERENCE", "curve_color", "curves_svg", "faithfulness_svgs"]

#: Line colours of the methods, in order (colour-blind safe, Okabe-Ito).
PALETTE: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")

#: Name of the random-order reference curve (as in :data:`saliency_widget.analysis.faithfulness.RANDOM`).
REFERENCE = "random"


def curve_color(index: int, name: str) -> str:
    """The colour of curve ``index`` (grey for the random reference)."""
    return "#888888" if name == REFERENCE else PALETTE[index % len(PALETTE)]


def curves_svg(
    fractions: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    title: str,
    *,
    width: int = 300,
    height: int = 190,
    y_label: str = "class probability",
) -> str:
    """One chart: each curve ``probability vs perturbed fraction`` as a polyline.

    Parameters
    ----------
    fractions
        ``(S + 1,)`` x values in [0, 1].
    curves
        ``{name: (S + 1,) values in [0, 1]}``, drawn in order; :data:`REFERENCE` dashed grey.
    title
        Heading above the plot (escaped).
    width, height
        Size of the SVG in pixels.

    Returns
    -------
    str
        An ``<svg>`` element with ``role="img"`` and a ``<title>``; no script, no link.
    """
    left, right, top, bottom = 34, 8, 22, 30
    legend_w = 0 if not curves else min(120, max(40, 7 * max(len(n) for n in curves) + 20))
    pw, ph = max(40, width - left - right - legend_w), max(40, height - top - bottom)

    def px(f: float) -> float:
        return left + pw * min(1.0, max(0.0, float(f)))

    def py(v: float) -> float:
        return top + ph * (1.0 - min(1.0, max(0.0, float(v))))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" font-size="10">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="13" font-size="11" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
    ]
    for t in (0.0, 0.5, 1.0):
        out.append(f'<text x="{left - 4}" y="{py(t) + 3:.1f}" text-anchor="end">{t:g}</text>')
        out.append(f'<text x="{px(t):.1f}" y="{top + ph + 12}" text-anchor="middle">{t:g}</text>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 4}" text-anchor="middle">fraction of pixels perturbed</text>')
    out.append(
        f'<text x="10" y="{top + ph / 2:.1f}" text-anchor="middle" transform="rotate(-90 10 {top + ph / 2:.1f})">'
        f"{escape(y_label)}</text>"
    )
    for i, (name, ys) in enumerate(curves.items()):
        pts = " ".join(f"{px(f):.1f},{py(v):.1f}" for f, v in zip(fractions, ys))
        dash = ' stroke-dasharray="4 3"' if name == REFERENCE else ""
        out.append(
            f'<polyline points="{pts}" fill="none" stroke="{curve_color(i, name)}" stroke-width="1.5"{dash}>'
            f"<title>{escape(name)}</title></polyline>"
        )
        ly = top + 6 + 13 * i
        lx = left + pw + 8
        out.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 14}" y2="{ly}" stroke="{curve_color(i, name)}" stroke-width="2"{dash}/>')
        label = "random order" if name == REFERENCE else name
        out.append(f"<text x={quoteattr(str(lx + 18))} y={quoteattr(str(ly + 3))}>{escape(label)}</text>")
    out.append("</svg>")
    return "".join(out)


def faithfulness_svgs(
    fractions: Sequence[float],
    deletion: Mapping[str, Sequence[float]],
    insertion: Mapping[str, Sequence[float]],
    *,
    width: int = 300,
    height: int = 190,
) -> str:
    """The deletion and the insertion chart of one image, side by side (two ``<svg>`` elements)."""
    d = curves_svg(fractions, deletion, "deletion (lower area is better)", width=width, height=height)
    i = curves_svg(fractions, insertion, "insertion (higher area is better)", width=width, height=height)
    return f'<div class="sw-curves" style="display:flex;gap:8px;flex-wrap:wrap">{d}{i}</div>'
