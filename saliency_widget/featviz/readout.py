"""Reading the layers an objective needs during one forward pass, with the engine's capture.

A :class:`LayerReader` runs one tracked probe forward first (to learn each layer's layout and
shape, and check that it runs), then, per optimisation step, one forward pass under
:class:`~saliency_widget.engine.capture.LayerCapture` that stops right after the deepest
layer needed when no objective reads the logits. Hooks live only inside those passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..engine.capture import LayerCapture, StopForward, forward_to
from ..engine.checks import check_layer_key
from ..engine.intercept import ReLUInterceptor, RuleBox
from ..engine.keys import LayerKey
from ..engine.layouts import Layout, LayoutTracker, to_nchw
from ..engine.outputs import logits_of
from ..errors import InputError, LayerError, ModelError, choices
from .redirect import REDIRECTED

__all__ = ["LayerReader", "Step"]

Preprocess = Callable[[torch.Tensor], torch.Tensor]


def _as_view(t: torch.Tensor, layout: Layout) -> torch.Tensor:
    """``(n, C, H, W)`` view of a layer output (flat ``(n, C)``: ``(n, C, 1, 1)``)."""
    return t[:, :, None, None] if layout.kind == "flat" else to_nchw(t, layout)


class Step:
    """What one forward pass read: a :class:`~saliency_widget.featviz.objectives.Readout`."""

    def __init__(self, reader: LayerReader, images: torch.Tensor, views: dict[LayerKey, torch.Tensor], logits: torch.Tensor | None) -> None:
        self.reader = reader
        self.images = images
        self._views = views
        self._logits = logits

    def layer(self, key: LayerKey) -> torch.Tensor:
        """The layer's ``(n, C, H, W)`` view."""
        return self._views[key]

    def logits(self) -> torch.Tensor:
        """The class scores ``(n, K)``."""
        if self._logits is None:  # internal invariant: the reader runs to the end when logits are used
            raise ModelError("the logits were not computed in this forward pass")
        return self._logits

    def class_index(self, k: int | str) -> int:
        """Class ``k`` as an index (names resolved with the reader's labels)."""
        return self.reader.class_index(k)

    def reference(self, key: LayerKey, image: torch.Tensor) -> torch.Tensor:
        """The layer's ``(1, C, H, W)`` view on a fixed image (computed once per run)."""
        return self.reader.reference(key, image)

    def rows(self, index: torch.Tensor | slice | int) -> Step:
        """The same readout restricted to some images (one objective's rows)."""
        idx = slice(index, index + 1) if isinstance(index, int) else index
        logits = None if self._logits is None else self._logits[idx]
        return Step(self.reader, self.images[idx], {k: v[idx] for k, v in self._views.items()}, logits)


