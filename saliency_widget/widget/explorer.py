"""The explorer widget: saliency maps, class bars, feature maps and projections in one view.

Design notes
------------
* All user-visible state lives in traitlets on :class:`Explorer` (``method``, ``target``,
  ``layer``, ``channel``, ``position``, display options, ...). Controls are linked to them,
  so driving the widget from Python or from the browser goes through the same path.
* Observers never compute. They mark the view dirty and wake one background worker; the
  worker snapshots the *latest* state and renders it. Changes that arrive while a render
  runs only set the dirty flag again, so a burst of 50 slider events costs at most one
  stale render plus the final one, and the final view always matches the final state.
* The forward pass is cached by the engine's ``Explainer``; a new one is created only when
  the image or model changes. Maps, activations and projections are memoised per image.
* Images cross the wire as PNG bytes (``ipywidgets.Image.value`` / the canvas's
  ``traitlets.Bytes``), never as JSON lists or base64 strings.
"""

from __future__ import annotations

import base64
import html
import io
import json
import threading
import time
import traceback
import warnings
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import bqplot as bq
import ipywidgets as W
import numpy as np
import torch
import traitlets
from PIL import Image

from ..errors import InputError, LayerError, MethodError, ModelError, SaliencyError, choices
from ..viz import render as R
from ..viz.images import imagenet_transform, to_pil as _to_pil
from .canvas import FeatureMapCanvas

