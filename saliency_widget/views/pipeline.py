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
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch

from ..engine import Explainer, LayerInfo, LayerKey, method_label
from ..engine.progress import reporting
from ..errors import Cancelled, InputError, LayerError, choices
from ..viz import render as R
from ..viz.colorbar import colorbar, with_colorbar
from .classes import ALL_BARS, TOPK, bar_entries, class_names, projection_rule, strongest
from .compare import compare_grid
from .memo import ViewMemo
from .options import DisplayOptions
from .rawmap import RawMap, Rendered
from .settings import MethodSettings

__all__ = [
    "ALL_BARS", "PANEL", "TOPK", "WIDGET_OPTIONS", "CompareTile", "Snapshot", "ViewCancelled", "ViewResult", "bar_entries", "compute_view",
    "needs_map", "projection_rule",
]

PANEL = 224  # display size (px) of the image panels
COMPARE_ROW = 5  # tiles per row of the compare view

#: Options the widget passes to the batched methods: batches of 8 instead of one batch of all
#: 32 IG steps (or 16 SmoothGrad samples), so a newer request can stop them within a batch
#: (~1/4 of the map's time) at about the same total cost on a CPU.
WIDGET_OPTIONS: dict[str, dict[str, int]] = {"integrated_gradients": {"batch_size": 8}, "smoothgrad": {"batch_size": 8}}


