"""From a state snapshot to the pictures of one view: pure computation, no widget.

:func:`compute_view` takes an engine :class:`~saliency_widget.engine.Explainer` (one recorded
forward pass of one image) and a frozen :class:`Snapshot` of the controls, and returns a
:class:`ViewResult` holding the raw maps (:class:`~.rawmap.RawMap`, drawn with the display
options by whoever shows them), the other panels as PNG bytes, and the numbers the view shows
(class probabilities, the bars, the feature-map grid and the clicked position). The explorer runs it
on its worker thread and hands the result to the view; a test can call it with a tiny net and
no widget at all.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..engine import Explainer, LayerInfo, LayerKey, method_label
from ..engine.progress import reporting
from ..errors import Cancelled, InputError, LayerError, choices
from ..viz import render as R
from .classes import ALL_BARS, TOPK, bar_entries, class_names, projection_rule, strongest
from .memo import ViewMemo
from .rawmap import RawMap
from .snapshot import Snapshot
from .viewresult import COMPARE_ROW, PANEL, CompareTile, ViewResult, view_png

# Snapshot, ViewResult, CompareTile, view_png and the panel sizes live in .snapshot and .viewresult;
# they are re-exported here, the one import of the view pipeline.
__all__ = [
    "ALL_BARS", "COMPARE_ROW", "PANEL", "TOPK", "WIDGET_OPTIONS", "CompareTile", "Snapshot", "ViewCancelled", "ViewResult",
    "bar_entries", "compute_view", "feature_png", "find_layer", "needs_map", "projection_rule", "receptive_box", "view_png",
]

#: Options the widget passes to the batched methods: batches of 8 instead of one batch of all
#: 32 IG steps (or 16 SmoothGrad samples), so a newer request can stop them within a batch
#: (~1/4 of the map's time) at about the same total cost on a CPU.
WIDGET_OPTIONS: dict[str, dict[str, int]] = {"integrated_gradients": {"batch_size": 8}, "smoothgrad": {"batch_size": 8}}


class ViewCancelled(Cancelled):
    """Raised by :func:`compute_view` when a newer request superseded it (``progress`` or ``newer``).

    Control flow, not an error a user sees: a newer request superseded this view, so the
    explorer drops it and serves the newer one (no stale view is shown).
    """


def needs_map(snapshot: Snapshot, version: int, method: str, target: int, predicted: int) -> bool:
    """Whether the view of ``snapshot`` needs the map of ``method`` for class ``target`` of image ``version``.

    A slow map (occlusion, SmoothGrad, IG) keeps computing when the newer request needs it
    too (a click on the feature map, another colormap): stopping it would only start it again.
    ``predicted`` is the class a ``target`` of None stands for.
    """
    wanted = predicted if snapshot.target is None else int(snapshot.target)
    same_map = snapshot.method == method or snapshot.view == "compare"
    return snapshot.version == version and wanted == target and same_map


def find_layer(explainer: Explainer, key: str) -> LayerInfo:
    """The recorded layer execution ``key`` (``"name"`` or ``"name#call"``), or a LayerError listing the valid keys."""
    wanted = LayerKey.parse(key)
    layers = explainer.layers
    for info in layers:
        if (info.name, info.call) == (wanted.name, wanted.call):
            return info
    raise LayerError(f"unknown layer {key!r}; expected one of {choices([i.key for i in layers])}")


def feature_png(fmap: np.ndarray, pos: tuple[int, int]) -> tuple[bytes, str]:
    """One filter's ``(h, w)`` activations as a viridis PNG (min-max scaled), and its caption."""
    if not np.isfinite(fmap).all():
        return R.to_png(np.full((*fmap.shape, 3), 235, np.uint8)), "feature map contains NaN/Inf"
    lo, hi = float(fmap.min()), float(fmap.max())
    v = (fmap - lo) / (hi - lo) if hi > lo else np.zeros_like(fmap)
    rgb = R.apply_colormap(v, "viridis")
    my, mx = np.unravel_index(int(np.argmax(fmap)), fmap.shape)
    caption = f"max {hi:.4g} at ({my}, {mx})   selected ({pos[0]}, {pos[1]}) = {float(fmap[pos]):.4g}"
    if hi == lo == 0.0:
        caption = "this filter is all zeros on this image"
    return R.to_png(rgb), caption


