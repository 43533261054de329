"""The explorer widget: saliency maps, class bars, feature maps and projections in one view.

Design notes
------------
* All user-visible state lives in traitlets on :class:`Explorer` (``method``, ``target``,
  ``layer``, ``channel``, ``position``, display options, ...). Controls are linked to them,
  so driving the widget from Python or from the browser goes through the same path.
* Observers never compute: they ask a :class:`~.scheduler.LatestOnlyWorker` for a render.
  The worker snapshots the *latest* state and runs the pure
  :func:`~saliency_widget.views.pipeline.compute_view`; :class:`~.view.ExplorerView` then shows the result.
* The forward pass is cached by the engine's ``Explainer``; a new one is created only when
  the image changes. Maps, activations and projections are memoised per image.
* Images cross the wire as PNG bytes (``ipywidgets.Image.value`` / the canvas's
  ``traitlets.Bytes``), never as JSON lists or base64 strings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import torch
import traitlets
from PIL import Image

from ..engine import Explainer, available_methods
from ..engine.cam import default_cam_layer
from ..engine.checks import check_model
from ..errors import InputError, SaliencyError
from ..views.layermenu import default_layer, layer_choices, noop_layers
from ..views.memo import ViewMemo
from ..views.options import DisplayOptions, display_specs
from ..views.pipeline import Snapshot, ViewCancelled, ViewResult, compute_view, find_layer
from ..views.settings import MethodSettings, cam_layer_choices, setting_specs
from ..viz import render as R
from ..viz.images import describe_model
from ..viz.modelio import ModelIO
from .export import ExportMixin
from .featpanel import FeaturePanel
from .inputs import InputState
from .optionwidgets import check_setting, spec_traits, widen_to
from .progressive import MapProgress
from .renderlog import RenderLog, RenderRecord, short_sha
from .saved import SavedView, live_css
from .scheduler import LatestOnlyWorker
from .validation import ChoiceTrait, check_choice, check_filter
from .view import ExplorerView, busy_text, fill_tooltips, status_html

__all__ = ["Explorer", "RenderRecord"]

#: Every display option and method setting, by name (the traits generated from them).
_SPECS = {s.name: s for s in (*display_specs(), *setting_specs())}


class Explorer(ExportMixin, W.VBox):
    """Interactive saliency explorer (open one with :func:`saliency_widget.widget.explore`).

    The controls are attributes named ``w_*`` (``w_method``, ``w_layer``, ``w_bars``, ...),
    owned by the :class:`~.view.ExplorerView` in :attr:`ui`.

    Attributes
    ----------
    computations : int
        Number of render passes run so far (each computes the current view once).
    render_log : RenderLog
        The last 200 render passes (:class:`~.renderlog.RenderRecord`).
    """

    method = ChoiceTrait("gradient")
    target = traitlets.Int(None, allow_none=True)
    layer = ChoiceTrait("")
    channel = traitlets.Int(0)
    position = traitlets.Tuple(traitlets.Int(), traitlets.Int(), default_value=None, allow_none=True)
    view = ChoiceTrait("single")
    # one trait per display option (sign, clip, cmap, overlay, alpha) and per method setting
    # (smoothgrad_samples, ..., cam_layer), generated from their specs
    locals().update(spec_traits([*display_specs(), *setting_specs()]))

    #: Seconds between two updates of the progress bar of a batched map.
    progress_every: float = 0.1
    #: Largest upload accepted from the upload button, in bytes (20 MiB).
    max_upload_bytes: int = 20 * 1024 * 1024
    #: Seconds the view must stay unchanged before the saved view (a kernel-side PNG) follows it;
    #: :meth:`wait` brings it up to date at once.
    saved_idle_s: float = 2.0

    @traitlets.validate("method", "layer", "view")
    def _validate_choice(self, proposal: dict[str, Any]) -> Any:
        """Reject unknown choices with our error family, before the state changes."""
        name = proposal["trait"].name
        ui = self.__dict__.get("ui")
        valid: Sequence[Any] | None = {
            "method": self.__dict__.get("methods"),  # None while traits initialise
            "layer": ui.layer_keys() or None if ui is not None else None,  # hidden pass-through layers too
            "view": ("single", "compare"),
        }[name]
        return check_choice(name, proposal["value"], valid)

    def _validate_setting(self, name: str, value: Any) -> Any:
        """Check a display option or method setting against its spec (our error family, naming the valid values).

        Called by each setting's trait (:class:`~.optionwidgets.SettingTrait`) for every proposed value.
        """
        spec = _SPECS[name]
        ui = self.__dict__.get("ui")
        valid = None
        if spec.kind == "choice" and not spec.choices:  # choices known at run time: the control's (the CAM layers)
            ctrl = getattr(ui, f"w_{spec.name}", None) if ui is not None else None
            valid = [v for _, v in ctrl.options] if ctrl is not None and ctrl.options else None
        value = check_setting(spec, value, valid)
        if ui is not None:  # a valid value outside a slider's range: widen it, so the slider shows the state
            widen_to(getattr(ui, f"w_{spec.name}"), value)
        return value

    @traitlets.validate("channel")
    def _validate_channel(self, proposal: dict[str, Any]) -> int:
        """Refuse a filter index outside ``0..C-1`` of the current layer (negative ones always)."""
        inputs = self.__dict__.get("inputs")
        count = None
        if inputs is not None and inputs.current is not None and self.layer:
            try:
                count = int(find_layer(inputs.current, self.layer).shape[0])
            except SaliencyError:  # a layer of another image version: the render reports it
                count = None
        return check_filter(proposal["value"], count, self.layer)

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
        data: Any = None,
    ) -> None:
        self.methods: list[str] = available_methods()
        self._model = model
        # A torch.compile'd model is explained through its original module (same weights): say so once.
        self._model_note = "compiled model: explained through its original module" if check_model(model) is not model else ""
        self._io = describe_model(model, weights=weights, labels=labels, transform=transform, processor=processor)
        self.inputs = InputState(model, self._io, device)
        self._samples = dict(samples or {})
        self._data = data  # what the analyses scan (explore(data=...)); see widget/datasource.py
        self.compute_lock = threading.RLock()  # renders and analyses never run the model at once
        self._worker = LatestOnlyWorker(self._render_latest, name="saliency-explorer", on_schedule=self._show_busy)
        self.computations = 0
        self.render_log = RenderLog(maxlen=200)
        self._memo = ViewMemo()
        self._last: ViewResult | None = None
        self._last_status = ""
        self._step = (0, 0)  # compare step (done, total)
        self._saved_timer: threading.Timer | None = None
        self._blank: dict[str, bool] = {}
        self._saved_lock = threading.Lock()

        self.ui = ExplorerView(self.methods, list(self._samples))
        self._maps = MapProgress(self.ui)  # progress and partial maps of a batched map (widget/progressive.py)
        super().__init__(children=self.ui.children())
        self.add_class("sw-explorer")
        self._saved = SavedView(self.model_id or "none")
        self.ui.add_css(live_css(self._saved.token))  # the live view hides its saved view
        self.method = self.methods[0]
        self.featpanel = FeaturePanel(self)  # "what excites this filter / this class" (widget/featpanel.py)
        self.ui.w_featviz.children = [self.featpanel]
        self.featpanel.observe(lambda _c: self._saved_later(), names="shown")  # the saved view shows it too
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
        for ctrl, name in [(ui.w_method, "method"), (ui.w_view, "view"), (ui.w_channel, "channel")]:
            traitlets.link((ctrl, "value"), (self, name))
        for name, ctrl in {**ui.option_controls, **ui.setting_controls}.items():  # generated from the specs
            traitlets.link((ctrl, "value"), (self, name))
        self.observe(self._on_state, names=["method", "target", "position", "view"])
        self.observe(self._on_display, names=list(DisplayOptions.names()))
        self.observe(self._on_setting, names=list(MethodSettings.names()))
        self.observe(lambda _c: ui.show_settings(self.method, self.view, self.method_settings),
                     names=["method", "view", *MethodSettings.names()])
        ui.show_settings(self.method, self.view, self.method_settings)
        self.observe(self._on_channel, names="channel")
        self.observe(self._on_layer, names="layer")
        ui.w_layer.observe(self._on_layer_control, names="value")
        ui.w_bars.observe(self._on_bar_selected, names="selected")
        ui.w_canvas.observe(self._on_canvas_click, names="click")
        ui.w_compare.observe(self._on_compare_pick, names="picked")
        ui.w_canvas.register_command("strongest", lambda _msg: list(self.jump_to_strongest()))
        ui.w_strongest.on_click(lambda _b: self._guard(self.jump_to_strongest))
        ui.w_upload.observe(self._on_upload, names="value")
        ui.w_sample.observe(self._on_sample, names="value")
        ui.w_export.on_click(lambda _b: self._guard(self._export_clicked))
        ui.w_analyses.observe(self._on_analyses_open, names="selected_index")

    def _on_state(self, _change: dict[str, Any]) -> None:
        if not self._worker.is_muted:
            self._worker.schedule()

    def _on_display(self, _change: dict[str, Any]) -> None:
        """A display-only change: the browser redraws the maps it holds; the kernel computes nothing.

        The map panels and the compare view's tiles are drawn in the browser; the saved view
        follows once the display has been still for :attr:`saved_idle_s` seconds.
        """
        # The map panels follow the controls in the browser (jsdlink); setting them here too would
        # echo a stale value back while the user is still changing them.
        if not self._worker.is_muted:
            self._saved_later()

    def _on_setting(self, change: dict[str, Any]) -> None:
        """A method setting changed: a new map when a shown method reads it (every method in the compare view)."""
        if self._worker.is_muted:
            return
        spec, settings = _SPECS[change["name"]], self.method_settings
        if any(settings.reads(spec, m) for m in (spec.methods if self.view == "compare" else (self.method,))):
            self._worker.schedule()

    def _saved_later(self) -> None:
        """Refresh the saved view after :attr:`saved_idle_s` seconds without another display change."""
        with self._saved_lock:
            if self._saved_timer is not None:
                self._saved_timer.cancel()
            if not self._saved.shown:
                return
            self._saved_timer = threading.Timer(self.saved_idle_s, self._saved_idle)
            self._saved_timer.daemon = True
            self._saved_timer.start()

    def _saved_idle(self) -> None:
        with self._saved_lock:
            if self._saved_timer is None:  # flushed meanwhile by wait()
                return
            self._saved_timer = None
        with self.compute_lock:  # never while a render runs the model
            self._update_saved_view()

    def _flush_saved(self) -> None:
        """Refresh a pending saved view now (a script that waited for the view expects the notebook to hold it)."""
        with self._saved_lock:
            pending, self._saved_timer = self._saved_timer, None
        if pending is not None:
            pending.cancel()
            with self.compute_lock:
                self._update_saved_view()

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
            self.ui.select_layer(change["new"])  # a hidden pass-through layer is listed while current
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

    def _on_compare_pick(self, change: dict[str, Any]) -> None:
        """A compare tile was clicked: show its method (the compare view stays)."""
        method = (change["new"] or {}).get("method")
        if method in self.methods and method != self.method:
            self._guard(lambda: setattr(self, "method", method))

    def _on_analyses_open(self, change: dict[str, Any]) -> None:
        if change["new"] is None or getattr(self, "analysis_panel", None) is not None:
            return
        from .analyses import panel_for

        def build() -> None:
            self.analysis_panel = panel_for(self)
            fill_tooltips(self.analysis_panel)  # no "null" tooltips there either
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
        self._new_image()

    def _new_image(self) -> None:
        # A new image predicts its own class and has its own strongest activation.
        with self._worker.muted():
            self.target = None
            self.set_trait("position", None)
        self.ui.show_source(self.inputs.source, self.inputs.source_bytes)

    def set_image(self, image: Any) -> None:
        """Show a new image (PIL image, ndarray, tensor, path or PNG/JPEG bytes).

        A new forward pass runs on the next render; the current target resets to the
        predicted class.
        """
        self._set_input(image, source="set_image")
        self._worker.schedule()

    def _on_upload(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._load_from(self.ui.w_upload, (), lambda: self.inputs.load_upload(change["new"], self.max_upload_bytes), upload=True)

    def _on_sample(self, change: dict[str, Any]) -> None:
        name = change["new"]
        if name:
            self._load_from(self.ui.w_sample, "", lambda: self.inputs.load(self._samples[name](), f"sample {name}"))

    def _load_from(self, control: W.ValueWidget, empty: Any, load: Callable[[], object], upload: bool = False) -> None:
        """Load an image chosen in ``control`` and render it; say next to the upload button what was loaded.

        The upload control is emptied (so the same file can be uploaded again); the sample
        menu keeps the loaded sample's name (see :meth:`~.view.ExplorerView.show_source`).
        """
        try:
            load()
        except Exception as exc:
            self._show_error(exc)
            self.ui.show_source(self.inputs.source, self.inputs.source_bytes, error=self._last_status)
        else:
            self._new_image()
            self._worker.schedule()
        finally:
            if upload:
                with self._worker.muted():
                    control.value = empty

    # ------------------------------------------------------------------ engine
    def _populate_structure(self, ex: Explainer) -> None:
        """Fill the layer list (once per model) and open on the filter this image drives most."""
        options = layer_choices(ex.layers)
        keys = [k for _, k in options]
        current = self.layer if self.layer in keys else default_layer(ex.layers, self._model)
        self.ui.set_method_notes(self.methods, {m: ex.unavailable(m) for m in self.methods})
        cams = cam_layer_choices(ex.layers)
        chosen = str(self.method_settings.cam_layer)
        try:  # the engine decides the default CAM layer; the menu shows it, the user may pick another
            cam = chosen if chosen in [k for _, k in cams] else default_cam_layer(ex)
        except SaliencyError:  # no spatial layer: the CAM methods say why when asked
            cam = ""
        if cam and cam not in [k for _, k in cams]:
            cams.append((cam, cam))
        with self._worker.muted():
            self.ui.set_cam_layers(cams, cam)
            self.set_trait("cam_layer", cam)
            self.ui.set_layers(options, current, noop_layers(ex.layers, self._model))
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
            channel=int(self.channel), position=pos, view=self.view,  # type: ignore[arg-type]
            options=self.display_options, settings=self.method_settings,
        )

    def _render_latest(self) -> None:
        self._show_busy()  # again: a request made while the last view was shown may have lost it
        with self.compute_lock:
            self._render(self._snapshot())

    def _show_busy(self) -> None:
        """The busy state, shown the moment a render is requested (before any computing)."""
        self.ui.show_busy(busy_text(self.method, len(self.methods) if self.view == "compare" else 0), self.method)

    def _progress(self, done: int, total: int) -> bool:
        """Compare-view progress; False (stop) when a newer request waits, so it is served sooner."""
        if self._worker.pending:
            return False
        self._step = (done, total)
        self.ui.show_progress(done, total)
        return True

    def _batches(self, done: int, total: int) -> None:
        """Progress inside a batched map (occlusion, SmoothGrad, IG), at most every ``progress_every`` s."""
        self._maps.batches(done, total, self._step, self.progress_every)

    def _newer(self) -> Snapshot | None:
        """The state a waiting request will render, or None when none waits."""
        return self._snapshot() if self._worker.pending else None

    def _render(self, snap: Snapshot, raise_errors: bool = False) -> None:
        """Compute the view of ``snap`` and show it, or show the error."""
        t0 = time.perf_counter()
        self._step = (0, 0)
        self._maps.begin(snap.method)
        self.computations += 1
        rec = RenderRecord(seq=self.computations, state=snap.state(), ms=0.0)
        try:
            ex = self.inputs.explainer(snap.version)
            result = compute_view(
                ex, snap, labels=self.inputs.labels, mean=self._io.mean, std=self._io.std, methods=self.methods,
                memo=self._memo, progress=self._progress, newer=self._newer, batches=self._batches, partial=self._maps.partial,
            )
            with self._worker.muted():
                self.ui.show(result)
                self.ui.show_channels(lambda: ex.activation(snap.layer)[0], f"{snap.version}/{snap.layer}")
        except ViewCancelled:  # a newer request waits: drop this view, the worker serves that one next
            rec.cancelled = True
        except Exception as exc:
            rec.error = f"{type(exc).__name__}: {exc}"
            if raise_errors:
                raise
            self.ui.end_busy()
            self._show_error(exc)
        else:
            self.ui.end_busy()
            self._last = result
            rec.images = {k: short_sha(v) for k, v in result.panels.items()}
            rec.nonblank = {k: self._nonblank(rec.images[k], v) for k, v in result.panels.items()}
            for k, raw in result.maps.items():  # raw maps: identified by their planes, never rendered here
                rec.images[k] = short_sha(raw.to_bytes())
                rec.nonblank[k] = raw.has_structure()
            for tile in result.compare:  # the compare view's tiles: raw maps too
                if tile.raw is not None:
                    rec.images[f"compare:{tile.method}"] = short_sha(tile.raw.to_bytes())
                    rec.nonblank[f"compare:{tile.method}"] = tile.raw.has_structure()
            self._show_status(result)
            self._saved_later()  # once the view is still: costs no click-to-image time
        rec.ms = (time.perf_counter() - t0) * 1000.0
        self.render_log.append(rec)

    def _nonblank(self, sha: str, png: bytes) -> bool:
        """Whether a panel's PNG shows more than one colour (decoded once per picture, for the render log)."""
        if sha not in self._blank:
            if len(self._blank) > 64:
                self._blank.clear()
            self._blank[sha] = not R.is_blank(R.from_png(png))
        return self._blank[sha]

    def _show_status(self, result: ViewResult) -> None:
        device = str(self.inputs.current.device) if self.inputs.current else "?"
        self._last_status = self.ui.show_result_status(result, device, self._model_note)

    def _show_error(self, exc: BaseException) -> None:
        self._last_status = self.ui.show_error(exc)

    def _guard(self, fn: Callable[[], Any]) -> None:
        """Run a UI callback; show errors in the status line instead of raising."""
        try:
            fn()
        except Exception as exc:
            self._show_error(exc)

    def _export_clicked(self) -> None:
        name = f"saliency_{time.strftime('%Y%m%d-%H%M%S')}.png"
        self.ui.w_canvas.download(self.to_png(), name)  # a browser download; scripts use to_png(path)
        self._last_status = f"downloaded the view as {name}"
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

    @property
    def model(self) -> torch.nn.Module:
        """The model explored (the user's object, never changed)."""
        return self._model

    @property
    def model_io(self) -> ModelIO:
        """The model's preprocessing, normalisation and labels, as :func:`~saliency_widget.viz.modelio.describe_model` read them."""
        return self._io

    @property
    def data(self) -> Any:
        """What the analyses panel's top-9 scans (``explore(data=...)``; None: the panel's default)."""
        return self._data

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
        """The current control state as a flat JSON-able dict (display options and method settings included)."""
        return self._snapshot().state()

    def wait(self, timeout: float | None = 30.0) -> bool:
        """Block until no render is pending or running (and the saved view holds the view); True if idle, False on timeout."""
        idle = self._worker.wait(timeout)
        if idle:
            self._flush_saved()
        return idle

    @property
    def status(self) -> str:
        """The status line as plain text."""
        return self._last_status

    @property
    def display_options(self) -> DisplayOptions:
        """The current display options."""
        return DisplayOptions(**{name: getattr(self, name) for name in DisplayOptions.names()})

    @property
    def method_settings(self) -> MethodSettings:
        """The current method settings (SmoothGrad, IG, occlusion, the CAM layer, LRP's composite and parameters)."""
        return MethodSettings(**{name: getattr(self, name) for name in MethodSettings.names()})

    @property
    def images(self) -> dict[str, bytes]:
        """PNG bytes of the panels of the last render (``input``, ``map``, ``feature``, ...).

        ``map`` and ``projection`` are drawn here, on request, with the current display options:
        the same pixels the browser draws from the raw maps (see :mod:`saliency_widget.views.rawmap`).
        """
        if self._last is None:
            return {}
        out = dict(self._last.panels)
        opts = self.display_options
        for panel in self._last.maps:
            png, _ = self._last.png(panel, opts)
            if png is not None:
                out[panel] = png
        compare = self._last.compare_png(opts)
        if compare is not None:
            out["compare"] = compare
        return out

    @property
    def messages(self) -> dict[str, str | None]:
        """Per panel, the text shown instead of a map with nothing to show (None when an image shows)."""
        if self._last is None:
            return {}
        out = dict(self._last.messages)
        opts = self.display_options
        for panel in self._last.maps:
            out[panel] = self._last.render(panel, opts).message
        return out

    def close(self) -> None:
        """Stop the worker thread and close all child widgets."""
        if "ui" not in self.__dict__:  # __init__ failed before the widget existed (e.g. bad labels)
            return
        self._worker.close()
        if self._saved_timer is not None:
            self._saved_timer.cancel()
        if self.__dict__.get("analysis_panel") is not None:
            self.analysis_panel.close()
        self.featpanel.close()
        self.ui.close()
        super().close()
