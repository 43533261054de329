"""The explorer's words: status lines, panel titles, the upload note, the colormap menu's labels.

Pure text and HTML (no widget): :mod:`.view` puts them into the explorer's controls, the export
reuses :func:`map_title`. Every title is either one line cut with an ellipsis or at most two
lines (:func:`two_lines`), with the full text as the tooltip.
"""

from __future__ import annotations

import html

from ..engine import method_label
from ..views.pipeline import ViewResult

__all__ = [
    "CMAP_TIP", "RECEPTIVE_NOTE", "busy_text", "map_title", "message_html", "one_line",
    "projection_title", "source_html", "source_name", "status_html", "two_lines",
]


#: Tooltip of the colormap menu.
CMAP_TIP = (
    "the colours of the maps (the scale under each map shows the values); a signed map needs a diverging "
    "colormap: choosing sign 'signed' switches to one, and back afterwards"
)


#: How :attr:`~.inputs.InputState.source` is named next to the upload button.
_SOURCES = {"argument": "the image given to explore()", "set_image": "the image given to set_image()"}


def source_name(source: str) -> str:
    """The loaded image in words: ``"cat.png"`` (an upload), ``"sample star"``, ``"the image given to explore()"``."""
    return source[len("upload "):] if source.startswith("upload ") else _SOURCES.get(source, source)


def source_html(source: str, size: int | None = None, error: str | None = None) -> str:
    """The line next to the upload button: the shown image's name, size and status, or why an upload failed."""
    if error:
        return one_line(f"<span style='color:#b00'>{html.escape(error)}</span>", error)
    if not source:
        return ""
    text = source_name(source) + (f" · {_size(size)}" if size else "") + " · loaded"
    return one_line(html.escape(text), text)


def _size(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KB" if n < 2**20 else f"{n / 2**20:.1f} MB"


def status_html(text: str, error: bool = False) -> str:
    """One status line as HTML (text escaped; errors in red)."""
    color = ";color:#b00" if error else ""
    return f"<span style='font-family:monospace{color}'>{html.escape(text)}</span>"


def busy_text(method: str, compare: int = 0) -> str:
    """The status line while a view computes: ``computing <method label> …`` (and the compare count)."""
    text = f"computing {method_label(method)} …"
    return f"computing {method_label(method)} and all {compare} methods to compare …" if compare else text


def map_title(result: ViewResult | None, method: str) -> str:
    """The exported map's title: method, class and probability (the method alone before any view)."""
    if result is None:
        return method_label(method)
    return f"{result.method_label}: {result.class_label} p={result.probability:.3f}"


def message_html(text: str) -> str:
    """The line under a panel whose map is degenerate (the frame shows the message too)."""
    return one_line(f"<span style='color:#822'>{html.escape(text)}</span>", text)


#: Caption under the input: what the green box is.
RECEPTIVE_NOTE = (
    "<span style='font-size:11px'><span style='display:inline-block;width:10px;height:8px;"
    "border:2px solid #0c0;vertical-align:middle'></span> receptive field of the selected unit</span>"
)


def projection_title(rule: str, note: str, position: tuple[int, int]) -> tuple[str, str]:
    """The projection panel's title as ``(html, tooltip)``: short enough for two lines at 1366 px.

    Without ReLUs the long reason ("the model has no ReLU, so DeconvNet is undefined: gradient
    projection") is shortened to "gradient rule: no ReLU" and kept whole in the tooltip.
    """
    y, x = position
    short = "gradient rule: no ReLU in the model" if note else f"{method_label(rule)} rule"
    full = f"projection to pixel space ({note or method_label(rule)}, activation {y}, {x})"
    inner = f"<b>projection to pixel space</b> <span class='sw-detail'>{html.escape(short)} · at ({y}, {x})</span>"
    return inner, full


def two_lines(inner: str, tooltip: str) -> str:
    """``inner`` HTML wrapped onto at most two lines (then cut with an ellipsis), the full ``tooltip`` on hover.

    Panel titles use it: "feature map (click an activation …)" and the projection's rule fit at
    1366 px instead of being cut after a dozen characters.
    """
    return f"<div class='sw-two' title='{html.escape(tooltip, quote=True)}'>{inner}</div>"


def one_line(inner: str, tooltip: str) -> str:
    """``inner`` HTML as one line cut with an ellipsis, the full ``tooltip`` text on hover."""
    return (
        f"<div title='{html.escape(tooltip, quote=True)}' "
        f"style='white-space:nowrap;overflow:hidden;text-overflow:ellipsis'>{inner}</div>"
    )
