"""The explorer widget: saliency maps, class bars, feature maps and projections in one view.

Design notes
------------
* All user-visible state lives in traitlets on :class:`Explorer` (``method``, ``target``,
  ``layer``, ``channel``, ``position``, display options, ...). Controls are linked to them,
  so driving the widget from Python or from the browser goes through the same path.
* Observers never compute: they ask a :class:`~.scheduler.LatestOnlyWorker` for a render.
  The worker snapshots the *latest* state and runs the pure
  :func:`~.pipeline.compute_view`; :class:`~.view.ExplorerView` then shows the result.
* The forward pass is cached by the engine's ``Explainer``; a new one is created only when
  the image changes. Maps, activations and projections are memoised per image.
* Images cross the wire as PNG bytes (``ipywidgets.Image.value`` / the canvas's
  ``traitlets.Bytes``), never as JSON lists or base64 strings.
"""

from __future__ import annotations

import base64
import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import torch
import traitlets
from PIL import Image

from ..data import load_sample, sample_images
from ..engine import Explainer, available_methods, method_label
from ..engine.checks import check_model
from ..errors import InputError, LayerError, MethodError, choices
from ..viz import render as R
from ..viz.images import describe_model
from ..viz.report import write_output
from .inputs import InputState
from .pipeline import Snapshot, ViewMemo, ViewResult, compute_view, default_layer, find_layer, layer_choices, view_png
from .renderlog import RenderLog, RenderRecord, short_sha
from .scheduler import LatestOnlyWorker
from .view import ExplorerView, status_html

__all__ = ["Explorer", "explore", "RenderRecord"]


def _bundled_samples() -> dict[str, Callable[[], Image.Image]]:
    """The bundled sample images as ``{name: loader}``."""
    return {name: functools.partial(load_sample, name) for name in sample_images()}


class _Choice(traitlets.Unicode):  # type: ignore[type-arg]
    """A name from a list of choices, whose wrong-type values are refused in our error family.

    A value of the wrong type (None, a number) goes to the owner's ``_validate_choice``, which
    names the valid choices, rather than to traitlets' TraitError.
    """

    def error(self, obj: Any, value: Any, error: Exception | None = None, info: str | None = None) -> Any:
        if obj is not None and hasattr(obj, "_validate_choice"):
            obj._validate_choice({"trait": self, "value": value, "owner": obj})
        super().error(obj, value, error, info)