class LayerReader:
    """Forward passes that expose the ``(n, C, H, W)`` views of ``keys`` (and the logits if needed).

    Parameters
    ----------
    model
        The network; run as it is (the caller holds eval mode), never modified.
    keys
        Layer executions to read.
    uses_logits
        Run each forward to the end and read the class scores.
    preprocess
        ``(n, 3, H, W)`` images in [0, 1] -> model input (differentiable).
    labels
        Class names, to resolve ``class_logit("name")``.
    redirect_relu
        Send the signal back through ReLUs with Lucid's redirected rule (:mod:`.redirect`).
    """

    def __init__(
        self,
        model: nn.Module,
        keys: Sequence[Any],
        uses_logits: bool,
        preprocess: Preprocess,
        labels: Sequence[str] | None,
        redirect_relu: bool = True,
    ) -> None:
        self.model = model
        self.keys = [check_layer_key(model, k) for k in dict.fromkeys(keys)]
        self.uses_logits = uses_logits
        self.preprocess = preprocess
        self.labels = list(labels) if labels is not None else None
        self.layouts: dict[LayerKey, Layout] = {}
        self.shapes: dict[LayerKey, tuple[int, int, int]] = {}
        self.num_classes: int | None = None
        self._stop: tuple[str, int] | None = None
        self.channels_last = False
        self.redirect_relu = bool(redirect_relu)
        self._refs: dict[tuple[LayerKey, int], torch.Tensor] = {}

    def probe(self, images: torch.Tensor) -> Step:
        """One tracked no-grad forward on ``images``: layouts, shapes, the class count, the deepest layer.

        Returns
        -------
        Step
            What that pass read (no grad), to try the objectives on before optimising.
        """
        tracker = LayoutTracker()
        names = sorted({k.name for k in self.keys})
        with torch.no_grad():
            x = self.preprocess(images)
            tracker.watch(x)
            cap = LayerCapture(self.model, names=names)
            with cap, tracker:
                out = self.model(x)
        try:
            self.num_classes = int(logits_of(out).shape[1])
        except ModelError:
            if self.uses_logits:
                raise
        order = {(r.name, r.call): i for i, r in enumerate(cap.records)}
        views = {}
        for key in self.keys:
            if (key.name, key.call) not in order:
                ran = sorted(r.call for r in cap.records if r.name == key.name)
                raise LayerError(
                    f"layer {str(key)!r} did not run in the forward pass"
                    + (f"; its calls are {choices(ran)}" if ran else " (it is not on the path of the input, or returns no tensor)")
                )
            rec = cap.records[order[(key.name, key.call)]]
            layout = tracker.layout_of(rec.tensor)
            if layout.kind not in ("NCHW", "NHWC", "tokens", "flat"):
                raise LayerError(
                    f"layer {str(key)!r} outputs shape {tuple(rec.tensor.shape)} whose layout is {layout.kind!r}; "
                    "feature visualization reads NCHW, NHWC, token or flat (N, C) layers"
                )
            self.layouts[key] = layout
            v = _as_view(rec.tensor, layout)
            views[key] = v
            self.shapes[key] = (int(v.shape[1]), int(v.shape[2]), int(v.shape[3]))
        if self.keys and not self.uses_logits:
            last = max(self.keys, key=lambda k: order[(k.name, k.call)])
            self._stop = (last.name, last.call)
        self.channels_last = self._channels_last_runs(x)
        return Step(self, images, views, logits_of(out) if self.uses_logits else None)

    def _channels_last_runs(self, x: torch.Tensor) -> bool:
        """Whether to hand the model channels-last inputs: about 2x faster convolutions on the CPU.

        Only for models with 2-D convolutions, and only if the model accepts them (a ``.view``
        on the input fails on channels-last strides); the values are the same either way.
        """
        if x.dim() != 4 or not any(isinstance(m, nn.Conv2d) for m in self.model.modules()):
            return False
        try:
            with torch.no_grad():
                self.model(x.contiguous(memory_format=torch.channels_last))
        except (RuntimeError, ValueError):
            return False
        return True

    def class_index(self, k: int | str) -> int:
        """Class ``k`` as an index in ``0..K-1``."""
        if isinstance(k, int):
            return k
        if self.labels is None or k not in self.labels:
            names = self.labels if self.labels is not None else [str(i) for i in range(self.num_classes or 0)]
            raise InputError(f"unknown class {k!r}; expected one of {choices(names)}" + ("" if self.labels else " (the model names no classes: use an index)"))
        return self.labels.index(k)

    def read(self, images: torch.Tensor, model_input: torch.Tensor) -> Step:
        """One forward pass of ``model_input`` (the transformed, preprocessed ``images``)."""
        if self.channels_last:
            model_input = model_input.contiguous(memory_format=torch.channels_last)
        cap = LayerCapture(self.model, names=sorted({k.name for k in self.keys}), stop_at=self._stop)
        out = None
        intercept = ReLUInterceptor(RuleBox(REDIRECTED)) if self.redirect_relu and torch.is_grad_enabled() else contextlib.nullcontext()
        with cap, intercept:
            try:
                out = self.model(model_input)
            except StopForward:
                pass
        recs = {(r.name, r.call): r for r in cap.records}
        views = {}
        for key in self.keys:
            rec = recs[(key.name, key.call)]
            t = rec.tensor
            if t._version != rec.version:  # changed in place later (an inplace ReLU): rerun up to it
                t = forward_to(self.model, model_input, key.name, key.call)
            views[key] = _as_view(t, self.layouts[key])
        logits = logits_of(out) if self.uses_logits else None
        return Step(self, images, views, logits)

    def reference(self, key: LayerKey, image: torch.Tensor) -> torch.Tensor:
        """The ``(1, C, H, W)`` view of ``key`` on ``image`` ``(1, 3, H, W)``, computed once per image."""
        ref = self._refs.get((key, id(image)))
        if ref is None:
            if tuple(image.shape[-2:]) != self._size:
                raise InputError(
                    f"the image to invert is {image.shape[-2]}x{image.shape[-1]} but the visualization is "
                    f"{self._size[0]}x{self._size[1]}; resize it or pass size={image.shape[-1]}"
                )
            with torch.no_grad():
                x = self.preprocess(image.to(self._device, self._dtype))
                ref = _as_view(forward_to(self.model, x, key.name, key.call), self.layouts[key]).detach()
            self._refs[(key, id(image))] = ref
        return ref

    def bind(self, size: tuple[int, int], device: torch.device, dtype: torch.dtype) -> None:
        """The run's image size, device and dtype (for reference images)."""
        self._size, self._device, self._dtype = size, device, dtype
