"""The recorded forward pass an :class:`~saliency_widget.engine.session.Explainer` explains.

A :class:`RecordedForward` runs the model once, in eval mode, with every ReLU node of the
graph it leaves hooked to apply a backward rule (:mod:`~saliency_widget.engine.relugraph`, when
asked), every module's output recorded by a :class:`~saliency_widget.engine.capture.LayerCapture` and each
output's layout followed by a :class:`~saliency_widget.engine.layouts.LayoutTracker`. It then
holds what that forward left: the records by :class:`~saliency_widget.engine.keys.LayerKey`,
their layouts, the logits and the autograd graph behind them. Hooks and modes exist only
inside the ``with`` blocks of that one forward; afterwards the model is exactly as it was.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ..errors import LayerError, choices
from .capture import LayerCapture, LayerInfo, LayerRecord, StopForward, forward_to, layer_infos
from .checks import check_layer_key, eval_mode, forward_error, gradients_disabled, model_input
from .intercept import ReLUInterceptor, RuleBox
from .keys import LayerKey
from .layouts import AMBIGUOUS, SPATIAL_LAYOUTS, Layout, LayoutTracker, to_nchw
from .outputs import logits_of
from .relugraph import GraphRules
from .rules import GRADIENT, ReLURule

__all__ = ["RecordedForward"]


class RecordedForward:
    """One forward pass of ``model`` on ``x``, run at construction and kept with its graph.

    Parameters
    ----------
    model
        A checked model (:func:`~saliency_widget.engine.checks.check_model`); run in eval
        mode, never modified.
    x
        The input copy ``(N, C, H, W)`` the forward runs on: a leaf with ``requires_grad``, on
        the model's device and in its dtype (:func:`~saliency_widget.engine.checks.prepare_inputs`).
    box
        Apply this box's rule at every ReLU at backward time (:class:`GraphRules`, or a
        :class:`ReLUInterceptor` when the graph may hide a ReLU); None leaves the ReLUs' own
        backward (only the plain gradient is then possible).
    lock
        The lock that serialises requests; held while an overwritten output is recomputed.
    record_layers
        Record every layer's output (ignored when ``stop_at`` is given).
    stop_at
        ``(layer, call)`` or a :class:`LayerKey`: record only that layer execution and stop
        the forward right after it (no logits).

    Attributes
    ----------
    model : nn.Module
        The model.
    x : torch.Tensor
        The input copy ``(N, C, H, W)``, with its graph.
    interceptor : GraphRules or ReLUInterceptor or None
        What applies the rules (which ReLUs and other activations the forward ran).
    partial : bool
        True after a ``stop_at`` forward.
    records : dict[LayerKey, LayerRecord]
        Each recorded layer execution, in forward order; ``records[k].tensor`` is ``(N, ...)``.
    layouts : dict[LayerKey, Layout]
        Each recorded output's layout, decided once from the tracked forward.
    logits : torch.Tensor
        The model output ``(N, K)`` with its graph; None after a partial forward.
    forward_ms : float
        Wall time of the recorded forward in milliseconds.
    no_grad : str or None
        Why no backward can run (the forward disabled gradients), or None.

    Raises
    ------
    LayerError
        ``stop_at`` names an unknown layer, or an execution that did not run.
    InputError
        The input is too small for the network (the message gives its shape and, when it can be
        known, the minimum side).
    """

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        box: RuleBox | None,
        lock: threading.RLock,
        *,
        record_layers: bool = True,
        stop_at: tuple[str, int] | LayerKey | None = None,
    ) -> None:
        self.model = model
        self.x = x
        self.box = box
        self._lock = lock
        t0 = time.perf_counter()
        stop: LayerKey | None = None
        if stop_at is not None:
            stop = check_layer_key(model, stop_at) if isinstance(stop_at, LayerKey) else check_layer_key(model, *stop_at)
        self.partial = stop is not None
        self.interceptor: ReLUInterceptor | GraphRules | None = None
        # The ReLUs run natively and the rules act through hooks on the graph's ReLU nodes
        # (no Python work per torch call of the forward); only when an in-place op on a view
        # may hide a ReLU from the graph does the forward run again under the interceptor.
        out, capture, tracker = self._run(stop, record_layers, None)
        if box is not None:
            rules = GraphRules(box, self._first, self._last)
            # every ReLU node behind the logits and behind each recorded output (a projection
            # may start at a layer whose branch the logits do not use)
            roots = [r.edge for r in capture.records if r.edge is not None] if capture is not None else []
            rules.cover(logits_of(out) if stop is None else None, *roots)
            self.interceptor = rules
            if rules.hidden:
                self.interceptor = ReLUInterceptor(box)
                out, capture, tracker = self._run(stop, record_layers, self.interceptor)
        self.forward_ms = (time.perf_counter() - t0) * 1e3
        self.records: dict[LayerKey, LayerRecord] = {}
        self.logits: torch.Tensor  # None after a partial forward (stop_at), which only projects
        if capture is not None:
            for rec in capture.records:
                self.records[rec.layer_key] = rec
        self.layouts: dict[LayerKey, Layout] = (
            {k: tracker.layout_of(r.tensor) for k, r in self.records.items()} if tracker is not None else {}
        )
        #: Why no backward can run (a ``@torch.no_grad()`` forward), in one line; None when one can.
        self.no_grad: str | None = None
        if stop is not None:
            self.logits = None  # type: ignore[assignment]
            self.record(stop)  # raises a LayerError naming the valid calls if it did not run
            return
        self.logits = logits_of(out)  # a tensor, .logits (Hugging Face), {"logits": ...} or (logits, ...)
        self.no_grad = gradients_disabled(self.logits, x)

    def _run(
        self, stop: LayerKey | None, record_layers: bool, interceptor: ReLUInterceptor | None
    ) -> tuple[Any, LayerCapture | None, LayoutTracker | None]:
        """One forward of the model on ``x``: its output (None after a partial one), capture and tracker."""
        model = self.model
        if stop is not None:  # partial forward: record only that layer and stop right after it
            capture: LayerCapture | None = LayerCapture(model, names=[stop.name], stop_at=(stop.name, stop.call), clone=True)
        else:
            capture = LayerCapture(model) if record_layers else None
        tracker = LayoutTracker() if capture is not None else None  # each layer's layout (NCHW, NHWC, tokens)
        out: Any = None
        with torch.enable_grad(), eval_mode(model):
            try:
                if capture is not None:
                    with capture:
                        out = self._forward(tracker, interceptor)
                else:
                    out = self._forward(None, interceptor)
            except StopForward:
                pass
            except RuntimeError as err:  # an input too small for the network: say so, with the shape
                size_error = forward_error(err, self.x, model)
                if size_error is None:
                    raise
                raise size_error from err
        return out, capture, tracker

    def _forward(self, tracker: LayoutTracker | None, interceptor: ReLUInterceptor | None) -> Any:
        # The model gets a non-leaf copy: a forward may modify its input in place (x.sub_(0.5)).
        inp = model_input(self.x)
        self._first = int(inp.grad_fn._sequence_nr()) if inp.grad_fn is not None else 0  # the forward's nodes come after
        # The layout tracker is the innermost mode: it sees the ReLU interceptor's outputs.
        try:
            with interceptor if interceptor is not None else contextlib.nullcontext():
                if tracker is None:
                    return self.model(inp)
                with tracker:
                    tracker.watch(inp)
                    return self.model(inp)
        finally:  # a node made after the forward: every node it made in this thread has a smaller number
            self._last = int(self.x.view_as(self.x).grad_fn._sequence_nr())  # type: ignore[union-attr]

    @contextlib.contextmanager
    def applying(self, output: Any, rule: ReLURule) -> Iterator[None]:
        """Inside: a backward from ``output`` (a tensor or edge of this forward) applies ``rule`` at every ReLU.

        Hooks the ReLU nodes behind ``output`` that the logits and the records did not reach,
        gives a rule with its own arithmetic the ReLUs' outputs, and on every exit path puts
        the plain gradient back (a backward outside the engine, through a record's tensor,
        gets autograd's own).
        """
        if self.box is None or rule.is_plain_gradient:
            yield
            return
        if isinstance(self.interceptor, GraphRules):
            self.interceptor.cover(output)
            self.interceptor.prepare(rule)
        self.box.rule = rule
        try:
            yield
        finally:
            self.box.rule = GRADIENT

    @property
    def layers(self) -> list[LayerInfo]:
        """Inspectable layer executions in forward order (modules with tensor outputs ≥ 2-D)."""
        return layer_infos(self.records.values(), lambda rec: self.layouts.get(rec.layer_key, AMBIGUOUS))

    def record(self, layer: str | LayerKey, call: int = 0) -> LayerRecord:
        """The recorded execution of ``layer``: its output tensor ``(N, ...)``, autograd edge and type.

        Parameters
        ----------
        layer
            Module name, ``"name#call"`` key or :class:`LayerKey`.
        call
            Execution index when ``layer`` names none.

        Returns
        -------
        LayerRecord
            The record; read its values with :meth:`activation`.

        Raises
        ------
        LayerError
            Unknown module name, or that execution did not run (the message lists the valid ones).
        """
        key = check_layer_key(self.model, layer, call)
        rec = self.records.get(key)
        if rec is None:
            calls = sorted(k.call for k in self.records if k.name == key.name)
            if not calls:
                raise LayerError(
                    f"layer {key.name!r} did not run (or returned no tensor) in the forward pass; "
                    f"layers that ran: {choices([i.key for i in self.layers])}"
                )
            raise LayerError(f"layer {key.name!r} ran {len(calls)} time(s); call must be one of {calls}, got {key.call!r}")
        return rec

    def layout(self, layer: str | LayerKey, call: int = 0) -> Layout:
        """The :class:`Layout` of ``layer``'s output; AMBIGUOUS when none was decided.

        Parameters and errors as :meth:`record`.
        """
        return self.layouts.get(self.record(layer, call).layer_key, AMBIGUOUS)

    def activation(self, layer: str | LayerKey, call: int = 0) -> torch.Tensor:
        """Output of ``layer`` at its ``call``-th execution, detached.

        Parameters
        ----------
        layer, call
            As :meth:`record`.

        Returns
        -------
        torch.Tensor
            ``(N, C, h, w)`` for the spatial layouts (NHWC and tokens outputs are viewed
            through :func:`~saliency_widget.engine.layouts.to_nchw`), ``(N, C)`` for a flat
            one, the output as returned for an ambiguous one. A value later overwritten by an
            in-place op is recomputed with a no-grad forward up to that layer (and kept).
        """
        rec = self.record(layer, call)
        val = rec.current_value()
        if val is None:
            with self._lock, torch.no_grad():
                rec.value = forward_to(self.model, model_input(self.x.detach()), rec.name, rec.call, clone=True)
            val = rec.value
        lay = self.layouts.get(rec.layer_key, AMBIGUOUS)
        return to_nchw(val, lay).contiguous() if lay.kind in ("NHWC", "tokens") else val

    def spatial_activation(self, layer: str | LayerKey, call: int = 0) -> tuple[LayerRecord, Layout, torch.Tensor]:
        """Record, layout and activation of a layer whose channel and spatial axes are known.

        Parameters
        ----------
        layer, call
            As :meth:`record`.

        Returns
        -------
        tuple
            ``(record, layout, activation)``, the activation ``(N, C, h, w)`` or ``(N, C)`` as
            :meth:`activation` returns it.

        Raises
        ------
        LayerError
            As :meth:`record`, or the layer's layout is ambiguous (the message lists the
            layers with a spatial layout).
        """
        rec = self.record(layer, call)
        lay = self.layouts.get(rec.layer_key, AMBIGUOUS)
        if lay.kind == "ambiguous":
            raise LayerError(
                f"layer {rec.key!r} outputs shape {tuple(rec.tensor.shape)} whose channel and spatial axes are "
                "ambiguous (not followed from the input's (N, C, H, W), e.g. attention maps or window partitions); "
                f"choose a layer with layout NCHW, NHWC or tokens: "
                f"{choices([i.key for i in self.layers if i.layout in SPATIAL_LAYOUTS])}"
            )
        return rec, lay, self.activation(rec.layer_key)
