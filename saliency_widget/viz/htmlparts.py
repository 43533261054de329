"""The pieces of an offline HTML page: inline images, figures, tables, messages, the page itself, and writing it.

Every image is an inline ``data:image/png;base64`` URI and the page's style sits in its head:
no scripts, stylesheets or links to fetch, so a page opens offline and renders the same
everywhere. Text (labels, file names, settings) is escaped. The static report
(:mod:`.report`), the explorer's static page (:mod:`.explorer_page`), the batch report and the
widgets' status lines build on these.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ..data.atomic import write_atomic
from ..errors import InputError, choices

__all__ = [
    "figure_html",
    "html_document",
    "img_tag",
    "message_html",
    "probability_table",
    "settings_table",
    "write_output",
]


def write_output(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path``; a path that cannot be written is an :class:`InputError`.

    Parameters
    ----------
    path
        The file to create or replace.
    data
        Its content.

    Returns
    -------
    Path
        ``path`` as a ``Path`` (``~`` expanded).

    Raises
    ------
    InputError
        ``path`` is a directory, its folder does not exist or is a file, or the OS refuses
        the write (permissions, read-only file system); the message names the path.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        raise InputError(f"cannot write {str(p)!r}: it is a directory; give a file path inside it, e.g. {str(p / 'view.png')!r}")
    if not p.parent.exists():
        raise InputError(f"cannot write {str(p)!r}: the folder {str(p.parent)!r} does not exist; create it first or choose another path")
    if not p.parent.is_dir():
        raise InputError(f"cannot write {str(p)!r}: {str(p.parent)!r} is a file, not a folder")
    try:
        write_atomic(p, data)  # a killed run leaves the old file or the new one, never half a page
    except OSError as exc:
        raise InputError(f"cannot write {str(p)!r}: {exc.strerror or exc}") from None
    return p


_CSS = (
    "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222}"
    "table{border-collapse:collapse}td,th{padding:4px 8px;border:1px solid #ddd;vertical-align:top}"
    "th{background:#f4f4f4}figure{display:inline-block;margin:4px;text-align:center;vertical-align:top}"
    "figcaption{font-size:12px;color:#555}img{image-rendering:pixelated;border:1px solid #ccc}"
    ".msg{display:inline-block;width:160px;height:160px;border:1px solid #ccc;font-size:12px;padding:8px;box-sizing:border-box}"
)


def img_tag(png: bytes, alt: str, size: int = 192) -> str:
    """An ``<img>`` with the PNG inline (a data URI), so the page needs no other file.

    Parameters
    ----------
    png
        The PNG bytes.
    alt
        Alternative text (escaped).
    size
        Shown width and height in CSS pixels.
    """
    b64 = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{b64}" alt="{html.escape(alt, quote=True)}" width="{size}" height="{size}">'


def probability_table(
    labels: Sequence[str], probs: Sequence[float] | NDArray[np.floating], top: int = 10, highlight: int | None = None
) -> str:
    """The ``top`` most probable classes as an HTML table, each with its bar (labels escaped).

    Parameters
    ----------
    labels
        K class names, in class-index order.
    probs
        ``(K,)`` class probabilities.
    top
        Rows shown, most probable first.
    highlight
        Class index whose row is bold (None: none).

    Returns
    -------
    str
        The ``<table>``.
    """
    order = np.argsort(-np.asarray(probs))[:top]
    bold = ' style="font-weight:600"'
    rows = "".join(
        f"<tr{bold if int(i) == highlight else ''}><td>{html.escape(str(labels[i]))}</td>"
        f"<td style='text-align:right'>{float(probs[i]):.3f}</td>"
        f"<td><div style='background:#4c78a8;height:10px;width:{max(1, int(120 * float(probs[i])) if np.isfinite(probs[i]) else 1)}px'></div></td></tr>"
        for i in order
    )
    return f"<table><tr><th>class</th><th>p</th><th></th></tr>{rows}</table>"


def html_document(title: str, body: str) -> str:
    """A complete offline HTML page: ``title`` as its title and heading, ``body`` (HTML) under it, and a made-on line."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}"
        f"<p style='color:#888;font-size:12px'>made by saliency-widget on {stamp}; this file is self-contained.</p>"
        "</body></html>"
    )


def message_html(text: str, kind: Literal["error", "note"] = "error") -> str:
    """One line of status text as HTML, escaped: an error in red, or a note in italics.

    The widgets' status and output areas use it, so every message looks the same.
    """
    if kind == "error":
        return f"<span style='color:#b00'>{html.escape(text)}</span>"
    if kind == "note":
        return f"<i>{html.escape(text)}</i>"
    raise InputError(f"unknown message kind {kind!r}; expected one of {choices(('error', 'note'))}")


def figure_html(png: bytes | None, caption: str, message: str | None = None, size: int = 160) -> str:
    """A captioned ``<figure>``: the PNG inline, or a box with ``message`` when there is no image.

    The HTML counterpart of :func:`saliency_widget.viz.render.panel_or_message`.
    """
    inner = img_tag(png, caption, size) if png else f"<div class='msg'>{html.escape(message or 'nothing to show')}</div>"
    return f"<figure>{inner}<figcaption>{html.escape(caption)}</figcaption></figure>"


def settings_table(items: Mapping[str, Any]) -> str:
    """A two-column HTML table, one row per ``items`` entry (title, value), both escaped."""
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in items.items())
    return f"<table>{rows}</table>"
