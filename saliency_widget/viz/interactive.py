"""Precomputed views of one image for an interactive report (a page you can click without a kernel).

:func:`collect_image` asks the engine's public :class:`~saliency_widget.engine.Explainer`
surface for everything a reader may click: every method x the top-k classes, the feature maps
of the chosen layers and, per filter, the projection of its strongest activation (optionally
of a coarse grid of positions too). Maps are stored as raw values (two quantised planes, see
:mod:`saliency_widget.viz.bundle`), so the viewer applies sign, clipping, colormap and overlay
itself, exactly as :func:`saliency_widget.viz.render.render_map` does.

:func:`render_state` is the Python reference of what the viewer shows for a state: the same
render functions as the widget, applied to the values the page holds.
"""

from __future__ import annotations

import operator
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..engine import RULES, Explainer, LayerInfo, LayerKey, available_methods, method_label, receptive_fields
from ..engine.layouts import SPATIAL_LAYOUTS
from ..errors import InputError, LayerError, SaliencyError, choices
from ..views.classes import (
    TOPK,
    chart_classes,
    check_methods,
    class_names,
    projection_rule,
    strongest,
    top_classes,
)
from ..views.classes import projection_rules as rules_by_method
from . import render as R
from .bundle import BUDGET_BYTES, Packer, decode

__all__ = [
    "TOPK",
    "collect_image",
    "export_classes",
    "grid_positions",
    "projection_rule",
    "render_state",
    "representative_layers",
]

MAX_CHANNELS = 64  # filters per layer by default: the most active ones

Progress = Callable[[str], None]


def representative_layers(layers: Sequence[LayerInfo], count: int = 3, current: str | None = None) -> list[str]:
    """Keys of ``count`` layers spread over the depth of the network, deepest last.

    Post-ReLU layers with a real spatial map are preferred (the widget opens on the deepest
    of them); ``current`` (the widget's layer) is always included.

    Raises
    ------
    LayerError
        No layer has a spatial ``(C, H, W)`` output.
    """
    maps = [i for i in layers if i.layout in SPATIAL_LAYOUTS]
    if not maps:
        raise LayerError(f"no layer with a (C, H, W) output to export; layers: {choices([i.key for i in layers])}")
    spatial = [i for i in maps if i.shape[1] * i.shape[2] > 1] or maps
    pool = [i for i in spatial if "relu" in i.type.lower()] or spatial
    n = max(1, min(count, len(pool)))
    picks = [pool[round(j * (len(pool) - 1) / max(1, n - 1))].key for j in range(n)] if n > 1 else [pool[-1].key]
    keys = list(dict.fromkeys(picks))
    if current is not None and current not in keys:
        keys = [current] + keys[1:] if len(keys) >= count else [current] + keys
    order = {i.key: n for n, i in enumerate(layers)}
    return sorted(keys, key=lambda k: order.get(k, -1))


#: The classes whose maps are exported (the chart's classes when the model has many): see :func:`saliency_widget.views.top_classes`.
export_classes = top_classes


def grid_positions(h: int, w: int, grid: int) -> list[tuple[int, int]]:
    """Centres of a ``grid`` x ``grid`` lattice of cells over an ``h`` x ``w`` map (no duplicates)."""
    if grid <= 0:
        return []
    # a lattice at least as fine as the map hits every row (column): a huge grid costs no more than that
    ys = list(range(h)) if grid >= h else sorted({min(h - 1, int((j + 0.5) * h / grid)) for j in range(grid)})
    xs = list(range(w)) if grid >= w else sorted({min(w - 1, int((j + 0.5) * w / grid)) for j in range(grid)})
    return [(y, x) for y in ys for x in xs]


def _map_entry(packer: Packer, raw: NDArray[np.floating], part: str) -> dict[str, Any]:
    values, message, _ = R.prepare_map(raw, "absolute", 100.0)
    if values is None and message is not None and "non-finite" in message:
        return {"message": message}
    return packer.add_map(raw, part)