class Explorer(W.VBox):
    """Interactive saliency explorer (see :func:`explore`).

    The controls are attributes named ``w_*`` (``w_method``, ``w_layer``, ``w_bars``, ...),
    owned by the :class:`~.view.ExplorerView` in :attr:`ui`.

    Attributes
    ----------
    computations : int
        Number of render passes run so far (each computes the current view once).
    render_log : RenderLog
        The last 200 render passes (:class:`~.renderlog.RenderRecord`).
    """

    method = _Choice("gradient")
    target = traitlets.Int(None, allow_none=True)
    layer = _Choice("")
    channel = traitlets.Int(0)
    position = traitlets.Tuple(traitlets.Int(), traitlets.Int(), default_value=None, allow_none=True)
    sign = _Choice("absolute")
    clip = traitlets.Float(99.0)
    cmap = _Choice("magma")
    overlay = traitlets.Bool(False)
    alpha = traitlets.Float(0.6)
    view = _Choice("single")

    #: Largest upload accepted from the upload button, in bytes (20 MiB).
    max_upload_bytes: int = 20 * 1024 * 1024

    @traitlets.validate("method", "layer", "sign", "cmap", "view")
    def _validate_choice(self, proposal: dict[str, Any]) -> Any:
        """Reject unknown choices with our error family, before the state changes."""
        name, value = proposal["trait"].name, proposal["value"]
        valid: Sequence[Any] | None
        if name == "method":
            valid = getattr(self, "methods", None)  # None while traits initialise
        elif name == "layer":
            ui = self.__dict__.get("ui")
            valid = [k for _, k in ui.w_layer.options] if ui is not None and ui.w_layer.options else None
        else:
            valid = {"sign": R.SIGNS, "cmap": R.COLORMAPS, "view": ("single", "compare")}[name]
        if value is None or (valid is not None and value not in valid):
            err = {"method": MethodError, "layer": LayerError}.get(name, InputError)
            raise err(f"unknown {name} {value!r}; expected one of {choices(valid) if valid is not None else 'a name'}")
        return value

    @traitlets.validate("clip", "alpha")
    def _validate_number(self, proposal: dict[str, Any]) -> float:
        """Refuse NaN and values outside what the renderer accepts: clip in (0, 100], alpha in [0, 1]."""
        name, value = proposal["trait"].name, float(proposal["value"])
        ok = 0.0 < value <= 100.0 if name == "clip" else 0.0 <= value <= 1.0
        if math.isnan(value) or not ok:
            valid = "a percentile in (0, 100] (100 = no clipping)" if name == "clip" else "an opacity in [0, 1]"
            raise InputError(f"{name} must be {valid}, got {proposal['value']!r}")
        ui = self.__dict__.get("ui")
        if name == "clip" and ui is not None and value < ui.w_clip.min:
            ui.w_clip.min = value  # a valid clip below the slider's range: widen it, so the slider shows the state
        return value

    @traitlets.validate("channel")
    def _validate_channel(self, proposal: dict[str, Any]) -> int:
        """Refuse a filter index outside ``0..C-1`` of the current layer (negative ones always)."""
        value = proposal["value"]
        inputs = self.__dict__.get("inputs")
        count = None
        if inputs is not None and inputs.current is not None and self.layer:
            try:
                count = int(find_layer(inputs.current, self.layer).shape[0])
            except Exception:  # noqa: BLE001 -- layer of another model version: the render reports it
                count = None
        if value < 0 or (count is not None and value >= count):
            valid = f"0..{count - 1}" if count is not None else "0 or more"
            raise InputError(f"filter {value} is out of range for layer {self.layer!r}: valid filters are {valid}")
        return int(value)

    def __init__(
        self,
        model: torch.nn.Module,
        image: Any,
        *,
        labels: Sequence[str] | None = None,
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        device: str | torch.device | None = None,
        weights: Any = None,
        processor: Any = None,
        samples: dict[str, Callable[[], Image.Image]] | None = None,
    ) -> None:
        self.methods: list[str] = available_methods()
        self._model = model
        # A torch.compile'd model is explained through its original module (same weights): say so once.
        self._model_note = "compiled model: explained through its original module" if check_model(model) is not model else ""
        self._io = describe_model(model, weights=weights, labels=labels, transform=transform, processor=processor)
        self.inputs = InputState(model, self._io, device)
        self._samples = dict(samples or {})
        self._worker = LatestOnlyWorker(self._render_latest, name="saliency-explorer")
        self.computations = 0
        self.render_log = RenderLog(maxlen=200)
        self._memo = ViewMemo()
        self._last: ViewResult | None = None
        self._last_status = ""

        self.ui = ExplorerView(self.methods, list(self._samples))
        super().__init__(children=self.ui.children())
        self.add_class("sw-explorer")
        self.method = self.methods[0]
        self._wire()
        # The first image is loaded and rendered synchronously, so explore() raises bad
        # input (e.g. labels of the wrong length) at once and the repr has a picture.
        self._set_input(image, source="argument")
        self._populate_structure(self.inputs.explainer())
        self._render(self._snapshot(), raise_errors=True)

    def __getattr__(self, name: str) -> Any:
        # The controls live on the view; ``explorer.w_layer`` is kept as the short path.
        ui = self.__dict__.get("ui")
        if name.startswith("w_") and ui is not None:
            return getattr(ui, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ------------------------------------------------------------------ wiring
    def _wire(self) -> None:
        ui = self.ui
        for ctrl, name in [
            (ui.w_method, "method"), (ui.w_view, "view"), (ui.w_sign, "sign"), (ui.w_clip, "clip"),
            (ui.w_cmap, "cmap"), (ui.w_overlay, "overlay"), (ui.w_alpha, "alpha"), (ui.w_channel, "channel"),
        ]:
            traitlets.link((ctrl, "value"), (self, name))
        self.observe(self._on_state, names=["method", "target", "position", "sign", "clip", "cmap", "overlay", "alpha", "view"])
        self.observe(self._on_channel, names="channel")
        self.observe(self._on_layer, names="layer")
        ui.w_layer.observe(self._on_layer_control, names="value")
        ui.w_bars.observe(self._on_bar_selected, names="selected")
        ui.w_canvas.observe(self._on_canvas_click, names="click")
        ui.w_canvas.register_command("strongest", lambda _msg: list(self.jump_to_strongest()))
        ui.w_strongest.on_click(lambda _b: self._guard(self.jump_to_strongest))
        ui.w_upload.observe(self._on_upload, names="value")
        ui.w_sample.observe(self._on_sample, names="value")
        ui.w_export.on_click(lambda _b: self._guard(self._export_clicked))
        ui.w_analyses.observe(self._on_analyses_open, names="selected_index")

    def _on_state(self, _change: dict[str, Any]) -> None:
        if not self._worker.is_muted:
            self._worker.schedule()

    def _on_channel(self, _change: dict[str, Any]) -> None:
        # A clicked position belongs to one filter: reset it *before* scheduling, so no
        # render can snapshot the new filter with the old filter's position.
        if self._worker.is_muted:
            return
        with self._worker.muted():
            self.set_trait("position", None)
        self._worker.schedule()

    def _on_layer(self, change: dict[str, Any]) -> None:
        if self._worker.is_muted:
            return
        with self._worker.muted():
            if self.ui.w_layer.value != change["new"]:
                self.ui.w_layer.value = change["new"]
            self._apply_layer_limits()
            self.set_trait("position", None)
        self._worker.schedule()

    def _on_layer_control(self, change: dict[str, Any]) -> None:
        if not self._worker.is_muted and change["new"] is not None:
            self.layer = change["new"]

    def _on_bar_selected(self, change: dict[str, Any]) -> None:
        if self._worker.is_muted or self._last is None:
            return
        # bqplot sends a numpy array, whose truth value is ambiguous: test its length.
        sel = [] if change["new"] is None else [int(i) for i in change["new"]]
        bars = self._last.bars
        if sel and 0 <= sel[-1] < len(bars):
            self.target = bars[sel[-1]][0]
        elif sel:  # no such bar: show the target's bar selected again rather than a phantom selection
            with self._worker.muted():
                self.ui.w_bars.selected = [self._last.selected_bar]

    def _on_canvas_click(self, change: dict[str, Any]) -> None:
        click = change["new"] or {}
        if "y" in click and "x" in click:
            self.position = (int(click["y"]), int(click["x"]))

    def _on_analyses_open(self, change: dict[str, Any]) -> None:
        if change["new"] is None or getattr(self, "analysis_panel", None) is not None:
            return
        from .analyses import AnalysisPanel

        def build() -> None:
            self.analysis_panel = AnalysisPanel(self._model, mean=self._io.mean, std=self._io.std)
            self.ui.w_analyses.children = [self.analysis_panel]

        self._guard(build)

    def _apply_layer_limits(self) -> None:
        """Fit the filter slider to the current layer (call muted)."""
        if self.inputs.current is None:
            return
        count = int(find_layer(self.inputs.current, self.layer).shape[0])
        self.channel = min(self.channel, count - 1)
        self.ui.set_filters(count, self.channel)

    # ------------------------------------------------------------------ input
    def _set_input(self, image: Any, source: str) -> None:
        """Load ``image`` as the next version (raises InputError on bad input)."""
        self.inputs.load(image, source)
        # A new image predicts its own class and has its own strongest activation.
        with self._worker.muted():
            self.target = None
            self.set_trait("position", None)

    def set_image(self, image: Any) -> None:
        """Show a new image (PIL image, ndarray, tensor, path or PNG/JPEG bytes).

        A new forward pass runs on the next render; the current target resets to the
        predicted class.
        """
        self._set_input(image, source="set_image")
        self._worker.schedule()

    def _on_upload(self, change: dict[str, Any]) -> None:
        if change["new"]:
            try:
                self._guard(lambda: self._load_then_render(self._set_upload, change["new"]))
            finally:
                # Empty the control, so that uploading the same file again is a change the front end sends.
                with self._worker.muted():
                    self.ui.w_upload.value = ()

    def _load_then_render(self, load: Callable[..., None], *args: Any) -> None:
        load(*args)
        self._worker.schedule()

    def _set_upload(self, value: Any) -> None:
        """Load the file of a FileUpload value (a list or, in ipywidgets 7, a dict of one item)."""
        item = value[0] if isinstance(value, (list, tuple)) else next(iter(value.values()))
        name, content = str(item.get("name", "upload")), item["content"]
        size = max(int(item.get("size") or 0), len(content))
        if size > self.max_upload_bytes:
            raise InputError(
                f"upload {name!r} is {size / 2**20:.1f} MiB; the limit is {self.max_upload_bytes / 2**20:.0f} MiB "
                "(Explorer.max_upload_bytes). Downscale the image, or pass it from Python with set_image()"
            )
        self._set_input(content, source=f"upload {name}")

    def _on_sample(self, change: dict[str, Any]) -> None:
        name = change["new"]
        if name:
            try:
                self._guard(lambda: self._load_then_render(lambda: self._set_input(self._samples[name](), source=f"sample {name}")))
            finally:
                # Back to "(sample)", so that choosing the same sample again (after an upload) is a change.
                with self._worker.muted():
                    self.ui.w_sample.value = ""

    # ------------------------------------------------------------------ engine
    def _populate_structure(self, ex: Explainer) -> None:
        """Fill the layer list (once per model) and open on the filter this image drives most."""
        options = layer_choices(ex.layers)
        keys = [k for _, k in options]
        current = self.layer if self.layer in keys else default_layer(ex.layers)
        self.ui.set_method_notes(self.methods, {m: ex.unavailable(m) for m in self.methods})
        with self._worker.muted():
            self.ui.set_layers(options, current)
            self.layer = current
            self._apply_layer_limits()
            # The strongest filter rather than a possibly dead filter 0, so the first view shows something.
            act = ex.activation(current)[0]
            self.channel = int(act.flatten(1).amax(dim=1).argmax())

    # ------------------------------------------------------------------ rendering
    def _snapshot(self) -> Snapshot:
        pos = tuple(int(v) for v in self.position) if self.position else None
        return Snapshot(
            version=self.inputs.version, method=self.method, target=self.target, layer=self.layer,
            channel=int(self.channel), position=pos, sign=self.sign, clip=float(self.clip),  # type: ignore[arg-type]
            cmap=self.cmap, overlay=bool(self.overlay), alpha=float(self.alpha), view=self.view,
        )

    def _render_latest(self) -> None:
        self._render(self._snapshot())

    def _render(self, snap: Snapshot, raise_errors: bool = False) -> None:
        """Compute the view of ``snap`` and show it, or show the error."""
        t0 = time.perf_counter()
        self.computations += 1
        rec = RenderRecord(seq=self.computations, state=asdict(snap), ms=0.0)
        try:
            ex = self.inputs.explainer(snap.version)
            result = compute_view(
                ex, snap, labels=self.inputs.labels, mean=self._io.mean, std=self._io.std, methods=self.methods, memo=self._memo
            )
            with self._worker.muted():
                self.ui.show(result)
        except Exception as exc:
            rec.error = f"{type(exc).__name__}: {exc}"
            if raise_errors:
                raise
            self._show_error(exc)
        else:
            self._last = result
            rec.images = {k: short_sha(v) for k, v in result.panels.items()}
            rec.nonblank = {k: not R.is_blank(R.from_png(v)) for k, v in result.panels.items()}
            self._show_status(result)
        rec.ms = (time.perf_counter() - t0) * 1000.0
        self.render_log.append(rec)

    def _show_status(self, result: ViewResult) -> None:
        snap = result.snapshot
        text = (
            f"{result.method_label} map for '{result.class_label}', {snap.layer} filter {snap.channel}"
            f" · {self.inputs.current.device if self.inputs.current else '?'} · {result.ms:.0f} ms"
        )
        if self._model_note:
            text += f" · {self._model_note}"
        if result.warnings:
            text += f" · warning: {result.warnings[0]}"
        if result.box_note:
            text += f" · {result.box_note}"
        self._last_status = text
        self.ui.show_status(text)

    def _show_error(self, exc: BaseException) -> None:
        self._last_status = self.ui.show_error(exc)

    def _guard(self, fn: Callable[[], Any]) -> None:
        """Run a UI callback; show errors in the status line instead of raising."""
        try:
            fn()
        except Exception as exc:
            self._show_error(exc)

    def _export_clicked(self) -> None:
        path = Path.cwd() / f"saliency_{time.strftime('%Y%m%d-%H%M%S')}.png"
        self.to_png(path)
        self._last_status = f"exported the view to {path}"
        self.ui.w_status.value = status_html(self._last_status)

    # ------------------------------------------------------------------ public API
    @property
    def explainer(self) -> Explainer | None:
        """The engine ``Explainer`` of the current image (None before the first render)."""
        return self.inputs.current

    @property
    def labels(self) -> list[str]:
        """Class names in class-index order."""
        return self.inputs.labels

    def click_bar(self, rank: int) -> None:
        """Select the ``rank``-th bar (0 = most probable), as a click in the browser would.

        Raises
        ------
        InputError
            ``rank`` is not the rank of a shown bar (the selection stays as it was).
        """
        self.wait(timeout=60)  # the bars of the current view
        count = len(self._last.bars) if self._last is not None else 0
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= int(rank) < count:
            raise InputError(f"bar {rank!r} is out of range: the chart shows {count} bars, valid ranks are 0..{count - 1}")
        self.ui.w_bars.selected = [int(rank)]

    def click_activation(self, y: int, x: int) -> None:
        """Click activation ``(y, x)`` of the feature map, as the canvas would."""
        prev = dict(self.ui.w_canvas.click or {})
        self.ui.w_canvas.click = {"y": int(y), "x": int(x), "seq": int(prev.get("seq", 0)) + 1}

    def jump_to_strongest(self) -> tuple[int, int]:
        """Select the current filter's largest activation and return its ``(y, x)``."""
        self.wait(timeout=60)  # the explainer must belong to the current image
        y, x = self.inputs.explainer().strongest(self.layer, self.channel)[0]
        self.position = (int(y), int(x))
        return int(y), int(x)

    def log_events(self, path: str | Path | None) -> None:
        """Append one JSON line per render pass to ``path`` (None stops); the current view's is written at once."""
        self.render_log.follow(path)

    def state(self) -> dict[str, Any]:
        """The current control state as a JSON-able dict."""
        return asdict(self._snapshot())

    def wait(self, timeout: float | None = 30.0) -> bool:
        """Block until no render is pending or running; True if idle, False on timeout."""
        return self._worker.wait(timeout)

    @property
    def status(self) -> str:
        """The status line as plain text."""
        return self._last_status

    @property
    def images(self) -> dict[str, bytes]:
        """PNG bytes of the panels of the last render (``input``, ``map``, ``feature``, ...)."""
        return dict(self._last.panels) if self._last is not None else {}

    @property
    def messages(self) -> dict[str, str | None]:
        """Per panel, the text shown instead of a degenerate map (None when an image shows)."""
        return dict(self._last.messages) if self._last is not None else {}

    def to_png(self, path: str | Path | None = None) -> bytes:
        """The current view (input, map, feature map, projection) as PNG bytes, also written to ``path`` if given.

        Raises
        ------
        InputError
            ``path`` cannot be written (a directory, a missing folder, no permission).
        """
        self.wait(timeout=60)
        titled = [
            ("input", "input"), ("map", method_label(self.method)),
            ("feature", f"{self.layer} filter {self.channel}"), ("projection", "projection"),
        ]
        data = view_png(self.images, self.messages, titled)
        if path is not None:
            write_output(path, data)
        return data

    def to_html(self, path: str | Path | None = None) -> str:
        """The current view as one self-contained HTML page (loads nothing from the network), also written to ``path``."""
        from ..viz.report import explorer_html

        self.wait(timeout=60)
        probs = self._last.probs if self._last is not None else np.zeros(len(self.labels))
        page = explorer_html(self.images, self.messages, self.labels, probs, self.state(), self.status)
        if path is not None:
            write_output(path, page)
        return page

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """Widget view plus an ``image/png`` fallback for saved notebooks / nbconvert."""
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, tuple):  # (data, metadata) form
            data, meta = data
        else:
            meta = None
        data = dict(data or {})
        try:
            data["image/png"] = base64.b64encode(self.to_png()).decode("ascii")
        except Exception:  # the picture is a courtesy; never break display over it
            pass
        return (data, meta) if meta is not None else data

    def close(self) -> None:
        """Stop the worker thread and close all child widgets."""
        if "ui" not in self.__dict__:  # __init__ failed before the widget existed (e.g. bad labels)
            return
        self._worker.close()
        self.ui.close()
        super().close()


