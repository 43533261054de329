"""Images and a model to an interactive report: the loop behind ``render_report(..., interactive=True)``.

Each image gets one engine :class:`~saliency_widget.engine.Explainer` (one recorded forward),
:func:`~.interactive.collect_image` precomputes its views, and
:func:`~.viewer_page.interactive_page` assembles the page. The PNG grid of the report is
rendered from the page's own values (:func:`~.interactive.render_state`), so it shows what a
reader sees first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..engine import Explainer, available_methods
from ..errors import InputError
from ..views.classes import check_methods, class_names
from ..views.options import DisplayOptions
from ..views.settings import MethodSettings, settings_text
from . import render as R
from .bundle import Packer
from .images import describe_model, resolve_target, to_model_input
from .interactive import MAX_CHANNELS, TOPK, Progress, collect_image, render_state, representative_layers
from .interactive_featviz import FeatvizOptions, add_visualizations
from .viewer_page import InteractivePage, interactive_page
from .visualize import Normalize

__all__ = ["explorer_page", "first_state", "interactive_report", "preview_png"]


def first_state(image: Mapping[str, Any], *, method: str, sign: str, clip: float, cmap: str,
                overlay: bool = False, alpha: float = 0.6, layer: str | None = None,
                channel: int | None = None, image_index: int = 0) -> dict[str, Any]:
    """The state a page opens on: ``method`` on the image's first class, a layer's strongest filter.

    ``layer`` defaults to the deepest exported layer; ``channel`` to its filter with the
    largest activation (as the widget opens).
    """
    opts = DisplayOptions(sign, clip, cmap, overlay, alpha)
    layers = image["layers"]
    entry = next((e for e in layers if e["key"] == layer), layers[-1])
    if channel is None or channel not in entry["channels"]:
        channel = entry["channels"][int(np.argmax(entry["hi"]))]
    return {
        "image": image_index, "method": method, "target": image["target"], "layer": entry["key"], "channel": int(channel),
        "position": 0, **opts.as_dict(),
    }


def preview_png(page: InteractivePage, height: int = 160) -> bytes:
    """A PNG grid of the page's first views: per image, the input and each method's map of its first class."""
    rows = []
    st = page.manifest["state"]
    for n, img in enumerate(page.manifest["images"]):
        panels: list[np.ndarray] = []
        titles: list[str] = []
        for m in img["methods"]:
            state = {**st, "image": n, "method": m, "target": img["target"], "layer": img["layers"][-1]["key"],
                     "channel": img["layers"][-1]["channels"][0], "position": 0}
            out = render_state(page.payload, img, state)
            if not panels:
                panels.append(R.upscale(out["input"], height))
                titles.append(str(img["name"]))
            rgb = None if out["map"] is None else R.upscale(out["map"], height)
            panels.append(R.panel_or_message(rgb, out["messages"]["map"], (panels[0].shape[0], panels[0].shape[1])))
            titles.append(m)
        rows.append(R.compose(panels, titles, height=height))
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return R.to_png(np.concatenate(padded, axis=0))


def interactive_report(
    images: Sequence[Any],
    model: nn.Module,
    *,
    methods: Sequence[str] | None = None,
    target: int | str | None = None,
    labels: Sequence[str] | None = None,
    transform: Callable[[Image.Image], torch.Tensor] | None = None,
    weights: Any = None,
    processor: Any = None,
    names: Sequence[str],
    topk: int = TOPK,
    layers: Sequence[str] | None = None,
    channels: Sequence[int] | Mapping[str, Sequence[int]] | None = None,
    grid: int = 0,
    projection_rules: Sequence[str] = ("deconvnet",),
    sign: str = "absolute",
    clip_percentile: float = 99.0,
    cmap: str = "magma",
    overlay: bool = False,
    alpha: float = 0.6,
    title: str = "saliency-widget report",
    progress: Progress | None = None,
    extra_html: str = "",
    settings: MethodSettings | Mapping[str, Any] | None = None,
    featviz: bool | Mapping[str, Any] | FeatvizOptions = False,
) -> InteractivePage:
    """Precompute every view of ``images`` and assemble the interactive page.

    Parameters are those of :func:`saliency_widget.viz.report.render_report` (``names`` one
    caption per image) plus :func:`~.interactive.collect_image`'s ``topk``, ``layers``,
    ``channels``, ``grid`` and ``projection_rules``; ``methods`` defaults to every registered method.
    ``extra_html`` is static HTML (no script) shown below the viewer, e.g. the faithfulness scoreboards.
    ``settings``: the methods' settings (:meth:`MethodSettings.of`), as in the explorer.
    ``featviz``: True (or a mapping of :class:`~.interactive_featviz.FeatvizOptions` fields:
    ``steps``, ``size``, ``param``, ``seed``, ``transforms``) adds each exported filter's feature
    visualization ("what excites filter c"), one batched :func:`saliency_widget.visualize` call
    per layer (32 steps, 64 px by default: tens of seconds per 64-filter layer on a CPU).
    """
    DisplayOptions(sign, clip_percentile, cmap, overlay, alpha)  # bad display options fail before any computing
    fv = FeatvizOptions.of(featviz)
    io = describe_model(model, weights=weights, labels=labels, transform=transform, processor=processor)
    chosen = check_methods(methods) if methods is not None else available_methods()
    sets = MethodSettings.of(settings)
    images, names = list(images), [str(n) for n in names]
    if not images or len(names) != len(images):  # zip would drop the images without a name
        raise InputError(f"give one name per image: {len(images)} image(s), {len(names)} name(s)" if images else "no images to export")
    packer, entries = Packer(), []
    for image, name in zip(images, names):
        x = to_model_input(image, io.transform).unsqueeze(0)
        ex = Explainer(model, x)
        k = ex.num_classes
        classes = class_names(io.labels, k)
        resolved = resolve_target(target, classes, k)
        entries.append(collect_image(
            ex, packer, name=name, labels=classes, mean=io.mean, std=io.std, methods=chosen, topk=topk,
            target=resolved, layers=layers, channels=channels, grid=grid, projection_rules=projection_rules, progress=progress,
            method_options={m: sets.engine_options(m, x, io.mean, io.std) for m in chosen},
        ))
        del ex
    fv_rows = add_visualizations(model, entries, packer, fv, weights=weights, processor=processor, transform=transform,
                                 progress=progress) if fv is not None else {}
    state = first_state(entries[0], method=chosen[0], sign=sign, clip=clip_percentile, cmap=cmap, overlay=overlay, alpha=alpha)
    settings = {
        "model": type(model).__name__, "methods": ", ".join(chosen), "classes per image": topk,
        "projection rules": ", ".join(entries[0]["rules"]), "positions per filter": "strongest" + (f" + {grid}x{grid} grid" if grid else ""),
        **settings_text(sets, chosen), **fv_rows,
    }
    return interactive_page(entries, packer, title=title, state=state, settings=settings, extra_html=extra_html,
                            featviz=fv.as_text() if fv is not None else None)


def explorer_page(
    explainer: Explainer,
    state: Mapping[str, Any],
    *,
    name: str,
    labels: Sequence[str],
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    methods: Sequence[str],
    topk: int = TOPK,
    layers: Sequence[str] | None = None,
    channels: Sequence[int] | Mapping[str, Sequence[int]] | None = None,
    grid: int = 0,
    projection_rules: Sequence[str] = ("deconvnet",),
    title: str = "saliency-widget: explorer view",
    progress: Progress | None = None,
    featviz: bool | Mapping[str, Any] | FeatvizOptions = False,
) -> InteractivePage:
    """The explorer's current view as an interactive page that opens on the same state.

    Parameters
    ----------
    explainer
        The explorer's recorded forward of its image.
    state
        The explorer's state (``Explorer.state()``): method, target, layer, channel,
        position, display options and method settings (the page's maps are computed with
        these settings, and its settings table lists them).
    name, labels, mean, std, methods
        Caption, class names, input normalisation and the methods the explorer offers.
    topk, layers, channels, grid, projection_rules, title, progress
        As in :func:`interactive_report`; ``layers`` defaults to the explorer's layer plus
        :func:`~.interactive.representative_layers`, and the explorer's filter and clicked
        activation are always exported.
    featviz
        As in :func:`interactive_report`: each exported filter's feature visualization.
    """
    fv = FeatvizOptions.of(featviz)
    layer, channel = str(state["layer"]), int(state["channel"])
    keys = list(layers) if layers is not None else representative_layers(explainer.layers, current=layer)
    if layer not in keys:
        keys = [layer, *keys]
    per_layer: dict[str, list[int]] = {}
    for key in keys:
        wanted = channels.get(key) if isinstance(channels, Mapping) else channels
        if wanted is None:
            act = explainer.activation(key)[0].detach().cpu().double()
            peaks = torch.nan_to_num(act.flatten(1).amax(dim=1), nan=-torch.inf)
            wanted = torch.argsort(-peaks, stable=True)[:MAX_CHANNELS].tolist()
        per_layer[key] = sorted({int(c) for c in wanted} | ({channel} if key == layer else set()))
    pos = state.get("position")
    extra = {layer: {channel: [(int(pos[0]), int(pos[1]))]}} if pos is not None else {}
    target = state.get("target")
    chosen = MethodSettings(**{k: state[k] for k in MethodSettings.names() if k in state})
    options = {m: chosen.engine_options(m, explainer.inputs, mean, std) for m in methods}
    entry = collect_image(
        explainer, (packer := Packer()), name=name, labels=labels, mean=mean, std=std, methods=methods, topk=topk,
        target=None if target is None else int(target), layers=keys, channels=per_layer, grid=grid,
        projection_rules=projection_rules, positions=extra, progress=progress, method_options=options,
    )
    pre = Normalize(mean, std) if mean is not None and std is not None else None  # the explorer's own normalisation
    fv_rows = add_visualizations(explainer.model, [entry], packer, fv, preprocess=pre, progress=progress) if fv is not None else {}
    first = first_state(entry, method=str(state["method"]), sign=str(state["sign"]), clip=float(state["clip"]),
                        cmap=str(state["cmap"]), overlay=bool(state.get("overlay")), alpha=float(state.get("alpha", 0.6)),
                        layer=layer, channel=channel)
    if pos is not None:
        spots = next(e for e in entry["layers"] if e["key"] == layer)["projections"]
        row = spots[per_layer[layer].index(channel)]
        first["position"] = next(i for i, s in enumerate(row) if tuple(s["p"]) == (int(pos[0]), int(pos[1])))
    settings = {
        "model": type(explainer.model).__name__, "methods": ", ".join(methods), "classes": topk,
        "projection rules": ", ".join(entry["rules"]), "positions per filter": "strongest" + (f" + {grid}x{grid} grid" if grid else ""),
        **settings_text(chosen, methods), **fv_rows,
    }
    return interactive_page([entry], packer, title=title, state=first, settings=settings, featviz=fv.as_text() if fv is not None else None)

