"""The explorer's static page: its panels with their colour scales, the class probabilities and its settings in words.

:func:`explorer_html` is what ``Explorer.to_html`` writes (pure: PNG bytes and numbers in, one
offline HTML page out); :func:`readable_settings` turns the explorer's control state into the
rows a reader understands, for that page.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..engine import available_methods, method_label
from ..errors import InputError, SaliencyError
from ..views.settings import MethodSettings, settings_text
from .htmlparts import figure_html, html_document, img_tag, probability_table, settings_table

__all__ = ["EXPLORER_PANELS", "PANEL_CAPTIONS", "explorer_html", "readable_settings"]

#: What each panel of the explorer shows, as the static page's captions.
PANEL_CAPTIONS = {
    "input": "input", "map": "saliency map", "feature": "feature map", "projection": "projection to pixel space",
    "featviz": "what the unit wants (feature visualization)",
}

#: The state keys a reader has no use for (internal bookkeeping).
_INTERNAL = ("version",)


def readable_settings(state: Mapping[str, Any], labels: Sequence[str] = (), predicted: int | None = None) -> dict[str, str]:
    """The explorer's control state in words, for a report: no internals ("version"), no bare None.

    Parameters
    ----------
    state
        :meth:`Explorer.state() <saliency_widget.widget.Explorer.state>`: ``method``, ``target``,
        ``layer``, ``channel``, ``position``, ``sign``, ``clip``, ``cmap``, ``overlay``, ``alpha``,
        ``view`` and possibly more (shown as they are, None ones left out).
    labels
        Class names, to name the target.
    predicted
        The predicted class index, named when ``target`` is None.

    Returns
    -------
    dict
        Row title -> text, in reading order.

    Examples
    --------
    >>> readable_settings({"method": "gradient", "target": None, "position": None, "version": 1, "channel": 3,
    ...                    "layer": "conv2", "sign": "absolute", "clip": 99.0, "cmap": "magma", "overlay": False,
    ...                    "alpha": 0.6, "view": "single"}, ["disc", "star"], predicted=1)["class"]
    'star (the predicted class)'
    """
    st = dict(state)
    out: dict[str, str] = {}

    def name(i: int) -> str:
        return str(labels[i]) if 0 <= i < len(labels) else f"class {i}"

    if "method" in st:
        out["method"] = method_label(str(st["method"]))
    if "target" in st:
        t = st["target"]
        if t is None:
            out["class"] = f"{name(predicted)} (the predicted class)" if predicted is not None else "the predicted class"
        else:
            out["class"] = f"{name(int(t))} (chosen)"
    if "layer" in st:
        out["feature map"] = f"layer {st['layer']}, filter {st.get('channel', 0)}"
    if "position" in st:
        pos = st["position"]
        out["projected activation"] = ("the filter's strongest activation" if pos is None
                                       else f"row {pos[0]}, column {pos[1]} of the feature map")
    if "sign" in st:
        shown = {"absolute": "absolute values", "positive": "positive part", "negative": "negative part", "signed": "signed (diverging)"}
        parts = [shown.get(str(st["sign"]), str(st["sign"]))]
        if "cmap" in st:
            parts.append(f"colormap {st['cmap']}")
        if "clip" in st:
            parts.append(f"clipped at the {float(st['clip']):g}th percentile")
        if st.get("overlay"):
            parts.append(f"over the input (opacity {float(st.get('alpha', 0.6)):.2f})")
        out["display"] = ", ".join(parts)
    if "view" in st:
        out["view"] = "every method side by side" if st["view"] == "compare" else "one method"
    done = {"method", "target", "layer", "channel", "position", "sign", "cmap", "clip", "overlay", "alpha", "view", *_INTERNAL}
    chosen = {k: st[k] for k in MethodSettings.names() if k in st}
    if chosen:  # the settings of the method(s) shown, by their labels ("Integrated Gradients settings: steps 32, ...")
        try:
            shown_methods = available_methods() if st.get("view") == "compare" else [str(st.get("method", ""))]
            out.update(settings_text(MethodSettings(**chosen), [m for m in shown_methods if m in available_methods()]))
            done |= set(chosen)
        except SaliencyError:  # not the explorer's values: listed as they are below
            pass
    for k, v in st.items():
        if k not in done and v is not None and v != {} and v != []:
            out[k.replace("_", " ")] = ", ".join(f"{a}={b}" for a, b in v.items()) if isinstance(v, Mapping) else str(v)
    return out


#: The explorer's panels, in the order the HTML view shows them.
EXPLORER_PANELS: tuple[str, ...] = ("input", "map", "feature", "projection", "featviz")


def explorer_html(
    panels: Mapping[str, bytes | None] | Any,
    messages: Mapping[str, str | None] | None = None,
    labels: Sequence[str] = (),
    probs: Sequence[float] | NDArray[np.floating] | None = None,
    state: Mapping[str, Any] | None = None,
    status: str = "",
    title: str = "saliency-widget: explorer view",
    colorbars: Mapping[str, bytes | None] | None = None,
    captions: Mapping[str, str] | None = None,
) -> str:
    """An explorer view (its panels with their colour scales, class probabilities and settings) as one offline HTML page.

    Parameters
    ----------
    panels
        PNG bytes per panel name (``"input"``, ``"map"``, ``"feature"``, ``"projection"``,
        ``"featviz"``: the feature visualization the explorer shows); other names are ignored,
        missing or empty ones fall back to ``messages``.
    messages
        Per panel, why it shows no image (None when it does).
    labels
        Class names in class-index order, K of them.
    probs
        K class probabilities (None: all zero, before the first forward pass).
    state
        The control settings, listed as a table; an int ``state["target"]`` is highlighted in
        the probability table.
    status
        The status line, shown as text.
    title
        Title and heading of the page.
    colorbars
        PNG colour scale per map panel (``"map"``, ``"projection"``), drawn under its image
        (:func:`saliency_widget.viz.colorbar.colorbar`): what a colour means.
    captions
        Per panel, a caption replacing :data:`PANEL_CAPTIONS`' (the feature visualization's
        objective, steps and value).

    Returns
    -------
    str
        The HTML text; it loads nothing from the network.
    """
    msgs: Mapping[str, str | None] = messages or {}
    bars: Mapping[str, bytes | None] = colorbars or {}
    figs = [
        _panel_figure(panels.get(key), (captions or {}).get(key) or PANEL_CAPTIONS.get(key, key), msgs.get(key), bars.get(key))
        for key in EXPLORER_PANELS
        if panels.get(key) or msgs.get(key)
    ]
    p = np.zeros(len(labels)) if probs is None else np.asarray(probs, dtype=np.float64)
    if p.shape != (len(labels),):
        raise InputError(f"probs has shape {p.shape} but there are {len(labels)} labels; give one probability per label")
    settings = dict(state or {})
    target = settings.get("target")
    highlight = target if isinstance(target, int) and not isinstance(target, bool) else None
    predicted = int(np.argmax(p)) if len(labels) and np.isfinite(p).all() and p.any() else None
    body = (
        f"<div>{''.join(figs)}</div><h2>Class probabilities</h2>"
        f"{probability_table(labels, p, highlight=highlight if highlight is not None else predicted)}"
        f"<h2>Settings</h2>{settings_table(readable_settings(settings, labels, predicted))}<p>{html.escape(status)}</p>"
    )
    return html_document(title, body)


def _panel_figure(png: bytes | None, caption: str, message: str | None, colorbar: bytes | None) -> str:
    """One explorer panel: the image (or its message), its colour scale when it has one, the caption."""
    if not png or colorbar is None:
        return figure_html(png, caption, message, size=224)
    b64 = base64.b64encode(colorbar).decode("ascii")
    scale = (f'<br><img class="colorbar" src="data:image/png;base64,{b64}" alt="{html.escape(caption, quote=True)} colour scale" '
             'width="224" style="image-rendering:auto;border:0">')
    return f"<figure>{img_tag(png, caption, 224)}{scale}<figcaption>{html.escape(caption)}</figcaption></figure>"