def compute_view(
    explainer: Explainer,
    snapshot: Snapshot,
    *,
    labels: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    methods: Sequence[str] | None = None,
    memo: ViewMemo | None = None,
    progress: Callable[[int, int], bool] | None = None,
    newer: Callable[[], Snapshot | None] | None = None,
    batches: Callable[[int, int], None] | None = None,
    partial: Callable[[str, float, RawMap, np.ndarray], None] | None = None,
) -> ViewResult:
    """Compute every panel of the view described by ``snapshot``.

    Parameters
    ----------
    explainer
        One recorded forward pass of a single image (inputs ``(1, C, H, W)``).
    snapshot
        The control state.
    labels
        Class names (length K); default ``"class i"``.
    mean, std
        Normalisation of the input, to show it in colour; None min-max scales it.
    methods
        Methods of the compare view, in order; default all registered.
    memo
        Reused between calls so a repeated map costs nothing.
    progress
        Compare view only: called as ``progress(done, total)`` before each method's map and
        once more when all ``total`` are done; returning False stops the computation with
        :class:`ViewCancelled` (the engine computes one map at a time, so this is where a long
        compare view can give way to a newer request).
    newer
        The request waiting behind this one (None when none waits), asked between the batches
        of occlusion, SmoothGrad and IG: a map that request does not need (:func:`needs_map`)
        stops with :class:`ViewCancelled`, so the newest click is served about one batch later.
    batches
        Called as ``batches(done, total)`` between those batches (inputs of the current map done).
    partial
        Called as ``partial(method, fraction, raw, base)`` with each partial main map of those
        methods (occlusion coarse to fine, SmoothGrad / IG running averages; see
        :func:`~saliency_widget.engine.progress.previewing`), ``base`` the ``(H, W, 3)`` input;
        never for a map a newer request does not need. The final map is the one-shot map.

    Returns
    -------
    ViewResult

    Raises
    ------
    ViewCancelled
        ``progress`` returned False, or ``newer`` waits for a view without the running map.
    SaliencyError
        A target, layer, filter or position out of range, or a method that cannot apply.
    """
    t0 = time.perf_counter()
    memo = memo if memo is not None else ViewMemo()
    memo.bind(explainer)
    v = snapshot.version
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probs = explainer.probabilities[0].detach().cpu().double().numpy()
        k = probs.shape[0]
        names = class_names(labels, k)
        predicted = int(np.argmax(probs))
        target = predicted if snapshot.target is None else int(snapshot.target)
        if not 0 <= target < k:
            raise InputError(f"target {target} out of range for {k} classes; valid targets are 0..{k - 1}")
        base = R.input_to_rgb(explainer.inputs[0].detach().cpu().numpy(), mean, std)
        panels: dict[str, bytes] = {}
        messages: dict[str, str | None] = {}
        maps: dict[str, RawMap] = {}
        compare: tuple[CompareTile, ...] = ()
        settings = snapshot.settings

        def raw_map(method: str, watch: bool = False) -> tuple[RawMap | None, str | None]:
            why = explainer.unavailable(method)
            if why is not None:  # e.g. DeconvNet on a GELU model: say why instead of failing the view
                return None, why
            def on_batch(done: int, total: int) -> None:
                waiting = newer() if newer is not None else None
                if waiting is not None and not needs_map(waiting, v, method, target, predicted):
                    raise ViewCancelled(f"{method} stopped after {done} of {total} inputs: a newer request does not need it")
                if batches is not None:
                    batches(done, total)

            def on_partial(fraction: float, maps: torch.Tensor) -> None:
                waiting = newer() if newer is not None else None
                if partial is not None and (waiting is None or needs_map(waiting, v, method, target, predicted)):
                    partial(method, fraction, RawMap.from_map(maps[0].detach().cpu().numpy()), base)

            def compute() -> np.ndarray:
                opts = {**WIDGET_OPTIONS.get(method, {}), **settings.engine_options(method, explainer.inputs, mean, std)}
                with reporting(on_batch):
                    out = explainer.saliency(target=target, method=method, partial=on_partial if watch else None, **opts)
                return out[0].detach().cpu().numpy()

            # the settings the method reads are part of its map's identity (another IG baseline: another map)
            key = (v, method, target, tuple(sorted(settings.for_method(method).items())))
            return memo.saliency.get_or(key, lambda: RawMap.from_map(compute())), None

        main, messages["map"] = raw_map(snapshot.method, watch=partial is not None)
        if main is not None:
            maps["map"] = main
        if snapshot.view == "compare":
            shown = list(methods) if methods is not None else None
            if shown is None:
                from ..engine import available_methods

                shown = available_methods()
            tiles: list[CompareTile] = []
            for i, m in enumerate(shown):
                if progress is not None and not progress(i, len(shown)):
                    raise ViewCancelled(f"compare view stopped after {i} of {len(shown)} methods")
                mraw, mmsg = raw_map(m)
                tiles.append(CompareTile(m, method_label(m), mraw, mmsg))
            compare = tuple(tiles)
            if progress is not None and not progress(len(shown), len(shown)):
                raise ViewCancelled("compare view superseded")

        info = find_layer(explainer, snapshot.layer)
        key = LayerKey(info.name, info.call)
        act = memo.activation.get_or((v, str(key)), lambda: explainer.activation(key)[0].detach().cpu().numpy())
        if not 0 <= snapshot.channel < act.shape[0]:
            raise InputError(f"filter {snapshot.channel} out of range: {key} has {act.shape[0]} filters (0..{act.shape[0] - 1})")
        fmap = act[snapshot.channel]
        pos = snapshot.position
        if pos is None:
            pos = strongest(fmap)
        if not (0 <= pos[0] < fmap.shape[0] and 0 <= pos[1] < fmap.shape[1]):
            raise InputError(f"position {pos} outside the {fmap.shape[0]}x{fmap.shape[1]} feature map of {key}")
        # the feature map, the receptive field and the input do not depend on the method or the
        # class: a method switch reuses their PNGs (no colormap, encode or probe pass again)
        panels["feature"], caption = memo.panels.get_or(("feature", v, str(key), snapshot.channel, pos), lambda: feature_png(fmap, pos))
        # (when no gradient runs at all, the panel says so below, not "no ReLU")
        has_relu = explainer.unavailable("deconvnet") is None or explainer.unavailable("gradient") is not None
        rule = projection_rule(snapshot.method, has_relu)
        why_not = explainer.unavailable(rule)  # e.g. a forward that disables gradients
        if why_not is not None:
            messages["projection"] = why_not
        else:
            maps["projection"] = memo.projection.get_or(
                (v, str(key), snapshot.channel, pos, rule),
                lambda: RawMap.from_map(explainer.project(key, snapshot.channel, position=pos, method=rule)[0].detach().cpu().numpy()),
            )
            messages["projection"] = None
        box, box_note = memo.panels.get_or(("box", v, str(key), pos), lambda: receptive_box(explainer, key, pos))
        panels["input"] = memo.panels.get_or(
            ("input", v, box), lambda: R.to_png(R.draw_box(base, box, (0, 255, 0), 2) if box is not None else base)
        )
    return ViewResult(
        snapshot=snapshot,
        target=target,
        probs=probs,
        bars=bar_entries(probs, names, target),
        panels=panels,
        messages=messages,
        method_label=method_label(snapshot.method),
        class_label=str(names[target]),
        grid=(int(fmap.shape[0]), int(fmap.shape[1])),
        position=(int(pos[0]), int(pos[1])),
        feature_caption=caption,
        projection_rule=rule,
        projection_note="" if has_relu else "the model has no ReLU, so DeconvNet is undefined: gradient projection",
        box=box,
        box_note=box_note,
        maps=maps,
        compare=compare,
        base=base,
        warnings=tuple(str(w.message).splitlines()[0] for w in caught),
        ms=(time.perf_counter() - t0) * 1000.0,
    )


def receptive_box(
    explainer: Explainer, key: LayerKey, pos: tuple[int, int]
) -> tuple[tuple[int, int, int, int] | None, str]:
    """The receptive-field box of unit ``pos`` of ``key``, or None and a one-line note.

    The box is measured by a probe pass of the model on synthetic input (see
    :mod:`saliency_widget.engine.receptive`); a model that validates its input may refuse it
    though the real image is fine. That failure costs only the box, never the view.
    """
    try:
        box = explainer.receptive_field(key, pos[0], pos[1])
    except Exception as exc:  # noqa: BLE001 -- any failure of the user's forward on the probe
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return None, f"no receptive-field box: the model failed on the synthetic probe input ({type(exc).__name__}: {first})"
    return (int(box[0]), int(box[1]), int(box[2]), int(box[3])), ""