def _is_index(v: object) -> bool:
    """An integer (Python, NumPy or an integer 0-d tensor), not a bool and not a float like 2.5."""
    if isinstance(v, bool):
        return False
    try:
        operator.index(v)  # type: ignore[arg-type]
    except TypeError:
        return False
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _features(packer: Packer, act: NDArray[np.floating], channels: Sequence[int]) -> dict[str, Any]:
    """Each filter's activations as the widget's viridis indices (min-max per filter), exactly."""
    idx, lo, hi, ok = [], [], [], []
    for c in channels:
        f = np.asarray(act[c], dtype=np.float64)
        finite = bool(np.isfinite(f).all())
        ok.append(finite)
        if not finite:
            idx.append(np.zeros(f.shape, np.uint8))
            lo.append(0.0)
            hi.append(0.0)
            continue
        a, b = float(f.min()), float(f.max())
        v = (f - a) / (b - a) if b > a else np.zeros_like(f)
        idx.append(np.clip(np.rint(np.clip(v, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8))  # as apply_colormap
        lo.append(a)
        hi.append(b)
    return {"features": packer.add(np.stack(idx), "features"), "lo": lo, "hi": hi, "finite": ok}


def _boxes(explainer: Explainer, key: LayerKey, spots: Sequence[tuple[int, int]]) -> dict[tuple[int, int], list[int] | None]:
    """Receptive-field boxes of ``spots`` of ``key`` in one batched probe (what ``Explainer.receptive_field`` gives each).

    One probe batch instead of one probe per position (64 filters: ~30x faster). The probe runs
    the model outside the Explainer's lock, so nothing else may run this model meanwhile: the
    explorer waits for its worker before exporting, and the export blocks the kernel thread.
    """
    try:
        found = receptive_fields(
            explainer.model, tuple(explainer.inputs.shape[1:]), key.name, list(spots), key.call,
            explainer.inputs.dtype, explainer.device, layout=explainer.layout(key),
        )
    except Exception:  # noqa: BLE001 -- the probe may fail on a model that checks its input; only the boxes are lost
        return dict.fromkeys(spots)
    return {p: [int(v) for v in b] for p, b in zip(spots, found)}


def collect_image(
    explainer: Explainer,
    packer: Packer,
    *,
    name: str,
    labels: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    methods: Sequence[str] | None = None,
    topk: int = TOPK,
    target: int | None = None,
    layers: Sequence[str] | None = None,
    channels: Sequence[int] | Mapping[str, Sequence[int]] | None = None,
    grid: int = 0,
    projection_rules: Sequence[str] = ("deconvnet",),
    positions: Mapping[str, Mapping[int, Sequence[tuple[int, int]]]] | None = None,
    progress: Progress | None = None,
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Every view of one image a reader can click, with its arrays appended to ``packer``.

    Parameters
    ----------
    explainer
        One recorded forward pass of one image (inputs ``(1, C, H, W)``).
    packer
        Receives the quantised arrays.
    name
        Caption of the image.
    labels
        K class names (default ``"class i"``).
    mean, std
        Input normalisation, to show the input in colour (as the widget).
    methods
        Registered method names (default: all, in registry order).
    topk
        Classes per image (the target is always among them).
    target
        Class shown first (default: the predicted one).
    layers
        Layer keys with feature maps (default: :func:`representative_layers`).
    channels
        Filters to export, for every layer or per layer key (default: the ``MAX_CHANNELS``
        filters with the largest activation, in index order).
    grid
        Also project a ``grid`` x ``grid`` lattice of positions per filter (0: only the strongest).
    projection_rules
        ReLU rules the projections are exported with (the widget uses DeconvNet for every
        method but Gradient and Guided Backprop).
    positions
        More ``(y, x)`` positions to project, per layer key and filter (e.g. the widget's
        clicked activation).
    progress
        Called with a short line before each expensive step.
    method_options
        Engine options per method (e.g. ``{"integrated_gradients": {"steps": 8}}``, the explorer's
        method settings), passed to ``explainer.saliency``.

    Returns
    -------
    dict
        The image's part of the page's manifest (JSON-able; arrays are references).
    """
    say = progress or (lambda _msg: None)
    methods = check_methods(methods) if methods is not None else available_methods()
    if not _is_index(topk) or topk < 1:
        raise InputError(f"topk must be a positive int (classes per image), got {topk!r}")
    if not _is_index(grid) or grid < 0:
        raise InputError(f"grid must be an int >= 0 (a grid x grid lattice of positions per filter, 0: the strongest only), got {grid!r}")
    topk, grid = int(topk), int(grid)
    if isinstance(layers, str):
        raise InputError(f"layers must be a list of layer keys, got the string {layers!r}; use [{layers!r}]")
    probs = explainer.probabilities[0].detach().cpu().double().numpy()
    k = probs.shape[0]
    names = class_names(labels, k)
    if target is not None and (not _is_index(target) or not 0 <= int(target) < k):
        raise InputError(f"target {target!r} out of range for {k} classes; valid targets are the ints 0..{k - 1}")
    logits = explainer.logits[0].detach().cpu().double().numpy()
    bad_scores = np.flatnonzero(~np.isfinite(logits))
    if bad_scores.size:  # softmax of them is NaN everywhere, which no page (and no JSON) can show
        c = int(bad_scores[0])
        raise InputError(f"image {name!r}: the model's score (logit) of class {c} ({names[c]!r}) is {float(logits[c])}"
                         f"{f' (and {bad_scores.size - 1} more class(es))' if bad_scores.size > 1 else ''}; "
                         "cannot export non-finite scores: check the model and the image's preprocessing")
    classes = top_classes(probs, target, topk)
    chart = chart_classes(probs, target, topk)
    chart += [c for c in classes if c not in chart]
    base = R.input_to_rgb(explainer.inputs[0].detach().cpu().numpy(), mean, std)
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        maps: dict[str, dict[str, Any]] = {}
        keys_planned = list(layers) if layers is not None else representative_layers(explainer.layers)
        if progress is not None:  # a size estimate first, then numbered steps with the time so far
            say(export_estimate(explainer, methods, len(classes), keys_planned, channels, grid, len(projection_rules),
                                positions or {}, name))
            say = _Steps(progress, len(methods) + len(keys_planned))
        for m in methods:
            say(f"{name}: {m} x {len(classes)} classes")
            maps[m] = {}
            why = explainer.unavailable(m)
            for c in classes:
                if why is not None:
                    maps[m][str(c)] = {"message": why}
                    continue
                try:
                    raw = explainer.saliency(target=c, method=m, **(method_options or {}).get(m, {}))[0].detach().cpu().numpy()
                except SaliencyError as err:
                    maps[m][str(c)] = {"message": _first_line(err)}
                    continue
                maps[m][str(c)] = _map_entry(packer, raw, "maps")
        has_relu = explainer.unavailable("deconvnet") is None or explainer.unavailable("gradient") is not None
        rules = [r for r in projection_rules if r in RULES] if has_relu else ["gradient"]
        if not rules:
            raise InputError(f"projection_rules {list(projection_rules)} names no ReLU rule; expected names from {choices(RULES)}")
        keys = keys_planned
        extra = positions or {}
        exported = [_layer(explainer, packer, key, channels, grid, rules, name, say, extra.get(key, {})) for key in keys]
        caught = [str(w.message).splitlines()[0] for w in log]
    return {
        "name": name,
        "size": [int(base.shape[0]), int(base.shape[1])],
        "input": packer.add(base, "inputs"),
        "labels": {str(i): names[i] for i in sorted(set(chart))},
        "probs": {str(i): float(probs[i]) for i in sorted(set(chart))},
        "chart": chart,
        "classes": classes,
        "predicted": int(np.argmax(probs)),
        "target": classes[0] if target is None else int(target),
        "methods": methods,
        "maps": maps,
        "has_relu": has_relu,
        "rules": rules,
        "projection": rules_by_method(methods, has_relu),
        "layers": exported,
        "warnings": list(dict.fromkeys(caught)),
    }


class _Steps:
    """A progress line callback that numbers the steps and says the time so far: ``[3/8, 12 s] ...``."""

    def __init__(self, say: Progress, total: int) -> None:
        self.say, self.total, self.done, self.t0 = say, total, 0, time.monotonic()

    def __call__(self, line: str) -> None:
        self.done += 1
        self.say(f"[{min(self.done, self.total)}/{self.total}, {time.monotonic() - self.t0:.0f} s] {line}")


def export_estimate(
    explainer: Explainer,
    methods: Sequence[str],
    classes: int,
    layers: Sequence[str],
    channels: Sequence[int] | Mapping[str, Sequence[int]] | None,
    grid: int,
    rules: int,
    positions: Mapping[str, Mapping[int, Sequence[tuple[int, int]]]],
    name: str = "image",
) -> str:
    """One line: what an interactive export of one image will compute and the range of the page's size.

    Each map and each projection is at most two 16-bit planes of the input's size (a
    single-channel map, as a CAM's, stores one), filtered and compressed to between about 0.2
    (sparse and single-channel maps) and 1 (dense deep projections) of that, base64-encoded in the page
    (4/3). When the page may exceed the budget (``may be over``; ``over`` when even the low end
    does) the line adds the advice of docs/reports.md: fewer
    methods, layers or filters.

    Parameters
    ----------
    explainer
        The recorded forward of the image, inputs ``(1, C, H, W)``.
    methods, classes, layers, channels, grid, rules, positions
        What :func:`collect_image` will export: the methods, the classes per image, the layer
        keys, the filters (as its ``channels``), the projection lattice, the number of
        projection rules and the extra positions.
    name
        The image's caption.
    """
    H, W = (int(v) for v in explainer.inputs.shape[-2:])
    n_maps = sum(1 for m in methods if explainer.unavailable(m) is None) * classes
    n_proj, feature_bytes = 0, 0
    for key in layers:
        try:
            n, h, w = (int(v) for v in explainer.activation(key)[0].shape[-3:])
        except (SaliencyError, ValueError):
            continue  # a bad key: the export says why
        chosen = channels.get(key) if isinstance(channels, Mapping) else channels
        count = min(MAX_CHANNELS, n) if chosen is None else len(list(chosen))
        extra = sum(len(v) for v in positions.get(key, {}).values())
        n_proj += (count * (1 + grid * grid) + extra) * rules
        feature_bytes += count * h * w
    raw = (n_maps + n_proj) * H * W * 4 + feature_bytes
    # measured: the bundled model's maps and projections to 0.25-0.35 of two planes each (15 methods, one plane for its
    # 7 single-channel ones, filtered), dense deep projections ~0.9 (ResNet-18)
    low, high = raw * 0.2 * 4 / 3, raw * 4 / 3
    line = (f"{name}: {n_maps} maps and {n_proj} projections of {H}x{W} px to compute; the page will be about "
            f"{low / 1e6:.1f}-{high / 1e6:.1f} MB")
    if high > BUDGET_BYTES:  # "may be": sparse and single-channel maps compress to the low end
        line += (f" ({'may be ' if low <= BUDGET_BYTES else ''}over the {BUDGET_BYTES / 1e6:.0f} MB budget): for a smaller, "
                 "faster page pass fewer methods=[...], layers=[...] or channels=[...] (a few filters), see docs/reports.md")
    return line


def _layer(
    explainer: Explainer,
    packer: Packer,
    key: str,
    channels: Sequence[int] | Mapping[str, Sequence[int]] | None,
    grid: int,
    rules: Sequence[str],
    name: str,
    say: Progress,
    extra: Mapping[int, Sequence[tuple[int, int]]],
) -> dict[str, Any]:
    infos = {i.key: i for i in explainer.layers}
    wanted = LayerKey.parse(key)
    info = infos.get(str(wanted)) or next((i for i in explainer.layers if (i.name, i.call) == (wanted.name, wanted.call)), None)
    if info is None or info.layout not in SPATIAL_LAYOUTS:
        spatial = [i.key for i in explainer.layers if i.layout in SPATIAL_LAYOUTS]
        raise LayerError(f"cannot export layer {key!r}: expected a layer with a (C, H, W) output, one of {choices(spatial)}")
    lk = LayerKey(info.name, info.call)
    act = explainer.activation(lk)[0].detach().cpu().numpy()
    n, h, w = act.shape
    chosen = channels.get(info.key) if isinstance(channels, Mapping) else channels
    if chosen is None:
        peaks = np.nan_to_num(act.reshape(n, -1).max(axis=1), nan=-np.inf)
        chosen = sorted(int(c) for c in np.argsort(-peaks, kind="stable")[:MAX_CHANNELS])
    if isinstance(chosen, (str, bytes)) or not all(_is_index(c) for c in chosen):
        raise InputError(f"channels of {info.key} must be filter indices (ints), got {chosen!r}")
    chans = [int(c) for c in chosen]
    out_of_range = [c for c in chans if not 0 <= c < n]
    if out_of_range or not chans:
        raise InputError(f"channels {out_of_range or chans} of {info.key} out of range: it has {n} filters (0..{n - 1})")
    entry: dict[str, Any] = {"key": info.key, "type": info.type, "shape": [n, h, w], "channels": chans}
    entry.update(_features(packer, act, chans))
    spots_of = []
    for c in chans:
        fmap = act[c]
        best = strongest(fmap)  # as the widget's compute_view
        more = [(int(p[0]), int(p[1])) for p in extra.get(c, ())]
        bad = [p for p in more if not (0 <= p[0] < h and 0 <= p[1] < w)]
        if bad:
            raise InputError(f"positions {bad} outside the {h}x{w} feature map of {info.key}")
        spots_of.append(list(dict.fromkeys([best, *more, *grid_positions(h, w, grid)])))
    boxes = _boxes(explainer, lk, list(dict.fromkeys(p for spots in spots_of for p in spots)))
    projections = []
    say(f"{name}: {info.key}, {len(chans)} filters x {len(rules)} rule(s)")
    for c, spots in zip(chans, spots_of):
        fmap = act[c]
        row = []
        for pos in spots:
            v = float(fmap[pos])
            item: dict[str, Any] = {"p": [int(pos[0]), int(pos[1])], "v": v if np.isfinite(v) else None, "box": boxes[pos], "r": {}}
            for rule in rules:
                why = explainer.unavailable(rule)
                if why is not None:
                    item["r"][rule] = {"message": why}
                    continue
                try:
                    raw = explainer.project(lk, c, position=pos, method=rule)[0].detach().cpu().numpy()
                except SaliencyError as err:
                    item["r"][rule] = {"message": _first_line(err)}
                    continue
                item["r"][rule] = _map_entry(packer, raw, "projections")
            row.append(item)
        projections.append(row)
    entry["projections"] = projections
    entry["label"] = f"{info.key} ({info.type}, {n}x{h}x{w})"
    return entry


def _planes_render(
    buffer: bytes, entry: Mapping[str, Any], state: Mapping[str, Any], base: NDArray[np.uint8]
) -> tuple[NDArray[np.uint8] | None, str | None]:
    if "message" in entry:
        return None, str(entry["message"])
    sign = str(state["sign"])
    plane = np.asarray(decode(buffer, entry["abs"] if sign == "absolute" else entry["sum"]), dtype=np.float64)
    rm = R.render_map(plane, sign=sign, clip_percentile=float(state["clip"]), cmap=str(state["cmap"]))
    if rm.rgb is None:
        return None, rm.message
    rgb = rm.rgb
    if state.get("overlay") and rgb.shape == base.shape:
        rgb = R.overlay(base, rgb, float(state["alpha"]), rm.weight)
    return rgb, None


def render_state(buffer: bytes, image: Mapping[str, Any], state: Mapping[str, Any]) -> dict[str, Any]:
    """What the viewer shows for ``state``, rendered in Python from the page's own values.

    Parameters
    ----------
    buffer
        The uncompressed payload.
    image
        One entry of the manifest's ``images``.
    state
        ``method``, ``target``, ``layer``, ``channel``, ``position`` (an index into the filter's
        precomputed positions), ``sign``, ``clip``, ``cmap``, ``overlay``, ``alpha``.

    Returns
    -------
    dict
        ``map``, ``projection`` (``(H, W, 3)`` uint8 or None), ``feature`` (``(h, w, 3)``),
        ``input`` (with the receptive-field box), ``messages`` per panel and the projection ``rule``.
    """
    base = np.asarray(decode(buffer, image["input"]), dtype=np.uint8)
    out: dict[str, Any] = {"messages": {}}
    out["map"], out["messages"]["map"] = _planes_render(buffer, image["maps"][state["method"]][str(state["target"])], state, base)
    layer = next(e for e in image["layers"] if e["key"] == state["layer"])
    i = layer["channels"].index(int(state["channel"]))
    fidx = np.asarray(decode(buffer, layer["features"]), dtype=np.intp)[i]
    out["feature"] = R.colormap_lut("viridis")[fidx] if layer["finite"][i] else np.full((*fidx.shape, 3), 235, np.uint8)
    spot = layer["projections"][i][int(state.get("position", 0))]
    rule = image["projection"][str(state["method"])]
    out["rule"] = rule if rule in spot["r"] else image["rules"][0]
    out["projection"], out["messages"]["projection"] = _planes_render(buffer, spot["r"][out["rule"]], state, base)
    out["input"] = R.draw_box(base, tuple(spot["box"]), (0, 255, 0), 2) if spot["box"] is not None else base
    out["method_label"] = method_label(str(state["method"]))
    return out