@dataclass(frozen=True, init=False)
class Snapshot:
    """Immutable copy of the state one view is computed from.

    Attributes
    ----------
    version
        Image version (bumped by every new image); a result for an older version is stale.
    method
        Registered method name of the main map.
    target
        Class index, or None for the predicted class.
    layer
        Layer key (``"name"`` or ``"name#call"``) of the feature map.
    channel
        Filter of ``layer``.
    position
        ``(y, x)`` of the projected activation, or None for the filter's strongest.
    view
        ``"single"`` or ``"compare"`` (every method side by side).
    options
        The display options (each also readable as an attribute: ``snapshot.cmap``).
    settings
        The methods' settings (each also readable as an attribute: ``snapshot.ig_steps``).

    The constructor also takes every display option and method setting by name
    (``Snapshot(..., cmap="gray", ig_steps=8)``); those not given keep their defaults.
    """

    version: int
    method: str
    target: int | None
    layer: str
    channel: int
    position: tuple[int, int] | None
    view: str
    options: DisplayOptions
    settings: MethodSettings

    def __init__(
        self, version: int, method: str, target: int | None, layer: str, channel: int,
        position: tuple[int, int] | None, view: str = "single", options: DisplayOptions | None = None,
        settings: MethodSettings | None = None, **values: Any,
    ) -> None:
        display = {k: values.pop(k) for k in DisplayOptions.names() if k in values}
        chosen = {k: values.pop(k) for k in MethodSettings.names() if k in values}
        if values:
            raise TypeError(f"Snapshot got unknown field(s) {sorted(values)}")
        opts = replace(options, **display) if options is not None else DisplayOptions(**display)
        sets = replace(settings, **chosen) if settings is not None else MethodSettings(**chosen)
        for name, value in [("version", version), ("method", method), ("target", target), ("layer", layer), ("channel", channel),
                            ("position", position), ("view", view), ("options", opts), ("settings", sets)]:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # a display option or a method setting by its own name (snapshot.cmap, snapshot.ig_steps)
        for part in ("options", "settings"):
            held = self.__dict__.get(part)
            if held is not None and name in type(held).names():
                return getattr(held, name)
        raise AttributeError(f"'Snapshot' object has no attribute {name!r}")

    def state(self) -> dict[str, Any]:
        """The state as one flat JSON-able dict: the fields, every display option and every method setting."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("options", "settings")}
        return {**out, **self.options.as_dict(), **self.settings.as_dict()}


@dataclass(frozen=True)
class CompareTile:
    """One method's tile of the compare view: its raw map (drawn by whoever shows it), or why there is none.

    Attributes
    ----------
    method, label
        Registered name and human label of the method.
    raw
        The map's planes, or None when the method cannot run on this model.
    message
        Why ``raw`` is None, else None.
    """

    method: str
    label: str
    raw: RawMap | None
    message: str | None


@dataclass(frozen=True)
class ViewResult:
    """Everything one view shows, computed from one :class:`Snapshot`.

    Attributes
    ----------
    snapshot
        The state it was computed from.
    target
        The explained class (the predicted one when ``snapshot.target`` is None).
    probs
        ``(K,)`` class probabilities.
    bars
        ``(class index, bar name, probability)`` of each bar, most probable first; the
        target always has a bar.
    panels
        PNG bytes per panel: ``input`` (with the receptive-field box) and ``feature`` (the
        compare view's tiles are raw maps, :attr:`compare`).
    maps
        The raw ``map`` and ``projection`` (when computed): drawn with any display options by
        :meth:`render`, by the widget's front end and by the offline page alike.
    messages
        Per panel, why there is no map at all (a method this model cannot run), else None.
    method_label, class_label
        Human names of the method and the target class.
    grid
        ``(h, w)`` of the feature map.
    position
        ``(y, x)`` of the projected activation (the strongest when none was clicked).
    feature_caption
        Text under the feature map.
    projection_rule
        ReLU rule the projection used.
    projection_note
        Why the projection does not use DeconvNet's rule when the model has no ReLU ("" otherwise).
    box
        Receptive field ``(y0, x0, y1, x1)`` of the projected activation; None when the probe
        that measures it failed (the input panel then shows no box).
    warnings
        First lines of the warnings raised while computing.
    ms
        Wall time in milliseconds.
    """

    snapshot: Snapshot
    target: int
    probs: np.ndarray
    bars: tuple[tuple[int, str, float], ...]
    panels: dict[str, bytes]
    messages: dict[str, str | None]
    method_label: str
    class_label: str
    grid: tuple[int, int]
    position: tuple[int, int]
    feature_caption: str
    projection_rule: str
    projection_note: str
    box: tuple[int, int, int, int] | None
    warnings: tuple[str, ...] = ()
    ms: float = 0.0
    box_note: str = ""
    """Why there is no receptive-field box ("" when there is one)."""
    maps: dict[str, RawMap] = field(default_factory=dict)
    """The raw ``map`` and ``projection``, sent once; every display option is applied to them."""
    base: np.ndarray | None = None
    """``(H, W, 3)`` uint8 input image (without the box), what an overlay is drawn over."""
    compare: tuple[CompareTile, ...] = ()
    """The compare view's tiles, every method's raw map (empty in the single view)."""

    def compare_png(self, options: DisplayOptions) -> bytes | None:
        """The compare view drawn with ``options`` as one PNG, each tile with its own colour scale (None: no compare view)."""
        if not self.compare:
            return None
        tiles = []
        for t in self.compare:
            r = t.raw.render(options, self.base) if t.raw is not None else Rendered(None, t.message, 0.0, options.shown_cmap)
            tiles.append(  # each tile with its own scale: the methods' value ranges differ by orders of magnitude
                with_colorbar(r.rgb, options.sign, r.vmax, options.cmap, height=PANEL - 64)
                if r.rgb is not None else R.message_panel(r.message or "", (PANEL - 64 + 26, PANEL - 64))
            )
        titles = [t.label.replace("×", "x") for t in self.compare]  # the PNG font has no ×
        return R.to_png(compare_grid(tiles, titles, per_row=COMPARE_ROW, height=PANEL - 64 + 26))

    def render(self, panel: str, options: DisplayOptions) -> Rendered:
        """The ``map`` or ``projection`` panel drawn with ``options`` (its message when there is no map)."""
        raw = self.maps.get(panel)
        if raw is None:
            return Rendered(None, self.messages.get(panel) or "no map", 0.0, options.shown_cmap)
        return raw.render(options, self.base)

    def png(self, panel: str, options: DisplayOptions) -> tuple[bytes | None, str | None]:
        """``(PNG, None)`` of a panel drawn with ``options`` (maps) or as computed (others), or ``(None, message)``."""
        if panel not in ("map", "projection"):
            return self.panels.get(panel), self.messages.get(panel)
        r = self.render(panel, options)
        return (R.to_png(r.rgb), None) if r.rgb is not None else (None, r.message)

    def colorbar(self, panel: str, options: DisplayOptions, width: int = PANEL) -> bytes | None:
        """PNG colour scale of a map panel drawn with ``options`` (None without image)."""
        r = self.render(panel, options)
        return R.to_png(colorbar(options.sign, r.vmax, options.cmap, width=width)) if r.rgb is not None else None

    @property
    def probability(self) -> float:
        """Probability of the target class."""
        return float(self.probs[self.target])

    @property
    def selected_bar(self) -> int:
        """Rank of the target's bar."""
        return [b[0] for b in self.bars].index(self.target)


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


def view_png(
    panels: dict[str, bytes], messages: dict[str, str | None], titled: Sequence[tuple[str, str]],
    scales: dict[str, tuple[str, float, str]] | None = None,
) -> bytes:
    """The panels of a view side by side in one PNG, for export and saved notebooks.

    Parameters
    ----------
    panels, messages
        As in :class:`ViewResult` (a panel without image shows its message).
    titled
        ``(panel, title)`` in display order; panels with neither image nor message are skipped.
    scales
        ``{panel: (sign, vmax, cmap)}`` of the map panels with an image: each is drawn with its
        colour scale below (:func:`~saliency_widget.viz.colorbar.with_colorbar`, as the widget
        and ``to_html`` show it); the other panels get blank space of the scale's height.

    Returns
    -------
    bytes
        The PNG; "nothing rendered yet" when no panel shows.
    """
    shown = [(key, title) for key, title in titled if panels.get(key) or messages.get(key)]
    tiles = [R.panel_or_message(panels.get(key), messages.get(key), (PANEL, PANEL)) for key, _ in shown]
    titles = [title for _, title in shown]
    if not tiles:
        tiles, titles = [R.message_panel("nothing rendered yet", (PANEL, PANEL))], [""]
    if not scales:
        return R.to_png(R.compose(tiles, titles, height=PANEL))
    scaled = [_over_scale(tile, scales.get(key)) for tile, (key, _) in zip(tiles, shown, strict=True)]
    return R.to_png(R.compose(scaled, titles, height=scaled[0].shape[0]))


def _over_scale(tile: np.ndarray, scale: tuple[str, float, str] | None) -> np.ndarray:
    """``tile`` at :data:`PANEL` rows over its colour scale ``(sign, vmax, cmap)``, or over blank rows as high."""
    if scale is not None:
        return with_colorbar(tile, *scale, height=PANEL)
    big = R.compose([tile], height=PANEL, gap=0)
    return np.concatenate([big, np.full((colorbar("absolute", 1.0).shape[0], big.shape[1], 3), 255, np.uint8)])