def explore(
    model: torch.nn.Module | None = None,
    image: Any = None,
    *,
    labels: Sequence[str] | None = None,
    transform: Callable[[Image.Image], torch.Tensor] | None = None,
    device: str | torch.device | None = None,
    weights: Any = None,
    processor: Any = None,
) -> Explorer:
    """Open the interactive saliency explorer.

    Parameters
    ----------
    model
        A classifier ``nn.Module`` returning logits. None: the bundled ``shapes_cnn``
        (pretrained, offline).
    image
        PIL image, ndarray (H, W[, 3]), float tensor (C, H, W) already preprocessed, a
        file path, or PNG/JPEG bytes. None: the first bundled sample image.
    labels
        Class names (length = number of classes). Default: what the model says
        (``weights.meta["categories"]``, the bundled model's, a Hugging Face
        ``config.id2label``), else ``"class i"``.
    transform
        PIL image -> (C, H, W) tensor. Default: ``processor``, ``weights.transforms()``, a timm
        model's ``pretrained_cfg``, else resize to 224 (a Hugging Face config's ``image_size``)
        and ImageNet normalisation. See :func:`saliency_widget.viz.modelio.describe_model`.
    device
        Device for the engine (the model is not moved; must match it if given).
    weights
        A weights object with ``.transforms()`` and ``.meta`` (torchvision style).
    processor
        A Hugging Face image processor (``AutoImageProcessor.from_pretrained(...)``).

    Returns
    -------
    Explorer
        The widget; display it (last expression of a cell) to interact.

    Raises
    ------
    InputError
        Bad image, or labels whose length differs from the model's class count.
    ModelError
        The model cannot be explained (e.g. TorchScript, or not an ``nn.Module``).
    """
    bundled = model is None
    if model is None:
        from ..models import shapes_cnn

        model = shapes_cnn(pretrained=True)
    samples = _bundled_samples()
    if image is None:
        # The bundled model was trained on shape scenes: open on one of those.
        names = [n for n in samples if bundled and n.startswith("shapes")] or list(samples)
        if not names:
            raise InputError("no image given and no bundled sample image is available")
        image = samples[names[0]]()
    return Explorer(
        model, image, labels=labels, transform=transform, device=device, weights=weights, processor=processor, samples=samples
    )