__all__ = ["Explorer", "explore", "RenderRecord"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_TOPK = 5
_PANEL = 224  # display size (px) of image panels


def _engine() -> tuple[Any, Callable[[], list[str]]]:
    """Return ``(Explainer, available_methods)``; a function so tests can substitute it."""
    from ..engine import Explainer, available_methods

    return Explainer, available_methods


def _projection_rules() -> tuple[str, ...]:
    """Names usable as ``Explainer.project(method=...)`` (the engine's ReLU rules)."""
    try:
        from ..engine import RULES
    except ImportError:  # an engine without a rule table: the three classic rules
        return ("gradient", "deconvnet", "guided_backprop")
    return tuple(RULES)


def _parse_key(key: str) -> tuple[str, int]:
    """``"name#2"`` -> ``("name", 2)``; ``"name"`` -> ``("name", 0)``."""
    name, sep, call = key.rpartition("#")
    if sep and call.isdigit():
        return name, int(call)
    return key, 0


@dataclass
class RenderRecord:
    """One render pass, as kept in :attr:`Explorer.render_log` (and the optional JSON log).

    Attributes
    ----------
    seq
        1-based number of the render (equals :attr:`Explorer.computations` after it).
    state
        The state snapshot the render used.
    ms
        Wall time of the render in milliseconds.
    images
        ``{panel: short sha1 of its PNG}`` for every panel produced.
    nonblank
        ``{panel: whether the PNG has more than one colour}``.
    error
        One-line error text, or None.
    """

    seq: int
    state: dict[str, Any]
    ms: float
    images: dict[str, str] = field(default_factory=dict)
    nonblank: dict[str, bool] = field(default_factory=dict)
    error: str | None = None


class _LRU(OrderedDict):
    """Tiny bounded memo (maps are a few hundred KB each; keep the last few)."""

    def __init__(self, maxsize: int = 24) -> None:
        super().__init__()
        self.maxsize = maxsize

    def get_or(self, key: Hashable, make: Callable[[], Any]) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        self[key] = value
        if len(self) > self.maxsize:
            self.popitem(last=False)
        return value


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha1(data).hexdigest()[:12]


def _labels_from(obj: Any) -> list[str] | None:
    meta = getattr(obj, "meta", None)
    if isinstance(meta, dict) and meta.get("categories") is not None:
        return [str(c) for c in meta["categories"]]
    return None


def _norm_from(obj: Any) -> tuple[Sequence[float] | None, Sequence[float] | None]:
    meta = getattr(obj, "meta", None)
    if isinstance(meta, dict) and "mean" in meta and "std" in meta:
        return tuple(meta["mean"]), tuple(meta["std"])
    # torchvision weights keep them on their transforms object (ImageClassification.mean/.std)
    make = getattr(obj, "transforms", None)
    if callable(make):
        try:
            tf = make()
        except Exception:  # a transforms() that needs arguments: no statistics to read
            return None, None
        mean, std = getattr(tf, "mean", None), getattr(tf, "std", None)
        if mean is not None and std is not None:
            return tuple(mean), tuple(std)
    return None, None


def _bundled_samples() -> dict[str, Callable[[], Image.Image]]:
    """Bundled sample images as ``{name: loader}``; empty if the data module has none."""
    try:
        from .. import data
    except ImportError:  # pragma: no cover - package always has data
        return {}
    lister = getattr(data, "sample_images", None)
    loader = getattr(data, "load_sample", None)
    if lister is None:
        return {}
    found = lister()
    if isinstance(found, dict):
        out: dict[str, Callable[[], Image.Image]] = {}
        for k, v in found.items():
            if isinstance(v, Image.Image):
                out[str(k)] = lambda v=v: v
            elif loader is not None:
                out[str(k)] = lambda k=k: loader(k)
        return out
    if loader is None:
        return {}
    return {str(n): (lambda n=n: loader(n)) for n in found}


@dataclass
class _Snapshot:
    """Immutable copy of the state a render works on."""

    version: int
    method: str
    target: int | None
    layer: str
    channel: int
    position: tuple[int, int] | None
    sign: str
    clip: float
    cmap: str
    overlay: bool
    alpha: float
    view: str


class Explorer(W.VBox):
    """Interactive saliency explorer (see :func:`explore`).

    Attributes
    ----------
    computations : int
        Number of render passes run so far (each computes the current view once).
    render_log : collections.deque[RenderRecord]
        The last 200 render passes.
    """

    method = traitlets.Unicode("gradient")
    target = traitlets.Int(None, allow_none=True)
    layer = traitlets.Unicode("")
    channel = traitlets.Int(0)
    position = traitlets.Tuple(traitlets.Int(), traitlets.Int(), default_value=None, allow_none=True)
    sign = traitlets.Unicode("absolute")
    clip = traitlets.Float(99.0)
    cmap = traitlets.Unicode("magma")
    overlay = traitlets.Bool(False)
    alpha = traitlets.Float(0.6)
    view = traitlets.Unicode("single")

    #: Largest upload accepted from the upload button, in bytes (20 MiB).
    max_upload_bytes: int = 20 * 1024 * 1024

    @traitlets.validate("method", "layer", "sign", "cmap", "view")
    def _validate_choice(self, proposal: dict[str, Any]) -> Any:
        """Reject unknown choices with our error family, before the state changes."""
        name, value = proposal["trait"].name, proposal["value"]
        if name == "method":
            valid: Sequence[Any] | None = getattr(self, "methods", None)
        elif name == "layer":
            ctrl = getattr(self, "w_layer", None)
            valid = [k for _, k in ctrl.options] if ctrl is not None and ctrl.options else None
        elif name == "sign":
            valid = R.SIGNS
        elif name == "cmap":
            valid = R.COLORMAPS
        else:
            valid = ("single", "compare")
        if valid is not None and value not in valid:
            err = {"method": MethodError, "layer": LayerError}.get(name, InputError)
            raise err(f"unknown {name} {value!r}; expected one of {choices(valid)}")
        return value

    def __init__(
        self,
        model: torch.nn.Module,
        image: Any,
        *,
        labels: Sequence[str] | None = None,
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        device: str | torch.device | None = None,
        weights: Any = None,
        samples: dict[str, Callable[[], Image.Image]] | None = None,
    ) -> None:
        Explainer, available_methods = _engine()
        self._Explainer = Explainer
        self.methods: list[str] = list(available_methods())
        if not self.methods:
            raise ModelError("the engine has no attribution methods registered")
        self._model = model
        self._device = device
        src = weights if weights is not None else getattr(model, "saliency_weights", None)
        if isinstance(labels, (str, bytes)) or (labels is not None and not isinstance(labels, Sequence)):
            raise InputError(
                f"labels must be a list of class names (one per class), got {type(labels).__name__} {labels!r:.60}"
            )
        self._labels_arg = [str(s) for s in labels] if labels is not None else _labels_from(src)
        if transform is None and src is not None and callable(getattr(src, "transforms", None)):
            transform = src.transforms()
        if transform is None:
            transform = imagenet_transform()
            self._mean, self._std = _IMAGENET_MEAN, _IMAGENET_STD
        else:
            self._mean, self._std = _norm_from(src)
        self._transform = transform
        self._samples = dict(samples or {})

        self._lock = threading.Condition()
        self._dirty = False
        self._busy = False
        self._closed = False
        self._worker: threading.Thread | None = None
        self._local = threading.local()  # .internal: set while the worker updates controls
        self.computations = 0
        self.render_log: deque[RenderRecord] = deque(maxlen=200)
        self._log_path: Path | None = None
        self._version = 0
        self._x: torch.Tensor | None = None
        self._ex: Any = None
        self._ex_version = -1
        self._labels: list[str] = []
        self._topk: list[int] = []
        self._sal = _LRU()
        self._act = _LRU()
        self._proj = _LRU()
        self._last_pngs: dict[str, bytes] = {}
        self._last_msgs: dict[str, str | None] = {}
        self._last_status = ""

        self._build_controls()
        super().__init__(children=self._layout_children())
        self.add_class("sw-explorer")
        self.method = self.methods[0]
        self._wire()
        # The first image is loaded and rendered synchronously, so explore() raises bad
        # input (e.g. labels of the wrong length) at once and the repr has a picture.
        self._set_input(image, source="argument")
        self._check_labels()
        self._populate_structure()
        self._render(self._snapshot(), raise_errors=True)

    # ------------------------------------------------------------------ construction
    def _build_controls(self) -> None:
        lay = W.Layout
        self.w_method = W.ToggleButtons(options=self.methods, description="method", style={"button_width": "auto"})
        self.w_method.add_class("sw-method")
        self.w_view = W.ToggleButtons(options=[("single", "single"), ("compare all", "compare")], description="view", style={"button_width": "auto"})
        self.w_view.add_class("sw-view")
        self.w_sample = W.Dropdown(options=[("(sample)", "")] + [(n, n) for n in self._samples], description="sample", layout=lay(width="220px"))
        self.w_sample.add_class("sw-sample")
        self.w_upload = W.FileUpload(accept="image/png,image/jpeg,.png,.jpg,.jpeg", multiple=False, description="upload")
        self.w_upload.add_class("sw-upload")
        self.w_export = W.Button(description="export PNG", icon="download")
        self.w_export.add_class("sw-export")

        self.w_input = W.Image(format="png", layout=lay(width=f"{_PANEL}px", height=f"{_PANEL}px", object_fit="contain"))
        self.w_input.add_class("sw-input-image")
        self.w_map = W.Image(format="png", layout=lay(width=f"{_PANEL}px", height=f"{_PANEL}px", object_fit="contain"))
        self.w_map.add_class("sw-map-image")
        self.w_map_msg = W.HTML(layout=lay(width=f"{_PANEL}px"))
        self.w_map_msg.add_class("sw-map-message")
        self.w_map_title = W.HTML(layout=lay(width=f"{_PANEL}px"))
        self.w_compare = W.Image(format="png", layout=lay(display="none"))
        self.w_compare.add_class("sw-compare-image")

        self._xs = bq.OrdinalScale()
        self._ys = bq.LinearScale(min=0.0, max=1.0)
        self.w_bars = bq.Bars(
            # Stacked with the remainder 1 - p (light grey) so every row is a full-width
            # click target: a confident model gives the other classes ~1e-7 wide bars.
            x=["-"], y=[[0.0], [1.0]], type="stacked", scales={"x": self._xs, "y": self._ys},
            orientation="horizontal", colors=["#4c78a8", "#e8e8e8"], interactions={"click": "select"},
            selected_style={"stroke": "#f58518", "stroke-width": "3"}, unselected_style={},
            tooltip=bq.Tooltip(fields=["x", "y"], formats=["", ".4f"]),
        )
        self.w_bars_fig = bq.Figure(
            marks=[self.w_bars],
            axes=[bq.Axis(scale=self._xs, side="left"), bq.Axis(scale=self._ys, side="bottom", tick_format=".0%", num_ticks=3)],
            fig_margin={"top": 10, "bottom": 30, "left": 120, "right": 15},
            layout=lay(width="360px", height="220px"), title="",
        )
        self.w_bars_fig.add_class("sw-bars")

        self.w_sign = W.Dropdown(options=list(R.SIGNS), value="absolute", description="sign", layout=lay(width="200px"))
        self.w_sign.add_class("sw-sign")
        self.w_clip = W.FloatSlider(value=99.0, min=90.0, max=100.0, step=0.1, description="clip %", readout_format=".1f")
        self.w_clip.add_class("sw-clip")
        self.w_cmap = W.Dropdown(options=list(R.COLORMAPS), value="magma", description="colormap", layout=lay(width="200px"))
        self.w_cmap.add_class("sw-cmap")
        self.w_overlay = W.Checkbox(value=False, description="overlay", indent=False, layout=lay(width="90px"))
        self.w_overlay.add_class("sw-overlay")
        self.w_alpha = W.FloatSlider(value=0.6, min=0.0, max=1.0, step=0.05, description="alpha")
        self.w_alpha.add_class("sw-alpha")

        self.w_layer = W.Dropdown(options=[], description="layer", layout=lay(width="360px"))
        self.w_layer.add_class("sw-layer")
        self.w_channel = W.IntSlider(value=0, min=0, max=0, description="filter", continuous_update=True)
        self.w_channel.add_class("sw-filter")
        self.w_strongest = W.Button(description="strongest", tooltip="jump to the filter's largest activation")
        self.w_strongest.add_class("sw-strongest")
        self.w_canvas = FeatureMapCanvas(size=_PANEL)
        self.w_canvas.add_class("sw-feature-map")
        self.w_proj = W.Image(format="png", layout=lay(width=f"{_PANEL}px", height=f"{_PANEL}px", object_fit="contain"))
        self.w_proj.add_class("sw-projection-image")
        self.w_proj_msg = W.HTML(layout=lay(width=f"{_PANEL}px"))
        self.w_proj_title = W.HTML("<b>projection to pixel space</b>", layout=lay(width=f"{_PANEL + 60}px"))
        self.w_proj_msg.add_class("sw-projection-message")

        self.w_status = W.HTML()
        self.w_status.add_class("sw-status")
        self.w_trace = W.HTML()
        self.w_trace_box = W.Accordion(children=[self.w_trace], titles=("details",), selected_index=None, layout=lay(display="none"))
        self.w_trace_box.add_class("sw-traceback")

    def _layout_children(self) -> list[W.Widget]:
        def cap(text: str) -> W.HTML:
            return W.HTML(f"<b>{html.escape(text)}</b>")

        top = W.HBox([self.w_method, self.w_view])
        inputs = W.HBox([self.w_sample, self.w_upload, self.w_export])
        panels = W.HBox([
            W.VBox([cap("input"), self.w_input]),
            W.VBox([self.w_map_title, self.w_map, self.w_map_msg]),
            W.VBox([cap("target class (click a bar)"), self.w_bars_fig]),
        ])
        display = W.HBox([self.w_sign, self.w_clip, self.w_cmap, self.w_overlay, self.w_alpha])
        layer_row = W.HBox([self.w_layer, self.w_channel, self.w_strongest])
        fm = W.HBox([
            W.VBox([cap("feature map (click an activation)"), self.w_canvas]),
            W.VBox([self.w_proj_title, self.w_proj, self.w_proj_msg]),
        ])
        # Analyses (top-9 per filter, sanity check, pointing game) are built on first open:
        # they cost nothing until a user asks for them.
        self.w_analyses = W.Accordion(children=[W.HTML("")], titles=("analyses: top-9 per filter · sanity check · pointing game",), selected_index=None)
        self.w_analyses.observe(self._on_analyses_open, names="selected_index")
        return [top, inputs, panels, self.w_compare, display, layer_row, fm, self.w_status, self.w_trace_box, self.w_analyses]

    def _on_analyses_open(self, change: dict[str, Any]) -> None:
        if change["new"] is None or getattr(self, "analysis_panel", None) is not None:
            return
        from .analyses import AnalysisPanel

        def build() -> None:
            self.analysis_panel = AnalysisPanel(self._model, mean=self._mean, std=self._std)
            self.w_analyses.children = [self.analysis_panel]

        self._guard(build)

    def _wire(self) -> None:
        for ctrl, name in [
            (self.w_method, "method"), (self.w_view, "view"), (self.w_sign, "sign"),
            (self.w_clip, "clip"), (self.w_cmap, "cmap"), (self.w_overlay, "overlay"),
            (self.w_alpha, "alpha"), (self.w_channel, "channel"),
        ]:
            traitlets.link((ctrl, "value"), (self, name))
        self.observe(self._on_state, names=["method", "target", "channel", "position", "sign", "clip", "cmap", "overlay", "alpha", "view"])
        self.observe(self._on_layer, names="layer")
        self.w_layer.observe(self._on_layer_control, names="value")
        self.w_bars.observe(self._on_bar_selected, names="selected")
        self.w_canvas.observe(self._on_canvas_click, names="click")
        self.w_canvas.register_command("strongest", lambda _msg: list(self.jump_to_strongest()))
        self.w_strongest.on_click(lambda _b: self._guard(self.jump_to_strongest))
        self.w_upload.observe(self._on_upload, names="value")
        self.w_sample.observe(self._on_sample, names="value")
        self.w_export.on_click(lambda _b: self._guard(self._export_clicked))
        self.observe(self._on_channel_reset_position, names="channel")

    # ------------------------------------------------------------------ input
    def _set_input(self, image: Any, source: str) -> None:
        """Preprocess ``image`` into the model input (raises InputError on bad input)."""
        if isinstance(image, torch.Tensor):
            x = image.detach()
            if x.dim() == 4 and x.shape[0] == 1:
                x = x[0]
            if x.dim() != 3 or not x.is_floating_point():
                raise InputError(f"an image tensor must be a float (C, H, W) model input, got {tuple(image.shape)} {image.dtype}")
        else:
            if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3, 4):
                self._set_input(torch.from_numpy(np.ascontiguousarray(image)).float(), source)
                return
            pil = _to_pil(image)
            x = self._transform(pil)
            if not isinstance(x, torch.Tensor):
                raise InputError(f"transform must return a tensor, got {type(x).__name__}")
            if x.dim() == 4 and x.shape[0] == 1:
                x = x[0]
            if x.dim() != 3:
                raise InputError(f"transform must return a (C, H, W) tensor, got shape {tuple(x.shape)}")
        with self._lock:
            self._x = x.float()
            self._version += 1
            self._source = source
        # A new image predicts its own class; an explicit target would be meaningless.
        self._internal(lambda: setattr(self, "target", None))
        self._internal(lambda: setattr(self, "position", None))

    def set_image(self, image: Any) -> None:
        """Show a new image (PIL image, ndarray, tensor, path or PNG/JPEG bytes).

        A new forward pass runs on the next render; the current target resets to the
        predicted class.
        """
        self._set_input(image, source="set_image")
        self._schedule()

    def _on_upload(self, change: dict[str, Any]) -> None:
        value = change["new"]
        if not value:
            return
        item = value[0] if isinstance(value, (list, tuple)) else next(iter(value.values()))
        name = str(item.get("name", "upload"))

        def load() -> None:
            content = item["content"]
            size = max(int(item.get("size") or 0), len(content))
            if size > self.max_upload_bytes:
                raise InputError(
                    f"upload {name!r} is {size / 2**20:.1f} MiB; the limit is "
                    f"{self.max_upload_bytes / 2**20:.0f} MiB (Explorer.max_upload_bytes). "
                    "Downscale the image, or pass it from Python with set_image()"
                )
            self._set_input(content, source=f"upload {name}")
            self._schedule()

        self._guard(load)

    def _on_sample(self, change: dict[str, Any]) -> None:
        name = change["new"]
        if name:
            self._guard(lambda: (self._set_input(self._samples[name](), source=f"sample {name}"), self._schedule()))

    # ------------------------------------------------------------------ observers
    def _internal(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` with observers muted (used for derived updates made by the widget)."""
        prev = getattr(self._local, "internal", False)
        self._local.internal = True
        try:
            return fn()
        finally:
            self._local.internal = prev

    def _muted(self) -> bool:
        return bool(getattr(self._local, "internal", False))

    def _on_state(self, _change: dict[str, Any]) -> None:
        if not self._muted():
            self._schedule()

    def _on_layer(self, change: dict[str, Any]) -> None:
        if self._muted():
            return
        if self.w_layer.value != change["new"]:
            self._internal(lambda: setattr(self.w_layer, "value", change["new"]))
        self._apply_layer_limits()
        self._internal(lambda: setattr(self, "position", None))
        self._schedule()

    def _on_layer_control(self, change: dict[str, Any]) -> None:
        if not self._muted() and change["new"] is not None:
            self.layer = change["new"]

    def _on_channel_reset_position(self, _change: dict[str, Any]) -> None:
        # A clicked position belongs to one filter; a new filter starts at its strongest.
        if not self._muted():
            self._internal(lambda: setattr(self, "position", None))

    def _on_bar_selected(self, change: dict[str, Any]) -> None:
        if self._muted():
            return
        sel = list(change["new"] or [])
        if sel and 0 <= int(sel[-1]) < len(self._topk):
            self.target = int(self._topk[int(sel[-1])])

    def _on_canvas_click(self, change: dict[str, Any]) -> None:
        click = change["new"] or {}
        if "y" in click and "x" in click:
            self.position = (int(click["y"]), int(click["x"]))

    def _apply_layer_limits(self) -> None:
        info = self._layer_info(self.layer)
        if info is None:
            return
        top = int(info.shape[0]) - 1
        ch = min(self.channel, top)

        def apply() -> None:
            self.w_channel.max = top
            self.channel = ch
            self.w_channel.value = ch

        self._internal(apply)

    # ------------------------------------------------------------------ public API
    @property
    def explainer(self) -> Any:
        """The engine ``Explainer`` of the current image (None before the first render)."""
        return self._ex

    @property
    def labels(self) -> list[str]:
        """Class names in class-index order."""
        return list(self._labels)

    def click_bar(self, rank: int) -> None:
        """Select the ``rank``-th bar (0 = most probable), as a click in the browser would."""
        self.w_bars.selected = [int(rank)]

    def click_activation(self, y: int, x: int) -> None:
        """Click activation ``(y, x)`` of the feature map, as the canvas would."""
        prev = dict(self.w_canvas.click or {})
        self.w_canvas.click = {"y": int(y), "x": int(x), "seq": int(prev.get("seq", 0)) + 1}

    def jump_to_strongest(self) -> tuple[int, int]:
        """Select the current filter's largest activation and return its ``(y, x)``."""
        self.wait(timeout=60)  # the explainer must belong to the current image
        if self._ex is None:
            raise InputError("no image loaded yet")
        name, call = _parse_key(self.layer)
        y, x = self._ex.strongest(name, self.channel, call=call)[0]
        self.position = (int(y), int(x))
        return int(y), int(x)

    def log_events(self, path: str | Path | None) -> None:
        """Append one JSON line per render pass to ``path`` (None stops logging).

        The most recent render is written at once, so the log starts with the view that
        is currently shown.
        """
        self._log_path = Path(path) if path is not None else None
        if self._log_path is not None and self.render_log:
            self._write_log(self.render_log[-1])

    def _write_log(self, rec: RenderRecord) -> None:
        if self._log_path is None:
            return
        try:
            with self._log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(rec)) + "\n")
        except OSError:  # logging is a diagnostic aid; never break rendering over it
            pass

    def state(self) -> dict[str, Any]:
        """The current control state as a JSON-able dict."""
        return asdict(self._snapshot())

    def wait(self, timeout: float | None = 30.0) -> bool:
        """Block until no render is pending or running.

        Returns
        -------
        bool
            True if idle, False on timeout.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._dirty or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(left)
        return True

    @property
    def status(self) -> str:
        """The status line as plain text."""
        return self._last_status

    @property
    def images(self) -> dict[str, bytes]:
        """PNG bytes of the panels of the last render (``input``, ``map``, ``feature``, ...)."""
        return dict(self._last_pngs)

    @property
    def messages(self) -> dict[str, str | None]:
        """Per panel, the text shown instead of a degenerate map (None when an image shows)."""
        return dict(self._last_msgs)

    def to_png(self, path: str | Path | None = None) -> bytes:
        """Render the current view (input, map, feature map, projection) as one PNG.

        Parameters
        ----------
        path
            If given, the PNG is also written there.

        Returns
        -------
        bytes
            The PNG file contents.
        """
        self.wait(timeout=60)
        panels, titles = [], []
        for key, title in [("input", "input"), ("map", f"{self.method}"), ("feature", f"{self.layer} #{self.channel}"), ("projection", "projection")]:
            png = self._last_pngs.get(key)
            msg = self._last_msgs.get(key)
            if png:
                panels.append(R.from_png(png))
            elif msg:
                panels.append(R.message_panel(msg, (_PANEL, _PANEL)))
            else:
                continue
            titles.append(title)
        if not panels:
            panels, titles = [R.message_panel("nothing rendered yet", (_PANEL, _PANEL))], [""]
        data = R.to_png(R.compose(panels, titles, height=_PANEL))
        if path is not None:
            Path(path).write_bytes(data)
        return data

    def to_html(self, path: str | Path | None = None) -> str:
        """The current view as ONE self-contained HTML file (inline PNGs, probabilities, settings).

        Parameters
        ----------
        path
            If given, the page is also written there (UTF-8).

        Returns
        -------
        str
            The HTML text; it opens offline and loads nothing from the network.
        """
        from ..viz.report import explorer_html

        page = explorer_html(self)
        if path is not None:
            Path(path).write_text(page, encoding="utf-8")
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
        if not hasattr(self, "_lock"):  # __init__ failed before the widget existed (e.g. bad labels)
            return
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        for w in (self.w_canvas, self.w_bars_fig, self.w_bars):
            w.close()
        super().close()

    # ------------------------------------------------------------------ scheduling
    def _schedule(self) -> None:
        """Mark the view dirty and wake the worker (never computes in the caller)."""
        with self._lock:
            if self._closed:
                return
            self._dirty = True
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run_worker, name="saliency-explorer", daemon=True)
                self._worker.start()
            self._lock.notify_all()

    def _run_worker(self) -> None:
        while True:
            with self._lock:
                while not self._dirty and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                self._dirty = False
                self._busy = True
                snap = self._snapshot()
            try:
                self._render(snap)
            finally:
                with self._lock:
                    self._busy = False
                    self._lock.notify_all()

    def _snapshot(self) -> _Snapshot:
        pos = tuple(int(v) for v in self.position) if self.position else None
        return _Snapshot(
            version=self._version, method=self.method, target=self.target, layer=self.layer,
            channel=int(self.channel), position=pos, sign=self.sign, clip=float(self.clip),  # type: ignore[arg-type]
            cmap=self.cmap, overlay=bool(self.overlay), alpha=float(self.alpha), view=self.view,
        )

    def _guard(self, fn: Callable[[], Any]) -> None:
        """Run a UI callback; show errors in the status line instead of raising."""
        try:
            fn()
        except Exception as exc:
            self._show_error(exc)

    # ------------------------------------------------------------------ structure
    def _ensure_explainer(self, version: int) -> Any:
        if self._ex is not None and self._ex_version == version:
            return self._ex
        with self._lock:
            x = self._x
        if x is None:
            raise InputError("no image is loaded; pass image=... to explore(), pick a sample or upload a PNG/JPEG")
        self._ex = self._Explainer(self._model, x.unsqueeze(0), device=self._device)
        self._ex_version = version
        self._ex_x = x.detach().cpu()
        self._sal.clear()
        self._act.clear()
        self._proj.clear()
        return self._ex

    def _check_labels(self) -> None:
        ex = self._ensure_explainer(self._version)
        k = int(ex.logits.shape[-1])
        if self._labels_arg is None:
            self._labels = [f"class {i}" for i in range(k)]
        elif len(self._labels_arg) != k:
            raise InputError(f"got {len(self._labels_arg)} labels but the model has {k} classes")
        else:
            self._labels = list(self._labels_arg)

    def _spatial_layers(self) -> list[Any]:
        return [info for info in self._ex.layers if len(info.shape) == 3]

    def _layer_info(self, key: str) -> Any:
        if self._ex is None:
            return None
        for info in self._ex.layers:
            if info.key == key:
                return info
        return None

    def _populate_structure(self) -> None:
        """Fill the layer list (once per model) from the explainer, in forward order."""
        layers = self._spatial_layers()
        if not layers:
            raise ModelError("the model has no layer with a (C, H, W) output to inspect")
        opts = [(f"{i.key}  ({i.type}, {'x'.join(str(s) for s in i.shape)})", i.key) for i in layers]
        keys = [k for _, k in opts]
        # Default: the last layer with a real spatial map (not a 1x1 global pool), where
        # filters are most semantic.
        spatial = [i.key for i in layers if i.shape[1] * i.shape[2] > 1] or keys
        relus = [i.key for i in layers if i.key in spatial and "relu" in i.type.lower()]
        spatial = relus or spatial  # post-ReLU maps are what Zeiler & Fergus project
        current = self.layer if self.layer in keys else spatial[-1]

        def apply() -> None:
            self.w_layer.options = opts
            self.w_layer.value = current
            self.layer = current

        self._internal(apply)
        self._apply_layer_limits()
        # Open on the filter that responds most to this image rather than a possibly dead
        # filter 0, so the first view shows something.
        name, call = _parse_key(current)
        act = self._ex.activation(name, call=call)[0]
        best = int(act.flatten(1).amax(dim=1).argmax())
        self._internal(lambda: (setattr(self, "channel", best), setattr(self.w_channel, "value", best)))

    def _update_bars(self, probs: np.ndarray, target: int) -> None:
        k = min(_TOPK, probs.shape[0])
        top = [int(i) for i in np.argsort(-probs)[:k]]
        if target not in top:
            top[-1] = target  # an explicit target outside the top-k still gets a bar
        names, seen = [], set()
        for i in top:
            name = self._labels[i][:24]
            if name in seen:  # ordinal scales merge equal names; keep bars distinct
                name = f"{name} [{i}]"
            seen.add(name)
            names.append(name)
        self._topk = top

        def apply() -> None:
            with self.w_bars.hold_sync():
                self.w_bars.x = names
                p = [float(probs[i]) for i in top]
                self.w_bars.y = [p, [max(0.0, 1.0 - v) for v in p]]
                self.w_bars.selected = [top.index(target)]

        self._internal(apply)

    # ------------------------------------------------------------------ rendering
    def _render(self, snap: _Snapshot, raise_errors: bool = False) -> None:
        t0 = time.perf_counter()
        self.computations += 1
        rec = RenderRecord(seq=self.computations, state=asdict(snap), ms=0.0)
        pngs: dict[str, bytes] = {}
        msgs: dict[str, str | None] = {}
        caught: list[str] = []
        try:
            with warnings.catch_warnings(record=True) as wlist:
                warnings.simplefilter("always")
                self._render_into(snap, pngs, msgs)
            caught = [str(w.message).splitlines()[0] for w in wlist]
        except Exception as exc:
            rec.error = f"{type(exc).__name__}: {exc}"
            if raise_errors:
                raise
            self._show_error(exc)
        rec.ms = (time.perf_counter() - t0) * 1000.0
        rec.images = {k: _sha(v) for k, v in pngs.items()}
        rec.nonblank = {k: not R.is_blank(R.from_png(v)) for k, v in pngs.items()}
        if rec.error is None:
            self._last_pngs.update(pngs)
            for k, msg in msgs.items():
                if msg:  # a degenerate panel replaces the old picture with its message
                    self._last_pngs.pop(k, None)
            if "compare" not in pngs:
                self._last_pngs.pop("compare", None)
            self._last_msgs.update(msgs)
            self._show_status(snap, rec.ms, caught)
        self.render_log.append(rec)
        self._write_log(rec)

    def _render_into(self, snap: _Snapshot, pngs: dict[str, bytes], msgs: dict[str, str | None]) -> None:
        ex = self._ensure_explainer(snap.version)
        probs = ex.probabilities[0].detach().cpu().numpy()
        predicted = int(np.argmax(probs))
        target = predicted if snap.target is None else int(snap.target)
        if not 0 <= target < probs.shape[0]:
            raise InputError(f"target {target} out of range for {probs.shape[0]} classes")
        self._update_bars(probs, target)
        self._resolved_target = target
        base = R.input_to_rgb(self._ex_x.numpy(), self._mean, self._std)

        # Saliency map of the current method (memoised per image/method/target).
        sal = self._sal.get_or((snap.version, snap.method, target), lambda: ex.saliency(target=target, method=snap.method)[0].detach().cpu().numpy())
        map_png, map_msg = self._map_png(sal, snap, base)
        pngs["map"] = map_png if map_png else b""
        msgs["map"] = map_msg
        if not map_png:
            pngs.pop("map")
        label = self._labels[target]
        title = f"<b>{html.escape(snap.method)}</b> for <b>{html.escape(label)}</b> (p={probs[target]:.3f})"

        # Compare view: every method, same target, side by side.
        if snap.view == "compare":
            panels, titles = [], []
            for m in self.methods:
                s = self._sal.get_or((snap.version, m, target), lambda m=m: ex.saliency(target=target, method=m)[0].detach().cpu().numpy())
                png, msg = self._map_png(s, snap, base)
                panels.append(R.from_png(png) if png else R.message_panel(msg or "", (_PANEL, _PANEL)))
                titles.append(m)
            pngs["compare"] = R.to_png(R.compose(panels, titles, height=_PANEL - 64))

        # Feature map of the chosen filter, and the projection of one activation.
        name, call = _parse_key(snap.layer)
        info = self._layer_info(snap.layer)
        if info is None:
            raise InputError(f"unknown layer {snap.layer!r}")
        act = self._act.get_or((snap.version, snap.layer), lambda: ex.activation(name, call=call)[0].detach().cpu().numpy())
        if not 0 <= snap.channel < act.shape[0]:
            raise InputError(f"filter {snap.channel} out of range: {snap.layer} has {act.shape[0]} filters")
        fmap = act[snap.channel]
        pos = snap.position
        if pos is None:
            flat = int(np.nanargmax(fmap)) if np.isfinite(fmap).any() else 0
            pos = (flat // fmap.shape[1], flat % fmap.shape[1])
        if not (0 <= pos[0] < fmap.shape[0] and 0 <= pos[1] < fmap.shape[1]):
            raise InputError(f"position {pos} outside the {fmap.shape[0]}x{fmap.shape[1]} feature map")
        fpng, fcaption = self._feature_png(fmap, pos)
        pngs["feature"] = fpng
        # Projections follow a ReLU rule; methods without one (Grad-CAM, occlusion, ...)
        # project with DeconvNet, the rule of Zeiler & Fergus.
        prule = snap.method if snap.method in _projection_rules() else "deconvnet"
        proj = self._proj.get_or(
            (snap.version, snap.layer, snap.channel, pos, prule),
            lambda: ex.project(name, snap.channel, position=pos, call=call, method=prule)[0].detach().cpu().numpy(),
        )
        self._projection_rule = prule
        ppng, pmsg = self._map_png(proj, snap, base)
        if ppng:
            pngs["projection"] = ppng
        msgs["projection"] = pmsg
        box = ex.receptive_field(name, pos[0], pos[1], call=call)
        shown = R.draw_box(base, box, (0, 255, 0), 2)
        pngs["input"] = R.to_png(shown)

        def apply() -> None:
            self.w_input.value = pngs["input"]
            self._show_panel(self.w_map, self.w_map_msg, map_png, map_msg)
            self.w_map_title.value = title
            if "compare" in pngs:
                self.w_compare.value = pngs["compare"]
                self.w_compare.layout.display = ""
            else:
                self.w_compare.layout.display = "none"
            with self.w_canvas.hold_sync():
                self.w_canvas.grid = [int(fmap.shape[0]), int(fmap.shape[1])]
                self.w_canvas.marker = [int(pos[0]), int(pos[1])]
                self.w_canvas.png = fpng
                self.w_canvas.caption = fcaption
            self._show_panel(self.w_proj, self.w_proj_msg, ppng, pmsg)
            self.w_proj_title.value = (
                f"<b>projection to pixel space</b> ({html.escape(prule)}, activation {pos[0]}, {pos[1]})"
            )

        self._internal(apply)

    def _map_png(self, m: np.ndarray, snap: _Snapshot, base: np.ndarray) -> tuple[bytes | None, str | None]:
        rm = R.render_map(m, sign=snap.sign, clip_percentile=snap.clip, cmap=snap.cmap)
        if rm.rgb is None:
            return None, rm.message
        rgb = rm.rgb
        if snap.overlay and rgb.shape == base.shape:
            rgb = R.overlay(base, rgb, snap.alpha, rm.weight)
        return R.to_png(rgb), None

    @staticmethod
    def _feature_png(fmap: np.ndarray, pos: tuple[int, int]) -> tuple[bytes, str]:
        finite = np.isfinite(fmap)
        if not finite.all():
            return R.to_png(np.full((*fmap.shape, 3), 235, np.uint8)), "feature map contains NaN/Inf"
        lo, hi = float(fmap.min()), float(fmap.max())
        v = (fmap - lo) / (hi - lo) if hi > lo else np.zeros_like(fmap)
        rgb = R.apply_colormap(v, "viridis")
        my, mx = np.unravel_index(int(np.argmax(fmap)), fmap.shape)
        caption = f"max {hi:.4g} at ({my}, {mx})   selected ({pos[0]}, {pos[1]}) = {float(fmap[pos]):.4g}"
        if hi == lo == 0.0:
            caption = "this filter is all zeros on this image"
        return R.to_png(rgb), caption

    @staticmethod
    def _show_panel(img: W.Image, msg: W.HTML, png: bytes | None, text: str | None) -> None:
        if png:
            img.value = png
            img.layout.display = ""
            msg.value = ""
        else:
            img.layout.display = "none"
            msg.value = f"<div style='padding:8px;border:1px dashed #c66;color:#822'>{html.escape(text or 'no map')}</div>"

    # ------------------------------------------------------------------ status line
    def _show_status(self, snap: _Snapshot, ms: float, warns: Sequence[str]) -> None:
        target = getattr(self, "_resolved_target", None)
        label = self._labels[target] if target is not None and target < len(self._labels) else "?"
        text = (
            f"{snap.method} map for '{label}', {snap.layer} filter {snap.channel}"
            f" · {self._ex.device} · {ms:.0f} ms"
        )
        if warns:
            text += f" · warning: {warns[0]}"
        self._last_status = text
        self.w_status.value = f"<span style='font-family:monospace'>{html.escape(text)}</span>"
        self.w_trace.value = ""
        self.w_trace_box.layout.display = "none"

    def _show_error(self, exc: BaseException) -> None:
        kind = "error" if isinstance(exc, SaliencyError) else f"unexpected {type(exc).__name__}"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        text = f"{kind}: {first}"
        self._last_status = text
        self.w_status.value = f"<span style='font-family:monospace;color:#b00'>{html.escape(text)}</span>"
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.w_trace.value = f"<pre style='font-size:11px;white-space:pre-wrap'>{html.escape(tb)}</pre>"
        self.w_trace_box.layout.display = ""

    def _export_clicked(self) -> None:
        path = Path.cwd() / f"saliency_{time.strftime('%Y%m%d-%H%M%S')}.png"
        self.to_png(path)
        self._last_status = f"exported the view to {path}"
        self.w_status.value = f"<span style='font-family:monospace'>{html.escape(self._last_status)}</span>"


def explore(
    model: torch.nn.Module | None = None,
    image: Any = None,
    *,
    labels: Sequence[str] | None = None,
    transform: Callable[[Image.Image], torch.Tensor] | None = None,
    device: str | torch.device | None = None,
    weights: Any = None,
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
        Class names (length = number of classes). Default: ``weights.meta["categories"]``,
        else ``model.saliency_weights.meta["categories"]``, else ``"class i"``.
    transform
        PIL image -> (C, H, W) tensor. Default: ``weights.transforms()`` (or the model's
        ``saliency_weights``), else resize to 224 and ImageNet normalisation.
    device
        Device for the engine (the model is not moved; must match it if given).
    weights
        A weights object with ``.transforms()`` and ``.meta`` (torchvision style).

    Returns
    -------
    Explorer
        The widget; display it (last expression of a cell) to interact.

    Raises
    ------
    InputError
        Bad image, or labels whose length differs from the model's class count.
    ModelError
        No model given and the bundled model is not available.
    """
    if model is None:
        try:
            from ..models import shapes_cnn
        except ImportError as exc:
            raise ModelError(f"no model given and the bundled model is unavailable: {exc}") from None
        model = shapes_cnn(pretrained=True)
        bundled = True
    else:
        bundled = False
    samples = _bundled_samples()
    if image is None:
        if not samples:
            raise InputError("no image given and no bundled sample image is available")
        # The bundled model was trained on shape scenes: open on one of those.
        names = [n for n in samples if bundled and n.startswith("shapes")] or list(samples)
        image = samples[names[0]]()
    return Explorer(model, image, labels=labels, transform=transform, device=device, weights=weights, samples=samples)
