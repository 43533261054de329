"""Reports that survive outside Jupyter: one self-contained HTML file, or one PNG grid.

Every image is an inline ``data:image/png;base64`` URI, the class probabilities are an HTML
table, and the settings used are listed; there are no scripts, stylesheets or links to
fetch, so the file opens offline and renders the same everywhere. Text (labels, file names)
is escaped.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image
from torch import nn

from ..data.atomic import write_atomic
from ..engine import Explainer, available_methods, method_label
from ..errors import InputError, SaliencyError, choices
from ..views.classes import check_methods, class_names
from ..views.options import DisplayOptions
from ..views.settings import MethodSettings, settings_text
from . import render as R
from .bundle import BundleSize
from .images import describe_model, resolve_target, to_pil

__all__ = [
    "Report",
    "explorer_html",
    "figure_html",
    "html_document",
    "img_tag",
    "message_html",
    "probability_table",
    "render_report",
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
    """An ``<img>`` with the PNG inline (a data URI), so the page needs no other file."""
    b64 = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{b64}" alt="{html.escape(alt, quote=True)}" width="{size}" height="{size}">'


def probability_table(
    labels: Sequence[str], probs: Sequence[float] | NDArray[np.floating], top: int = 10, highlight: int | None = None
) -> str:
    """Top-``top`` class probabilities as an HTML table (labels escaped)."""
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
    """A complete offline HTML page."""
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


def _settings_table(items: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in items.items())
    return f"<table>{rows}</table>"


@dataclass
class Report:
    """A rendered report: ``html`` text and a ``png`` grid (rows = images, columns = input + methods).

    ``size`` is set for an interactive report (its bytes by part, and the budget line it prints).
    """

    html: str
    png: bytes
    size: BundleSize | None = None

    def save(self, path: str | Path) -> Path:
        """Write ``.html`` or ``.png`` depending on the suffix."""
        p = Path(path)
        if p.suffix.lower() in (".html", ".htm"):
            return write_output(p, self.html)
        if p.suffix.lower() == ".png":
            return write_output(p, self.png)
        raise InputError(f"output {str(p)!r} must end in .html or .png")


def _load(image: Any) -> tuple[Image.Image, str]:
    name = str(image) if isinstance(image, (str, Path)) else type(image).__name__
    return to_pil(image), Path(name).name if isinstance(image, (str, Path)) else name


def render_report(
    images: Sequence[Any],
    model: nn.Module | str | None = None,
    methods: Sequence[str] | None = None,
    target: int | str | None = None,
    *,
    labels: Sequence[str] | None = None,
    transform: Callable[[Image.Image], torch.Tensor] | None = None,
    weights: Any = None,
    processor: Any = None,
    sign: str = "absolute",
    clip_percentile: float = 99.0,
    cmap: str = "magma",
    title: str = "saliency-widget report",
    names: Sequence[str] | None = None,
    faithfulness: bool = False,
    interactive: bool = False,
    **interactive_options: Any,
) -> Report:
    """Maps of each image for each method, as a self-contained HTML page and a PNG grid.

    Parameters
    ----------
    images
        PIL images, arrays, tensors ``(3, H, W)`` in [0, 1], PNG/JPEG bytes or file paths.
    model
        Classifier, or a model spec read by :func:`saliency_widget.models.load_model` (default:
        the bundled shapes model with its labels and preprocessing).
    methods
        Registered method names (default: Gradient, DeconvNet and Guided Backprop; every
        registered method when ``interactive``).
    target
        None (each image's predicted class), a class index, or a class label.
    labels, transform, weights, processor
        Class names and preprocessing; default: what the model says, read by
        :func:`saliency_widget.viz.modelio.describe_model`.
    sign, clip_percentile, cmap
        Display options, as in the widget.
    title
        Heading of the HTML page.
    names
        Captions of the images (default: file names, else the object type).
    faithfulness
        Also score each image's maps: the deletion / insertion scoreboard and curves as
        inline SVG (:func:`faithfulness_html`), in the HTML only.
    interactive
        False (default): a static page of PNGs, no script. True: one self-contained page a
        reader can click offline (methods, classes, layers' filters, activations, display
        options), see :func:`saliency_widget.viz.interactive_report.interactive_report`.
    **interactive_options
        With ``interactive``: ``topk``, ``layers``, ``channels``, ``grid``,
        ``projection_rules``, ``overlay``, ``alpha``, ``progress``.
    """
    if not images:
        raise InputError("render_report needs at least one image")
    from ..models import load_model

    model = load_model(model)
    if names is not None and len(names) != len(images):
        raise InputError(f"names has {len(names)} entries for {len(images)} images")
    if interactive:
        from .interactive_report import interactive_report, preview_png

        captions = list(names) if names is not None else [Path(str(im)).name if isinstance(im, (str, Path)) else type(im).__name__ for im in images]
        extra = _faithfulness_section(images, model, methods, target, captions, labels, transform, weights, processor) if faithfulness else ""
        page = interactive_report(
            images, model, methods=methods, target=target, labels=labels, transform=transform, weights=weights,
            processor=processor, names=captions, sign=sign, clip_percentile=clip_percentile, cmap=cmap, title=title,
            extra_html=extra, **interactive_options,
        )
        return Report(page.html, preview_png(page), page.size)
    if interactive_options:
        raise InputError(f"options {sorted(interactive_options)} apply only with interactive=True")
    methods = ("gradient", "deconvnet", "guided_backprop") if methods is None else methods
    io = describe_model(model, weights=weights, labels=labels, transform=transform, processor=processor)
    labels, transform = io.labels, io.transform
    methods = check_methods(methods)
    options = DisplayOptions(sign, clip_percentile, cmap)
    rows_html, grid_rows = [], []
    settings = {"methods": ", ".join(methods), "sign": sign, "clip percentile": clip_percentile, "colormap": cmap, "model": type(model).__name__}
    for n_img, image in enumerate(images):
        pil, name = _load(image)
        if names is not None:
            name = str(names[n_img])
        x = transform(pil).unsqueeze(0)
        size = x.shape[-1]
        ex = Explainer(model, x)
        probs = ex.probabilities[0].double().cpu().numpy()
        k = len(probs)
        classes = class_names(labels, k)
        resolved = resolve_target(target, classes, k)
        t = int(probs.argmax()) if resolved is None else resolved
        shown = np.asarray(pil.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
        shown_png = R.to_png(R.upscale(shown, 160))
        figs = [figure_html(shown_png, f"{name}")]
        panels = [R.upscale(shown, 160)]
        for m in methods:
            try:
                raw = ex.saliency(t, m)[0].detach().cpu().numpy()
                rm = R.render_map(raw, sign=options.sign, clip_percentile=options.clip, cmap=options.cmap)
                msg = rm.message
                rgb = None if rm.rgb is None else R.upscale(rm.rgb, 160)
            except SaliencyError as err:
                rgb, msg = None, str(err)
            figs.append(figure_html(None if rgb is None else R.to_png(rgb), f"{m} · {classes[t]}", msg))
            panels.append(R.panel_or_message(rgb, msg, (panels[0].shape[0], panels[0].shape[1])))
        grid_rows.append(R.compose(panels, [name] + list(methods), height=160))
        rows_html.append(
            f"<tr><td>{''.join(figs)}</td><td><b>target:</b> {html.escape(classes[t])}<br>"
            f"{probability_table(classes, probs, highlight=t)}</td></tr>"
        )
        if faithfulness:
            rows_html.append(f'<tr><td colspan="2">{faithfulness_html(model, x, t, methods, classes[t])}</td></tr>')
        del ex
    settings_html = _settings_table(settings)
    body = f"<h2>Settings</h2>{settings_html}<h2>Maps</h2><table>{''.join(rows_html)}</table>"
    width = max(r.shape[1] for r in grid_rows)
    padded = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in grid_rows]
    return Report(html_document(title, body), R.to_png(np.concatenate(padded, axis=0)))


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
        f"<h2>Settings</h2>{_settings_table(readable_settings(settings, labels, predicted))}<p>{html.escape(status)}</p>"
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


def _faithfulness_section(
    images: Sequence[Any], model: nn.Module, methods: Sequence[str] | None, target: int | str | None, captions: Sequence[str],
    labels: Sequence[str] | None, transform: Any, weights: Any, processor: Any,
) -> str:
    """Every image's faithfulness scoreboard and curves, as the static HTML below an interactive report's viewer."""
    io = describe_model(model, weights=weights, labels=labels, transform=transform, processor=processor)
    chosen = list(methods) if methods is not None else available_methods()
    parts = ["<h2>Faithfulness: deletion and insertion</h2>"]
    for image, caption in zip(images, captions):
        pil, _ = _load(image)
        x = io.transform(pil).unsqueeze(0)
        ex = Explainer(model, x)
        k = ex.num_classes
        classes = class_names(io.labels, k)
        resolved = resolve_target(target, classes, k)
        t = int(ex.probabilities[0].argmax()) if resolved is None else resolved
        del ex
        parts.append(f"<h3>{html.escape(str(caption))}</h3>{faithfulness_html(model, x, t, chosen, classes[t])}")
    return "".join(parts)


def faithfulness_html(model: nn.Module, x: torch.Tensor, target: int, methods: Sequence[str], label: str = "", steps: int = 20) -> str:
    """The faithfulness scoreboard of one image and its curves as inline SVG (no script).

    Parameters
    ----------
    model
        The classifier (never modified).
    x
        ``(1, C, H, W)`` preprocessed image.
    target
        Class index whose probability the curves track.
    methods
        Methods to score; one that cannot run on the model is listed as n/a with the reason.
    label, steps
        Class name for the caption; perturbation steps per curve.
    """
    from ..analysis.faithfulness import KINDS, RANDOM, deletion_insertion, merge_results
    from .curves import curve_color, faithfulness_svgs
    from .tables import scoreboard_html

    parts = [deletion_insertion(model, x, maps={}, target=target, steps=steps)]  # the random reference
    failed: dict[str, str] = {}
    for m in methods:
        try:
            parts.append(deletion_insertion(model, x, methods=[m], target=target, steps=steps, reference=False))
        except SaliencyError as err:
            failed[m] = str(err).splitlines()[0]
    res = merge_results(parts)
    names = [*res.methods, RANDOM]
    colors = {m: curve_color(i, m) for i, m in enumerate(names)}
    fr = res.fractions.tolist()
    curves = {k: {m: res.curve(k, m)[0].tolist() for m in names} for k in KINDS}
    cap = f"faithfulness for {label or f'class {target}'}: deletion to zeros, insertion from the blurred image, {steps} steps"
    board = scoreboard_html(res.ranking(0), colors=colors, caption=cap, failed=failed)
    return f'<div class="sw-faithfulness">{board}{faithfulness_svgs(fr, curves["deletion"], curves["insertion"])}</div>'
