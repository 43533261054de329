"""The Explainer: one recorded forward pass, many maps.

An :class:`Explainer` runs the model once on the inputs (a
:class:`~saliency_widget.engine.recording.RecordedForward`: every ReLU routed through the
rule-switching function of :mod:`~saliency_widget.engine.intercept`, every module's output
recorded) and keeps the autograd graph, so switching method, target class, layer or filter
only costs a backward pass, which goes through the Explainer's checks. Hooks and the
interception mode exist only during that one forward; afterwards the model is exactly as it was.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import LayerError, ModelError
from .capture import LayerInfo, LayerRecord
from .checks import check_channel_position, check_device, check_model, prepare_inputs, resolve_targets
from .degenerate import check_degenerate
from .intercept import ReLUInterceptor, RuleBox
from .keys import LayerKey
from .layouts import Layout, from_nchw
from .progress import Partial, previewing
from .receptive import receptive_field
from .recording import RecordedForward
from .registry import get_method
from .relugraph import GraphRules
from .rules import GRADIENT, ReLURule, get_rule
from .seeds import activation_seed, argmax_positions, logit_seed

__all__ = ["Explainer", "LayerInfo"]


class Explainer:
    """Holds a model, inputs and one recorded forward pass, and answers map requests.

    Parameters
    ----------
    model
        A PyTorch ``nn.Module`` classifier returning logits of shape ``(N, K)``. It is run in
        eval mode and never modified; its device is used.
    inputs
        Float tensor of shape ``(N, C, H, W)``, already preprocessed for the model.
    device
        Must match the model's device if given (the model is never moved).
    record_layers
        Record every layer's output (needed by layer methods, projections and the widget).
    intercept
        Route ReLUs through the rule mechanism (needed by every rule but the plain gradient).
    stop_at
        ``(layer, call)`` or a :class:`~saliency_widget.engine.keys.LayerKey`: run the forward
        only up to that layer execution (projections).
    retain_graph
        Keep the recorded graph after each backward (default) so that many maps share one
        forward. ``False`` frees it during the first backward to the input: faster for a
        single map, and any further backward raises :class:`ModelError`.

    Notes
    -----
    The recorded forward is a snapshot: if the model's weights change afterwards, create a
    new Explainer. Thread-safe: requests are serialised by a lock. Any number of Explainers
    (and explorers) may share one model object, in one thread or many, and each gives exactly
    what it would give alone: see :mod:`~saliency_widget.engine.sharing`.

    Method authors (see :class:`~saliency_widget.engine.methods.Method`) use the public
    surface only: :attr:`model`, :attr:`inputs`, :attr:`logits`, :meth:`activation`,
    :meth:`record`, :meth:`target_seed`, :meth:`backward_logits`, :meth:`backward_to` and
    :meth:`layer_gradient`. Every backward goes through the same checks (spent graph,
    weights changed in place, ReLU rules on a model without ReLUs).

    Examples
    --------
    >>> ex = Explainer(model, x)                       # doctest: +SKIP
    >>> g = ex.saliency(method="guided_backprop")      # (N, C, H, W)
    >>> p = ex.project("features.8", channel=3)        # Zeiler-Fergus projection
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        device: str | torch.device | None = None,
        *,
        record_layers: bool = True,
        intercept: bool = True,
        stop_at: tuple[str, int] | LayerKey | None = None,
        retain_graph: bool = True,
    ) -> None:
        # A compiled model is explained through its original module (same weights) from here on.
        self.model = model = check_model(model)
        # One-shot callers (``saliency()``) free the graph during their single backward: keeping
        # it costs ~30 % more time on big CPU batches (no buffer reuse), measured on resnet50.
        self._retain = bool(retain_graph)
        self._spent = False
        dev = check_device(device)
        x, self._orig_device, self._orig_dtype = prepare_inputs(inputs, model, dev)
        self._lock = threading.RLock()
        self._rf_cache: dict[tuple[LayerKey, int, int], tuple[int, int, int, int]] = {}
        self._rec = RecordedForward(
            model, x, RuleBox() if intercept else None, self._lock, record_layers=record_layers, stop_at=stop_at
        )
        self.forward_ms = self._rec.forward_ms

    # The recorded forward owns these; read through here by the backward checks (and tests).
    @property
    def _interceptor(self) -> GraphRules | ReLUInterceptor | None:
        return self._rec.interceptor

    @property
    def _logits(self) -> torch.Tensor:
        return self._rec.logits

    @property
    def _no_grad(self) -> str | None:
        return self._rec.no_grad

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        """Device the maps are computed on (the model's)."""
        return self._rec.x.device

    @property
    def inputs(self) -> torch.Tensor:
        """The Explainer's own copy of the inputs, ``(N, C, H, W)``, detached.

        On the model's device and in its dtype (the maps are computed there); the user's
        tensor may have been elsewhere.
        """
        return self._rec.x.detach()

    @property
    def logits(self) -> torch.Tensor:
        """Model output ``(N, K)``, detached."""
        return self._logits.detach()

    @property
    def probabilities(self) -> torch.Tensor:
        """Softmax of the logits, ``(N, K)``."""
        return torch.softmax(self._logits.detach().double(), dim=1).to(self._logits.dtype)

    @property
    def num_classes(self) -> int:
        """K, the number of classes (logits per sample)."""
        return int(self._logits.shape[1])

    def unavailable(self, method: str) -> str | None:
        """Why ``method`` cannot run on this recorded forward, in one line; None when it can.

        A method that changes the backward pass at ReLUs (DeconvNet, Guided Backprop, Guided
        Grad-CAM) means nothing for a model that ran no ReLU (GELU / SiLU networks: ViT,
        ConvNeXt, EfficientNet); on a model whose forward disables gradients only methods
        declaring ``needs_gradients = False`` (occlusion) run; the other methods always run.
        """
        m = get_method(method)
        if self._no_grad is not None and m.needs_gradients:
            return self._no_grad
        if not m.needs_relu_rules:
            return None
        if self._interceptor is None:
            return f"{m.label} is unavailable: this Explainer was created with intercept=False"
        if self._interceptor.relu_calls == 0 and not self._rec.partial:
            seen = ", ".join(sorted(self._interceptor.other_activations)) or "no activation it knows"
            return f"{m.label} is unavailable: it changes the backward pass at ReLUs, and this model has no ReLU (it uses {seen})"
        return None

    @property
    def layers(self) -> list[LayerInfo]:
        """Inspectable layer executions in forward order (modules with tensor outputs ≥ 2-D)."""
        return self._rec.layers

    # ------------------------------------------------------------------ maps
    def saliency(self, target: Any = None, method: str = "gradient", partial: Partial | None = None, **options: Any) -> torch.Tensor:
        """Attribution map of the target class for each sample.

        Parameters
        ----------
        target
            None (predicted class), int, or a sequence / 1-D tensor of N class indices.
        method
            A registered method name, see :func:`available_methods`.
        partial
            Optional ``partial(fraction, maps)``: the batched methods (occlusion coarse to fine,
            SmoothGrad and Integrated Gradients as running averages) call it after each batch
            but the last with the ``(N, C, H, W)`` map of the work done so far (on the inputs'
            device and dtype) and the ``fraction`` done; the return value is the final map,
            equal to the one without ``partial`` (see :func:`~.progress.previewing`).
        **options
            Method-specific options.

        Returns
        -------
        torch.Tensor
            Raw signed map, shape ``(N, C, H, W)``, on the inputs' device and dtype.
        """
        m = get_method(method)
        watch = None
        if partial is not None:
            cb = partial

            def watch(fraction: float, maps: torch.Tensor) -> None:
                cb(fraction, maps.detach().to(device=self._orig_device, dtype=self._orig_dtype))

        with self._lock, previewing(watch) if partial is not None else contextlib.nullcontext():  # else: a caller's previewing() holds
            targets = resolve_targets(target, self._logits)
            out = m.compute(self, targets, **options)
        self._warn_degenerate(out, method)
        return out.to(device=self._orig_device, dtype=self._orig_dtype)

    def target_seed(self, targets: torch.Tensor) -> torch.Tensor:
        """One-hot backward seed on the target logits.

        Parameters
        ----------
        targets
            ``(N,)`` class indices (as :meth:`saliency` passes them to a method).

        Returns
        -------
        torch.Tensor
            ``(N, K)`` like :attr:`logits`: 1 at ``[i, targets[i]]``, 0 elsewhere.
        """
        if self._logits is None:
            raise ModelError("this Explainer ran a partial forward (stop_at=...) and has no logits; it can only project")
        return logit_seed(self._logits, targets)

    def backward_logits(self, targets: torch.Tensor, rule: ReLURule) -> torch.Tensor:
        """d(logit[target]) / d(input) with ``rule`` at every ReLU.

        Parameters
        ----------
        targets
            ``(N,)`` class indices.
        rule
            The ReLU rule of the backward pass.

        Returns
        -------
        torch.Tensor
            ``(N, C, H, W)`` on the model's device, detached.
        """
        return self.backward_to(self._logits, self.target_seed(targets), rule)

    def backward_to(self, output: Any, grad_output: torch.Tensor, rule: ReLURule = GRADIENT) -> torch.Tensor:
        """Send ``grad_output`` back from ``output`` to the inputs, with ``rule`` at every ReLU.

        Parameters
        ----------
        output
            A tensor of the recorded forward (e.g. the logits) or a layer's autograd edge
            (:attr:`LayerRecord.edge <saliency_widget.engine.capture.LayerRecord.edge>`).
        grad_output
            The seed, same shape as ``output``.
        rule
            The ReLU rule of the backward pass.

        Returns
        -------
        torch.Tensor
            ``(N, C, H, W)`` like :attr:`inputs`, on the model's device, detached; zeros
            where ``output`` does not depend on the inputs.

        Raises
        ------
        ModelError
            The graph was freed (``retain_graph=False``) or invalidated by an in-place change
            of the weights, or ``rule`` needs ReLUs the model does not have.
        """
        g = self._grad(output, self._rec.x, grad_output, rule, keep_graph=False)
        if g is None:  # the output does not depend on the input
            g = torch.zeros_like(self._rec.x)
        return g.detach()

    def layer_gradient(
        self, layer: str | LayerKey, targets: torch.Tensor, rule: ReLURule = GRADIENT, call: int = 0
    ) -> torch.Tensor:
        """d(logit[target]) / d(layer output): the gradient Grad-CAM weighs activations with.

        The backward stops at the layer and always keeps the graph (it is partial), so a
        method may follow it with one full backward (:meth:`backward_logits`).

        Parameters
        ----------
        layer
            Module name, ``"name#call"`` key or :class:`LayerKey`.
        targets
            ``(N,)`` class indices.
        rule
            ReLU rule between the logits and the layer (Grad-CAM: the plain gradient).
        call
            Execution index when ``layer`` names none.

        Returns
        -------
        torch.Tensor
            Same shape as the layer's output, e.g. ``(N, K, h, w)``, detached.

        Raises
        ------
        LayerError
            The layer did not run, or its output or the logits do not depend on it through autograd.
        ModelError
            As :meth:`backward_to`.
        """
        rec = self.record(layer, call)
        if self._no_grad is not None:
            raise ModelError(self._no_grad)
        if rec.edge is None:
            raise LayerError(f"layer {rec.key!r} does not depend on the input through autograd; choose another layer")
        g = self._grad(self._logits, rec.edge, self.target_seed(targets), rule, keep_graph=True)
        if g is None:
            raise LayerError(f"the logits do not depend on layer {rec.key!r}; choose a layer on the path to the output")
        return g.detach()

    def layer_gradients(
        self, layers: Sequence[str | LayerKey], targets: torch.Tensor, rule: ReLURule = GRADIENT
    ) -> list[torch.Tensor | None]:
        """d(logit[target]) / d(output) of several layers, in one partial backward pass.

        Parameters
        ----------
        layers
            Module names, ``"name#call"`` keys or :class:`LayerKey` s.
        targets
            ``(N,)`` class indices.
        rule
            ReLU rule between the logits and the layers.

        Returns
        -------
        list
            Per layer, a tensor shaped like its output, detached; None for a layer the logits
            do not depend on through autograd.
        """
        recs = [self.record(layer) for layer in layers]
        wrt = [r.edge for r in recs if r.edge is not None]
        found = iter(self._grad(self._logits, wrt, self.target_seed(targets), rule, keep_graph=True) if wrt else ())
        out: list[torch.Tensor | None] = []
        for r in recs:
            g = next(found) if r.edge is not None else None
            out.append(None if g is None else g.detach())
        return out

    def _grad(self, output: Any, wrt: Any, grad_output: torch.Tensor, rule: ReLURule, *, keep_graph: bool) -> Any:
        """The one checked ``torch.autograd.grad`` every map goes through.

        ``wrt`` is one tensor or edge (returns its gradient, None when unused) or a list of
        them (returns a tuple).
        """
        if self._no_grad is not None:  # a @torch.no_grad() forward recorded no graph
            raise ModelError(self._no_grad)
        self._check_rule(rule)
        retain = keep_graph or self._retain
        with self._lock:
            if self._spent:
                raise ModelError(
                    "this Explainer was created with retain_graph=False and its recorded graph was freed by "
                    "the first map; create a new Explainer, or pass retain_graph=True to compute several maps"
                )
            try:
                self._spent = not retain
                with self._rec.applying(output, rule):  # the ReLUs behind output apply rule, until it ends
                    grads = torch.autograd.grad(output, wrt, grad_output, retain_graph=retain, allow_unused=True)
            except RuntimeError as err:
                if "modified by an inplace operation" in str(err) or "backward through the graph" in str(err):
                    raise ModelError(
                        "the recorded forward pass is no longer valid (the model's parameters were changed "
                        f"in place after the Explainer was created); create a new Explainer. ({err})"
                    ) from err
                raise
        return grads if isinstance(wrt, list) else grads[0]

    def _check_rule(self, rule: ReLURule) -> None:
        if rule.is_plain_gradient:
            return
        if self._interceptor is None:
            raise ModelError("this Explainer was created with intercept=False and can only compute gradients")
        # (A partial forward may legitimately stop before the first ReLU.)
        self._interceptor.check_rule(rule, type(self.model).__name__, ran_to_end=not self._rec.partial)

    def _warn_degenerate(self, out: torch.Tensor, what: str) -> None:
        check_degenerate(out, what)  # on a GPU without a host sync (the warning may come a call later)

    # ------------------------------------------------------------------ layers
    def record(self, layer: str | LayerKey, call: int = 0) -> LayerRecord:
        """The recorded execution of ``layer``: its output tensor, autograd edge and type.

        Parameters
        ----------
        layer
            Module name, ``"name#call"`` key or :class:`LayerKey`.
        call
            Execution index when ``layer`` names none.

        Returns
        -------
        LayerRecord
            ``record(...).tensor`` is ``(N, ...)``; read values with :meth:`activation`, which
            also handles outputs later overwritten in place.

        Raises
        ------
        LayerError
            Unknown module name, or that execution did not run (the message lists the valid ones).
        """
        return self._rec.record(layer, call)

    def layout(self, layer: str | LayerKey, call: int = 0) -> Layout:
        """The :class:`~saliency_widget.engine.layouts.Layout` of ``layer``'s output (NCHW, NHWC, tokens, flat, ambiguous)."""
        return self._rec.layout(layer, call)

    def activation(self, layer: str | LayerKey, call: int = 0) -> torch.Tensor:
        """Output of ``layer`` at its ``call``-th execution, detached.

        ``(N, C, h, w)`` for the spatial layouts (an NHWC or tokens output is viewed through
        its layout, see :func:`~saliency_widget.engine.layouts.to_nchw`), ``(N, C)`` for a
        flat one, the output as returned for an ambiguous one. A value later overwritten by
        an in-place op (e.g. a conv output followed by ``ReLU(inplace=True)``) is recomputed
        with a no-grad forward up to that layer.
        """
        return self._rec.activation(layer, call)

    def strongest(self, layer: str | LayerKey, channel: int, call: int = 0) -> list[tuple[int, int]]:
        """Per sample, the ``(y, x)`` of the largest activation of ``channel`` in ``layer``."""
        _, _, act = self._rec.spatial_activation(layer, call)
        ch, _ = check_channel_position(act, str(layer), channel, None)
        if act.dim() == 2:
            return [(0, 0)] * act.shape[0]
        return [tuple(p) for p in argmax_positions(act[:, ch]).tolist()]  # type: ignore[misc]

    def project(
        self,
        layer: str | LayerKey,
        channel: int | Sequence[int] | torch.Tensor,
        position: Any = None,
        call: int = 0,
        method: str = "deconvnet",
    ) -> torch.Tensor:
        """Zeiler-Fergus projection of one activation back to pixel space.

        Every activation of ``layer`` except the one at ``(channel, y, x)`` is set to zero; that
        one keeps its forward value, and the result is sent back to the input with the
        ReLU rule of ``method``.

        Parameters
        ----------
        layer
            Dotted module name (or ``"name#call"`` key).
        channel
            Channel (filter) index, or a sequence of N indices (one per sample).
        position
            ``(y, x)`` in the layer's feature map, an ``(N, 2)`` array, or None for the
            strongest activation of the channel in each sample.
        call
            Which execution of a module that runs several times per forward.
        method
            ``"deconvnet"`` (the paper), ``"gradient"`` or ``"guided_backprop"``.

        Returns
        -------
        torch.Tensor
            Shape ``(N, C, H, W)`` like the inputs, on the inputs' device and dtype.
        """
        rule = get_rule(method) if isinstance(method, str) else method
        rec, lay, act = self._rec.spatial_activation(layer, call)
        ch, pos = check_channel_position(act, rec.name, channel, position)
        if self._no_grad is not None:
            raise ModelError(self._no_grad)
        if rec.edge is None:
            raise ModelError(f"layer {rec.key!r} output does not depend on the input through autograd; it cannot be projected")
        seed = activation_seed(act, ch, pos)
        if lay.kind in ("NHWC", "tokens"):
            seed = from_nchw(seed, lay)  # the seed in the layer's own layout (prefix tokens get zero)
        out = self.backward_to(rec.edge, seed, rule)
        self._warn_degenerate(out, f"projection of {rec.key}")
        return out.to(device=self._orig_device, dtype=self._orig_dtype)

    def receptive_field(self, layer: str | LayerKey, y: int, x: int, call: int = 0) -> tuple[int, int, int, int]:
        """Input-pixel box ``(y0, x0, y1, x1)`` (half-open) that the unit at ``(y, x)`` of ``layer`` sees.

        Computed structurally (ReLUs pass, max-pools spread over their window, all weights
        one), so it is the full theoretical receptive field clipped to the image; see
        :mod:`saliency_widget.engine.receptive`.
        """
        rec, lay, act = self._rec.spatial_activation(layer, call)
        check_channel_position(act, rec.name, 0, (y, x))
        cache_key = (rec.layer_key, int(y), int(x))
        if cache_key not in self._rf_cache:
            inp = self._rec.x
            with self._lock:
                self._rf_cache[cache_key] = receptive_field(
                    self.model, tuple(inp.shape[1:]), rec.name, int(y), int(x), rec.call, inp.dtype, self.device, layout=lay
                )
        return self._rf_cache[cache_key]
