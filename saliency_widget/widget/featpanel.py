"""The explorer's "what does this unit want" panel: feature visualization on demand.

Two buttons: *what excites this filter* optimises an image for the mean activation of the
explorer's current filter (:func:`~saliency_widget.objectives.channel`), and *what the model
sees as this class* for the selected class's logit (the predicted class when none is selected;
:func:`~saliency_widget.objectives.class_logit`, Simonyan et al. 2013). The optimisation is the
engine's (:func:`saliency_widget.featviz.render`, with the preprocessing the explorer reads
through :func:`~saliency_widget.viz.visualize.model_preprocess`), run on a
:class:`~.scheduler.LatestOnlyWorker` thread of the panel: a newer click stops the running
optimisation before its next step (the one progress protocol), and the explorer's renders,
which share its compute lock, are served between two steps. The defaults (:data:`STEPS` steps
on one :data:`SIZE` px image) answer in a few seconds on the bundled model on a CPU; results are
cached per objective. The image crosses the wire as PNG bytes, with a caption naming the
objective, the steps and the final value.
"""

from __future__ import annotations

import html
import io
import threading
import time
from dataclasses import dataclass
from typing import Any

import ipywidgets as W
import numpy as np
import torch
import traitlets
from PIL import Image

from ..errors import Cancelled, SaliencyError
from ..featviz.objectives import Objective, channel, class_logit
from ..featviz.optimize import render
from ..featviz.result import Visualization
from ..views.classes import class_name
from ..viz.modelio import ModelIO
from ..viz.report import message_html
from ..viz.visualize import model_preprocess
from .scheduler import LatestOnlyWorker
from .view import fill_tooltips

__all__ = ["SIZE", "STEPS", "FeatRequest", "FeatResult", "FeaturePanel", "compute_visualization", "visualization_png"]

#: Default optimisation steps of one visualization in the widget (a few seconds on a CPU).
STEPS = 96
#: Default side of the optimised image, in pixels.
SIZE = 80


@dataclass(frozen=True)
class FeatRequest:
    """One visualization to compute.

    Attributes
    ----------
    kind
        ``"filter"`` (a channel of a layer) or ``"class"`` (a class logit).
    layer
        Layer key of a ``"filter"`` request ("" for a class).
    index
        Channel (``"filter"``) or class index (``"class"``).
    label
        What the caption calls it (``"filter 3 of features.relu5"``, ``"class 'circle'"``).
    steps, size
        Optimisation steps and image side.
    """

    kind: str
    layer: str
    index: int
    label: str
    steps: int = STEPS
    size: int = SIZE

    def objective(self) -> Objective:
        """The engine objective of this request."""
        return channel(self.layer, self.index) if self.kind == "filter" else class_logit(self.index)

    @property
    def key(self) -> tuple[str, str, int, int, int]:
        """Cache key (the model is fixed for a panel)."""
        return (self.kind, self.layer, self.index, self.steps, self.size)


@dataclass(frozen=True)
class FeatResult:
    """A finished visualization as the panel shows it.

    Attributes
    ----------
    request
        What was asked.
    png
        The image, ``size`` x ``size`` RGB PNG bytes.
    caption
        The text under the image (objective, steps, final value, time).
    visualization
        The engine's result (``images`` ``(1, 3, size, size)``, ``inputs``, ``values`` ``(1,)``, ``history`` ``(steps, 1)``).
    seconds
        Wall time of the optimisation.
    """

    request: FeatRequest
    png: bytes
    caption: str
    visualization: Visualization
    seconds: float

    @property
    def title(self) -> str:
        """The short title of the image in the explorer's exports (``"what excites filter 3 of features.relu5"``)."""
        req = self.request
        return f"what excites {req.label}" if req.kind == "filter" else f"what the model sees as {req.label}"


def compute_visualization(
    model: torch.nn.Module, model_io: ModelIO, request: FeatRequest, progress: Any = None, seed: int = 0
) -> Visualization:
    """Optimise one image for ``request`` on ``model``, scored with the model's own preprocessing.

    Parameters
    ----------
    model
        The network (never modified).
    model_io
        Its preprocessing and labels, as the explorer read them.
    request
        The objective, steps and size.
    progress
        ``progress(done, total)`` after each step; returning False (or raising
        :class:`~saliency_widget.errors.Cancelled`) stops the optimisation.
    seed
        Seed of the start image and the transformations (runs repeat exactly on a CPU).

    Returns
    -------
    Visualization
        One image: ``images`` ``(1, 3, size, size)`` in [0, 1], ``values`` ``(1,)``, ``history`` ``(steps, 1)``.
    """
    pre, _ = model_preprocess(model_io)
    return render(
        model, request.objective(), preprocess=pre, labels=model_io.labels, steps=request.steps, size=request.size,
        seed=seed, progress=progress,
    )  # fmt: skip


