"""The faithfulness analysis of the analyses panel: deletion / insertion curves of one image.

For the explorer's current image and class, :class:`FaithfulnessPanel` computes
:func:`~saliency_widget.analysis.deletion_insertion` curves of the current method (all methods
in the compare view), shows them in a small bqplot chart with the random-order reference, and
the AUCs in a table sorted by quality. The current method is computed first and shown at once
(the time to first curve is kept in :attr:`FaithfulnessPanel.first_curve_s`); the others
follow one by one. The work runs on a worker thread, so a cancel click or a newer request
stops it between two batches of perturbed copies.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import bqplot as bq
import ipywidgets as W
import numpy as np
import torch
from torch import nn

from ..analysis.faithfulness import (
    KINDS,
    RANDOM,
    FaithfulnessResult,
    deletion_insertion,
    merge_results,
)
from ..errors import Cancelled, MethodError, SaliencyError
from ..views.classes import class_name
from ..viz.curves import curve_color
from ..viz.report import message_html
from ..viz.tables import scoreboard_html
from .scheduler import LatestOnlyWorker

__all__ = ["FaithRequest", "FaithfulnessPanel", "request_from_explorer"]


@dataclass(frozen=True)
class FaithRequest:
    """What to score: one image, one class, methods in the order to compute them.

    Attributes
    ----------
    inputs
        ``(1, C, H, W)`` preprocessed image.
    target
        Class index whose probability the curves track.
    methods
        Method names; the first (the explorer's current method) is computed and shown first.
    label
        Class name, for the caption.
    """

    inputs: torch.Tensor
    target: int
    methods: tuple[str, ...]
    label: str = ""
    notes: dict[str, str] = field(default_factory=dict)


def request_from_explorer(explorer: Any) -> FaithRequest:
    """The explorer's current image, class (the predicted one when none is selected) and method(s).

    The compare view asks for every method that can run on the model, current method first.
    """
    explorer.wait(timeout=60)  # the explainer of the image on screen
    ex = explorer.inputs.explainer()
    target = explorer.target if explorer.target is not None else int(ex.logits[0].argmax())
    methods: list[str] = []
    notes: dict[str, str] = {}
    # the current method first; in the compare view every other method after it
    for m in [explorer.method, *(explorer.methods if explorer.view == "compare" else [])]:
        why = ex.unavailable(m)
        if m in methods or m in notes:
            continue
        if why:
            notes[m] = why.splitlines()[0]
        else:
            methods.append(m)
    if not methods:
        raise MethodError(f"{explorer.method!r} cannot run on this model: {notes[explorer.method]}; choose another method in the explorer")
    labels = explorer.labels
    label = class_name(labels, target)
    return FaithRequest(ex.inputs.detach(), int(target), tuple(methods), label, notes)


class FaithfulnessPanel(W.VBox):
    """Deletion and insertion curves, AUC scoreboard, progress bar and cancel button.

    Parameters
    ----------
    model
        The classifier (never modified; run in eval mode under ``torch.no_grad()``).
    request
        Called on the kernel thread by :meth:`run`: what to score now.
    steps
        Perturbation steps per curve.
    lock
        Held while computing; released between batches (after calling ``yield_to``), so the
        explorer's renders, which hold it too, are served within one batch.
    yield_to
        Called between batches with the lock released (the explorer: wait for its render).
    batch_size
        Perturbed copies per forward pass (default: as occlusion's batches).
    own_controls
        Show the run and cancel buttons (:attr:`w_run`, :attr:`w_cancel`) at the top; False:
        the caller places them (the analyses panel puts them in one row with the sanity check).
    """

    def __init__(
        self,
        model: nn.Module,
        request: Callable[[], FaithRequest],
        *,
        steps: int = 20,
        lock: Any = None,
        yield_to: Callable[[], Any] | None = None,
        batch_size: int | None = None,
        own_controls: bool = True,
    ) -> None:
        self.model = model
        self._request_fn = request
        self.steps = steps
        self._lock = lock
        self._yield_to = yield_to
        self.batch_size = batch_size
        self._req: FaithRequest | None = None
        self._cancel = threading.Event()
        self._worker = LatestOnlyWorker(self._job, on_error=self._show_error, name="saliency-faithfulness")
        #: The merged result of the last request (partial while it computes).
        self.result: FaithfulnessResult | None = None
        #: Seconds from :meth:`run` to the first curve on the chart, for the last request.
        self.first_curve_s: float | None = None
        #: Number of batches computed by the last request (to check where a cancel stopped).
        self.batches = 0
        self.cancelled = False
        self._t0 = 0.0

        self.w_run = W.Button(description="faithfulness", icon="line-chart", tooltip="deletion / insertion curves (RISE) of this image")
        self.w_cancel = W.Button(description="cancel", icon="stop", disabled=True)
        self.w_progress = W.FloatProgress(0.0, min=0.0, max=1.0, description="idle")
        self.w_status = W.HTML()
        self.w_table = W.HTML()
        # Both axes are fractions in [0, 1], fixed, with ticks at 0, 0.5 and 1 in readable text.
        xs = bq.LinearScale(min=0.0, max=1.0, allow_padding=False)
        ys = bq.LinearScale(min=0.0, max=1.0, allow_padding=False)
        self.m_deletion = bq.Lines(x=np.zeros(0), y=np.zeros(0), scales={"x": xs, "y": ys}, stroke_width=2)
        self.m_insertion = bq.Lines(x=np.zeros(0), y=np.zeros(0), scales={"x": xs, "y": ys}, stroke_width=2, line_style="dashed")
        text = {"font-size": "13px"}
        self.w_chart = bq.Figure(
            marks=[self.m_deletion, self.m_insertion],
            axes=[
                bq.Axis(scale=xs, side="bottom", label="fraction of pixels perturbed", tick_values=np.array([0.0, 0.5, 1.0]),
                        tick_format=".1f", tick_style=text, label_offset="32px"),
                bq.Axis(scale=ys, side="left", label="p(class)", tick_values=np.array([0.0, 0.5, 1.0]), tick_format=".1f",
                        tick_style=text, label_offset="38px"),
            ],
            title="deletion (solid) · insertion (dashed)",
            title_style=text,
            fig_margin={"top": 30, "bottom": 48, "left": 56, "right": 22},
            layout=W.Layout(width="340px", height="250px"),
        )
        # No empty chart before a curve exists (the hint says what comes): the chart joins the page with
        # its first curve. Not display:none: a bqplot figure first drawn hidden stays blank when shown.
        self.w_chart_box = W.Box([])
        self.w_hint = W.HTML(
            "<small>faithfulness: how fast the class probability drops when this image's most relevant pixels are "
            "removed (deletion) and rises when they are restored (insertion); press the button to draw the curves</small>"
        )
        self.w_progress.layout.display = "none"
        self.w_controls = W.HBox([self.w_run, self.w_cancel])
        super().__init__([
            *([self.w_controls] if own_controls else []), self.w_hint, self.w_progress, self.w_status,
            W.HBox([self.w_chart_box, self.w_table], layout=W.Layout(flex_flow="row wrap", align_items="flex-start")),
        ])
        self.w_run.on_click(lambda _b: self.run())
        self.w_cancel.on_click(lambda _b: self.cancel())

    # ------------------------------------------------------------------ requests
    def run(self) -> None:
        """Score the current image and class; a running request stops before its next batch."""
        try:
            req = self._request_fn()
        except SaliencyError as err:
            self._show_error(err)
            return
        self._req = req
        self._t0 = time.perf_counter()
        self._cancel.clear()
        self.w_cancel.disabled = False
        self.w_hint.layout.display = "none"
        self.w_progress.layout.display = ""
        self.w_progress.description = "queued"
        self._worker.schedule()

    def cancel(self) -> None:
        """Stop the running request before its next batch (its finished curves stay shown)."""
        self._cancel.set()

    def wait(self, timeout: float | None = 60.0) -> bool:
        """Block until no request is pending or running; True if idle."""
        return self._worker.wait(timeout)

    def close(self) -> None:
        """Stop the worker thread and close the child widgets."""
        self._cancel.set()
        self._worker.close()
        super().close()

    # ------------------------------------------------------------------ worker
    def _go_on(self, done: int, total: int, stage: int, stages: int) -> bool:
        """Between two batches: progress, cancel, and room for the explorer's render."""
        self.batches += 1
        if self._cancel.is_set() or self._worker.pending:
            return False
        self.w_progress.value = (stage + done / max(1, total)) / stages
        if self._lock is not None:
            self._lock.release()
            try:
                if self._yield_to is not None:
                    self._yield_to()
            finally:
                self._lock.acquire()
        return True

    def _job(self) -> None:
        req = self._req
        if req is None:
            return
        self.batches = 0
        self.cancelled = False
        self.result = None
        self.first_curve_s = None
        self._draw(None, req)
        # the current method first, alone (the first curve), then the random reference, then the rest
        jobs: list[str | None] = [req.methods[0], None, *req.methods[1:]]
        stages = len(jobs)
        parts: list[FaithfulnessResult] = []
        failed = dict(req.notes)
        guard: AbstractContextManager[Any] = self._lock if self._lock is not None else nullcontext()
        try:
            with guard:
                for stage, method in enumerate(jobs):
                    self.w_progress.description = f"{method or 'random order'} …"
                    try:
                        part = deletion_insertion(
                            self.model, req.inputs, maps=None if method else {}, methods=[method] if method else None,
                            target=req.target, steps=self.steps, batch_size=self.batch_size, reference=method is None,
                            progress=functools.partial(self._go_on, stage=stage, stages=stages),
                        )
                    except Cancelled:
                        raise
                    except SaliencyError as err:
                        if stage == 0 and len(req.methods) == 1:
                            raise
                        failed[str(method)] = str(err).splitlines()[0]
                        continue
                    parts.append(part)
                    self.result = merge_results(parts)
                    later = [m for m in jobs[stage + 1 :] if m is not None]
                    self._draw(self.result, req, pending=later, failed=failed)
                    if self.first_curve_s is None:
                        self.first_curve_s = time.perf_counter() - self._t0
        except Cancelled:
            self.cancelled = True
            self.w_progress.description = "cancelled" if self._cancel.is_set() else "superseded"
            self._settle(req, failed)  # no row stays "computing …"
            self.w_status.value = message_html(
                "stopped: " + ("cancelled" if self._cancel.is_set() else "a newer request came"), "note"
            )
            self.w_cancel.disabled = True
            return
        except SaliencyError as err:
            self._show_error(err)
            return
        self.w_progress.value = 1.0
        self.w_progress.description = "done"
        self.w_cancel.disabled = True

    # ------------------------------------------------------------------ drawing
    def _draw(
        self, res: FaithfulnessResult | None, req: FaithRequest, pending: Sequence[str] = (), failed: dict[str, str] | None = None
    ) -> None:
        caption = f"class {req.label!r} (index {req.target}), {self.steps} steps, most relevant pixels first"
        self.w_status.value = ""
        if res is None:
            self.m_deletion.y, self.m_insertion.y = np.zeros(0), np.zeros(0)
            self.w_table.value = scoreboard_html([], caption=caption, pending=req.methods, failed=req.notes or None)
            return
        if not self.w_chart_box.children:
            self.w_chart_box.children = [self.w_chart]
        names = [*res.methods] + ([RANDOM] if ("deletion", RANDOM) in res.curves else [])
        colors = {m: curve_color(i, m) for i, m in enumerate(names)}
        x = res.fractions.numpy().astype(np.float64)
        for kind, mark in zip(KINDS, (self.m_deletion, self.m_insertion)):
            ys = np.stack([res.curve(kind, m)[0].numpy().astype(np.float64) for m in names])
            with mark.hold_sync():
                mark.x = x
                mark.y = ys
                mark.colors = [colors[m] for m in names]
                mark.labels = names
        self.w_table.value = scoreboard_html(res.ranking(0) if res.curves else [], colors=colors, caption=caption, pending=pending, failed=failed)

    @property
    def chart_shown(self) -> bool:
        """True once the chart is on the page (it joins with the first curve)."""
        return bool(self.w_chart_box.children)

    @property
    def curves_shown(self) -> dict[str, list[str]]:
        """The curves on the chart, per kind (``"deletion"``, ``"insertion"``): their method names."""
        out = {}
        for kind, mark in zip(KINDS, (self.m_deletion, self.m_insertion)):
            n = 0 if mark.y is None or np.asarray(mark.y).size == 0 else np.atleast_2d(mark.y).shape[0]
            out[kind] = list(mark.labels or [])[:n]
        return out

    def _settle(self, req: FaithRequest | None, failed: dict[str, str] | None = None) -> None:
        """Redraw the table of what finished, with no "computing …" row (after an error or a stop)."""
        if req is None:
            self.w_table.value = ""
            return
        res = self.result
        if res is None or not res.curves:
            self.w_table.value = ""
            self.w_chart_box.children = []
            self.w_hint.layout.display = ""
            return
        self._draw(res, req, pending=(), failed=failed)

    def _show_error(self, exc: BaseException) -> None:
        self._settle(self._req)
        self.w_status.value = message_html(str(exc), "error")
        self.w_progress.value = 0.0
        self.w_progress.description = "error"
        self.w_cancel.disabled = True
