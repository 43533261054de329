"""Reports that survive outside Jupyter: one self-contained HTML file, or one PNG grid.

:func:`render_report` draws each image's maps for each method: the HTML page shows them with
the class probabilities as a table and the settings used (built from :mod:`.htmlparts`: no
scripts, stylesheets or links to fetch, so it opens offline and renders the same everywhere),
the PNG is one grid. The page pieces and the explorer's static page
(:func:`~.explorer_page.explorer_html`) are re-exported here, where callers first found them.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..engine import Explainer, available_methods, saliency
from ..errors import InputError, SaliencyError
from ..views.classes import check_methods, class_names
from ..views.options import DisplayOptions
from ..views.settings import MethodSettings, settings_text
from . import render as R
from .bundle import BundleSize
from .explorer_page import explorer_html
from .htmlparts import figure_html, html_document, img_tag, message_html, probability_table, settings_table, write_output
from .images import describe_model, resolve_target, to_pil

__all__ = [
    "Report",
    "explorer_html",
    "faithfulness_html",
    "figure_html",
    "html_document",
    "img_tag",
    "message_html",
    "probability_table",
    "render_report",
    "write_output",
]


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
    settings: MethodSettings | Mapping[str, Any] | None = None,
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
    settings
        The methods' settings, as in the explorer: a
        :class:`~saliency_widget.views.settings.MethodSettings` or a dict of some of its fields
        (e.g. ``{"lrp_composite": "alpha_beta", "ig_steps": 64}``); default: every default.
        The page lists each shown method's settings.
    interactive
        False (default): a static page of PNGs, no script. True: one self-contained page a
        reader can click offline (methods, classes, layers' filters, activations, display
        options), see :func:`saliency_widget.viz.interactive_report.interactive_report`.
    **interactive_options
        With ``interactive``: ``topk``, ``layers``, ``channels``, ``grid``,
        ``projection_rules``, ``overlay``, ``alpha``, ``progress``, ``featviz`` (each exported filter's feature visualization).
    """
    if not images:
        raise InputError("render_report needs at least one image")
    from ..models import load_model

    model = load_model(model)
    sets = MethodSettings.of(settings)
    if names is not None and len(names) != len(images):
        raise InputError(f"names has {len(names)} entries for {len(images)} images")
    if interactive:
        from .interactive_report import interactive_report, preview_png

        captions = list(names) if names is not None else [Path(str(im)).name if isinstance(im, (str, Path)) else type(im).__name__ for im in images]
        extra = _faithfulness_section(images, model, methods, target, captions, labels, transform, weights, processor,
                                      sets) if faithfulness else ""
        page = interactive_report(
            images, model, methods=methods, target=target, labels=labels, transform=transform, weights=weights,
            processor=processor, names=captions, sign=sign, clip_percentile=clip_percentile, cmap=cmap, title=title,
            extra_html=extra, settings=sets, **interactive_options,
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
    table = {"methods": ", ".join(methods), "sign": sign, "clip percentile": clip_percentile, "colormap": cmap, "model": type(model).__name__,
             **settings_text(sets, methods)}
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
                raw = ex.saliency(t, m, **sets.engine_options(m, x, io.mean, io.std))[0].detach().cpu().numpy()
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
            opts = {m: sets.engine_options(m, x, io.mean, io.std) for m in methods}
            rows_html.append(f'<tr><td colspan="2">{faithfulness_html(model, x, t, methods, classes[t], options=opts)}</td></tr>')
        del ex
    settings_html = settings_table(table)
    body = f"<h2>Settings</h2>{settings_html}<h2>Maps</h2><table>{''.join(rows_html)}</table>"
    width = max(r.shape[1] for r in grid_rows)
    padded = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in grid_rows]
    return Report(html_document(title, body), R.to_png(np.concatenate(padded, axis=0)))


def _faithfulness_section(
    images: Sequence[Any], model: nn.Module, methods: Sequence[str] | None, target: int | str | None, captions: Sequence[str],
    labels: Sequence[str] | None, transform: Any, weights: Any, processor: Any, settings: MethodSettings,
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
        opts = {m: settings.engine_options(m, x, io.mean, io.std) for m in chosen}
        parts.append(f"<h3>{html.escape(str(caption))}</h3>{faithfulness_html(model, x, t, chosen, classes[t], options=opts)}")
    return "".join(parts)


def faithfulness_html(model: nn.Module, x: torch.Tensor, target: int, methods: Sequence[str], label: str = "", steps: int = 20,
                      options: Mapping[str, Mapping[str, Any]] | None = None) -> str:
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
    options
        Engine options per method (the method settings, :meth:`MethodSettings.engine_options`);
        the maps scored are computed with them.
    """
    from ..analysis.faithfulness import KINDS, RANDOM, deletion_insertion, merge_results
    from .curves import curve_color, faithfulness_svgs
    from .tables import scoreboard_html

    parts = [deletion_insertion(model, x, maps={}, target=target, steps=steps)]  # the random reference
    failed: dict[str, str] = {}
    for m in methods:
        try:
            opts = (options or {}).get(m)
            if opts:  # the map the page shows, with the method's settings
                scored = {m: saliency(model, x, target, m, **opts).detach()}
                parts.append(deletion_insertion(model, x, maps=scored, target=target, steps=steps, reference=False))
            else:
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