def visualization_png(vis: Visualization, i: int = 0) -> bytes:
    """Image ``i`` of ``vis`` (``(3, H, W)`` in [0, 1]) as RGB PNG bytes of its own size."""
    rgb = (vis.images[i].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def caption_text(req: FeatRequest, vis: Visualization, seconds: float) -> str:
    """Objective, steps, size, start and final objective value, and time of one visualization."""
    hist = vis.history[:, 0]
    start = float(hist[0]) if hist.numel() else float("nan")
    return (
        f"{req.label}: {vis.names[0]} · {int(hist.numel())} steps · {req.size} px · "
        f"value {start:.3g} → {float(vis.values[0]):.3g} · {seconds:.1f} s"
    )


class FeaturePanel(W.VBox):
    """Buttons, image, caption and progress of the explorer's feature visualizations.

    Parameters
    ----------
    explorer
        The :class:`~.explorer.Explorer` whose model, layer, filter and class are visualized;
        its ``compute_lock`` is held while optimising and released between steps.
    steps, size
        Optimisation steps and image side of each visualization.
    """

    #: The caption of the image shown ("" before the first): the explorer observes it to refresh its saved view.
    shown = traitlets.Unicode("")

    def __init__(self, explorer: Any, *, steps: int = STEPS, size: int = SIZE) -> None:
        self._explorer = explorer
        self.steps = steps
        self.size = size
        self._req: FeatRequest | None = None
        self._cache: dict[tuple[str, str, int, int, int], FeatResult] = {}
        self._worker = LatestOnlyWorker(self._job, on_error=self._show_error, name="saliency-featviz")
        self._stop = threading.Event()
        #: The result shown (None before the first).
        self.result: FeatResult | None = None
        #: One line per request served: ``(objective, "done" | "cached" | "cancelled" | "error: ...")``.
        self.served: list[tuple[str, str]] = []

        self.w_filter = W.Button(
            description="what excites this filter",
            icon="eye",
            tooltip="optimise an image for the mean activation of the current filter (feature visualization)",
            layout=W.Layout(width="auto"),  # the default 148 px cuts the label
        )
        self.w_class = W.Button(
            description="what the model sees as this class",
            icon="eye",
            tooltip="optimise an image for the selected class's score (the predicted class when none is selected)",
            layout=W.Layout(width="auto"),
        )
        self.w_image = W.Image(format="png", layout=W.Layout(width="160px", height="160px", object_fit="contain"))
        self.w_image.add_class("sw-featviz-image")
        self.w_image.layout.display = "none"  # until the first result: an empty image may draw a broken-image icon
        self.w_caption = W.HTML(
            "<small>what a unit wants: press a button to optimise an image for it</small>", layout=W.Layout(width="320px")
        )
        self.w_progress = W.FloatProgress(0.0, min=0.0, max=1.0, description="", layout=W.Layout(width="160px", display="none"))
        super().__init__(
            [W.HBox([self.w_filter, self.w_class]), W.HBox([self.w_image, W.VBox([self.w_caption, self.w_progress])])]
        )
        self.add_class("sw-featviz")
        # Beside the analyses panel's top-9 grid: "what excites this filter" next to "which patches
        # excite it" (the same image, caption and progress widgets: two views of one state).
        self._topk_unit: tuple[str, int] | None = None
        self.w_topk_button = W.Button(description="what excites this filter", icon="eye", disabled=True, layout=W.Layout(width="auto"),
                                      tooltip="optimise an image for the mean activation of the filter whose top-9 shows")
        self.w_beside_topk = W.VBox([
            W.HTML("<b>what excites it</b> <small>(feature visualization)</small>"), self.w_topk_button,
            self.w_image, self.w_caption, self.w_progress,
        ], layout=W.Layout(margin="0 0 0 12px", max_width="340px"))  # fmt: skip
        self.w_beside_topk.add_class("sw-featviz-topk")
        fill_tooltips(self)  # no "null" tooltips
        fill_tooltips(self.w_beside_topk)
        self.w_filter.on_click(lambda _b: self.visualize_filter())
        self.w_class.on_click(lambda _b: self.visualize_class())
        self.w_topk_button.on_click(lambda _b: self._visualize_topk_unit())
        if isinstance(explorer, traitlets.HasTraits):
            explorer.observe(self._on_unit, names=["layer", "channel"])

    # ------------------------------------------------------------------ requests
    def visualize_filter(self) -> None:
        """Visualize the explorer's current filter (a running visualization stops)."""
        ex = self._explorer
        self.request(self._filter_request(str(ex.layer), int(ex.channel)))

    def visualize_class(self) -> None:
        """Visualize the explorer's selected class (its predicted class when none is selected)."""
        ex = self._explorer
        target = ex.target
        if target is None:
            ex.wait(timeout=60)  # the explainer of the image on screen
            target = int(ex.inputs.explainer().logits[0].argmax())
        name = class_name(ex.labels, int(target))
        self.request(FeatRequest("class", "", int(target), f"class {name!r}", self.steps, self.size))

    def follow_topk(self, layer: str, channel: int) -> None:
        """The top-9 grid beside :attr:`w_beside_topk` now shows ``channel`` of ``layer``.

        Its button then visualizes that filter; when that visualization is cached it shows at
        once (nothing is computed until the button is pressed: an optimisation costs seconds).
        """
        self._topk_unit = (str(layer), int(channel))
        self.w_topk_button.description = f"what excites filter {int(channel)}"
        self.w_topk_button.disabled = False
        req = self._filter_request(str(layer), int(channel))
        if req.key in self._cache and (self.result is None or self.result.request != req):
            self.request(req)

    def _on_unit(self, _change: Any) -> None:
        """The explorer moved to another filter: show its visualization at once if cached (never computed here)."""
        if self.result is None or self.result.request.kind != "filter":
            return  # a class model stays until asked otherwise
        ex = self._explorer
        req = self._filter_request(str(ex.layer), int(ex.channel))
        if req.key in self._cache and self.result.request != req:
            self.request(req)

    def _visualize_topk_unit(self) -> None:
        if self._topk_unit is not None:
            self.request(self._filter_request(*self._topk_unit))

    def _filter_request(self, layer: str, c: int) -> FeatRequest:
        return FeatRequest("filter", layer, c, f"filter {c} of {layer}", self.steps, self.size)

    def request(self, req: FeatRequest) -> None:
        """Show ``req``'s visualization: at once when cached, else computed on the panel's worker."""
        self._req = req
        hit = self._cache.get(req.key)
        if hit is not None:
            self._stop.set()  # a running one is stale now
            self._show(hit)
            self.served.append((hit.visualization.names[0], "cached"))
            return
        self._stop.clear()
        self.w_progress.value = 0.0
        self.w_progress.description = "queued"
        self.w_progress.layout.display = ""
        self._worker.schedule()

    def wait(self, timeout: float | None = 60.0) -> bool:
        """Block until no visualization is pending or running; True if idle."""
        return self._worker.wait(timeout)

    def close(self) -> None:
        """Stop the worker (the running optimisation stops at its next step) and close the widgets."""
        self._stop.set()
        self._worker.close()
        self.w_beside_topk.close()
        super().close()

    # ------------------------------------------------------------------ worker
    def _step(self, done: int, total: int) -> bool:
        """Between two steps: stop when superseded, show progress, let the explorer render."""
        if self._stop.is_set() or self._worker.pending or self._worker.closed:
            return False
        self.w_progress.value = done / max(1, total)
        self.w_progress.description = f"{done}/{total}"
        lock = self._explorer.compute_lock
        lock.release()
        try:
            self._explorer.wait(timeout=30)  # a render asked for meanwhile runs now, not after the optimisation
        finally:
            lock.acquire()
        return True

    def _job(self) -> None:
        req = self._req
        if req is None or req.key in self._cache:
            return
        name = req.label
        t0 = time.perf_counter()
        try:
            with self._explorer.compute_lock:
                vis = compute_visualization(self._explorer.model, self._explorer.model_io, req, progress=self._step)
        except Cancelled:
            self.served.append((name, "cancelled"))
            return
        seconds = time.perf_counter() - t0
        res = FeatResult(req, visualization_png(vis), caption_text(req, vis, seconds), vis, seconds)
        self._cache[req.key] = res
        self.served.append((vis.names[0], "done"))
        if self._req is req and not self._worker.pending:
            self._show(res)

    def _show(self, res: FeatResult) -> None:
        self.result = res
        self.w_image.value = res.png
        self.w_image.layout.display = ""
        self.w_caption.value = f"<small>{html.escape(res.caption)}</small>"
        self.w_progress.layout.display = "none"
        self.shown = res.caption

    def _show_error(self, exc: BaseException) -> None:
        self.served.append(("?" if self._req is None else self._req.label, f"error: {exc}"))
        kind = "" if isinstance(exc, SaliencyError) else f"{type(exc).__name__}: "
        self.w_caption.value = message_html(f"{kind}{str(exc).splitlines()[0] if str(exc) else ''}", "error")
        self.w_progress.layout.display = "none"
