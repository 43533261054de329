"""The Explainer: one recorded forward pass, many maps.

An :class:`Explainer` runs the model once on the inputs, with every ReLU routed through the
rule-switching function of :mod:`~saliency_widget.engine.intercept` and every module's output
recorded. The autograd graph is kept, so switching method, target class, layer or filter
only costs a backward pass. Hooks and the interception mode exist only during that one
forward; afterwards the model is exactly as it was.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import (
    DegenerateMapWarning,
    InputError,
    LayerError,
    ModelError,
    NonReLUActivationWarning,
    choices,
    warn_once,
)
from .guard import (
    LayerCapture,
    forward_to,
    LayerRecord,
    StopForward,
    check_layer_name,
    check_model,
    eval_mode,
    prepare_inputs,
    resolve_targets,
)
from .intercept import ReceptiveFieldMode, ReLUInterceptor, RuleBox
from .layouts import AMBIGUOUS, Layout, LayoutTracker, from_nchw, nchw_shape, to_nchw  # [models]
from .methods import get_method
from .outputs import logits_of  # [models]
from .rules import DECONVNET, ReLURule, get_rule

__all__ = ["Explainer", "LayerInfo"]


@dataclass(frozen=True)
class LayerInfo:
    """An inspectable layer execution, for building menus and sliders.

    Attributes
    ----------
    name
        Dotted module name as in ``model.named_modules()``.
    call
        Which execution of the module (0 = first); reused modules have several.
    shape
        ``(C, H, W)`` for the spatial layouts (``"NCHW"``, ``"NHWC"``, ``"tokens"``), else the
        output shape without the batch dimension (``(C,)`` for ``"flat"``).
    type
        Module class name, e.g. ``"ReLU"``.
    layout
        ``"NCHW"``, ``"NHWC"``, ``"tokens"``, ``"flat"`` or ``"ambiguous"``, see
        :mod:`~saliency_widget.engine.layouts`.
    prefix_tokens
        Number of prefix tokens ``P`` (class, distillation, registers) of a ``"tokens"`` layer, else 0.
    raw_shape
        The output shape as the module returns it, without the batch dimension.
    """

    name: str
    call: int
    shape: tuple[int, ...]
    type: str
    # [models] layer layouts (defaults keep the positional constructor)
    layout: str = "NCHW"
    prefix_tokens: int = 0
    raw_shape: tuple[int, ...] = ()

    @classmethod
    def of(cls, rec: LayerRecord, layout: Layout) -> "LayerInfo":
        """The entry of one recorded execution whose output has ``layout``."""
        shape = tuple(rec.tensor.shape)
        return cls(rec.name, rec.call, nchw_shape(shape, layout), rec.type, layout.kind, layout.prefix, shape[1:])

    @property
    def key(self) -> str:
        """``name`` for the first call, ``"name#call"`` for later ones."""
        return self.name if self.call == 0 else f"{self.name}#{self.call}"

    @property
    def channels(self) -> int:
        return self.shape[0]


def parse_layer_key(key: str) -> tuple[str, int]:
    """Split ``"layer1.0.relu#1"`` into ``("layer1.0.relu", 1)``."""
    name, sep, call = key.rpartition("#")
    if sep and call.isdigit():
        return name, int(call)
    return key, 0


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
        Route ReLUs through the rule mechanism (needed by every method except ``"gradient"``).
    stop_at
        ``(layer, call)``: run the forward only up to that layer execution (projections).
    retain_graph
        Keep the recorded graph after each backward (default) so that many maps share one
        forward. ``False`` frees it during the first backward: faster for a single map, and
        any further backward raises :class:`ModelError`.

    Notes
    -----
    The recorded forward is a snapshot: if the model's weights change afterwards, create a
    new Explainer. Thread-safe: requests are serialised by a lock.

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
        stop_at: tuple[str, int] | None = None,
        retain_graph: bool = True,
    ) -> None:
        self.model = model = check_model(model)  # [models] a compiled model's original module from here on
        # One-shot callers (``saliency()``) free the graph during their single backward: keeping
        # it costs ~30 % more time on big CPU batches (no buffer reuse), measured on resnet50.
        self._retain = bool(retain_graph)
        self._spent = False
        dev = torch.device(device) if device is not None else None
        self._x, self._orig_device, self._orig_dtype = prepare_inputs(inputs, model, dev)
        self._box = RuleBox()
        self._lock = threading.RLock()
        self._intercept = intercept
        self._rf_cache: dict[tuple[str, int, int, int], tuple[int, int, int, int]] = {}
        t0 = time.perf_counter()
        self._interceptor = ReLUInterceptor(self._box) if intercept else None
        self._partial = stop_at is not None
        if stop_at is not None:
            # Partial forward: record only that layer and stop right after it.
            check_layer_name(model, stop_at[0])
            capture: LayerCapture | None = LayerCapture(model, names=[stop_at[0]], stop_at=stop_at, clone=True)
        else:
            capture = LayerCapture(model) if record_layers else None
        tracker = LayoutTracker() if capture is not None else None  # [models] layer layouts
        out: Any = None
        with torch.enable_grad(), eval_mode(model):
            try:
                if capture is not None:
                    with capture:
                        out = self._forward(tracker)
                else:
                    out = self._forward()
            except StopForward:
                pass
        self.forward_ms = (time.perf_counter() - t0) * 1e3
        self._records: dict[tuple[str, int], LayerRecord] = {}
        if capture is not None:
            for rec in capture.records:
                self._records[(rec.name, rec.call)] = rec
        # [models] each recorded output's layout, decided once from the tracked forward
        self._layouts: dict[tuple[str, int], Layout] = (
            {k: tracker.layout_of(r.tensor) for k, r in self._records.items()} if tracker is not None else {}
        )
        if stop_at is not None:
            self._logits: torch.Tensor = None  # type: ignore[assignment]  # [models] typed: logits_of returns Tensor
            if stop_at not in self._records:
                self._record(*stop_at)  # raises a LayerError naming the valid calls
            return
        self._logits = logits_of(out)  # [models] output adapter: tensor, .logits, {"logits"}, (logits, ...)

    def _forward(self, tracker: LayoutTracker | None = None) -> Any:
        # [models] the layout tracker is the innermost mode: it sees the ReLU interceptor's outputs
        with self._interceptor if self._interceptor is not None else contextlib.nullcontext():
            if tracker is None:
                return self.model(self._x)
            with tracker:
                tracker.watch(self._x)
                return self.model(self._x)

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        """Device the maps are computed on (the model's)."""
        return self._x.device

    @property
    def inputs(self) -> torch.Tensor:
        """The (private copy of the) inputs, ``(N, C, H, W)``, detached."""
        return self._x.detach()

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
        return int(self._logits.shape[1])

    @property
    def layers(self) -> list[LayerInfo]:
        """Inspectable layer executions in forward order (modules with tensor outputs ≥ 2-D)."""
        return [LayerInfo.of(r, self._layouts.get(k, AMBIGUOUS)) for k, r in self._records.items() if r.tensor.dim() >= 2]

    # ------------------------------------------------------------------ maps
    def saliency(self, target: Any = None, method: str = "gradient", **options: Any) -> torch.Tensor:
        """Attribution map of the target class for each sample.

        Parameters
        ----------
        target
            None (predicted class), int, or a sequence / 1-D tensor of N class indices.
        method
            A registered method name, see :func:`available_methods`.
        **options
            Method-specific options.

        Returns
        -------
        torch.Tensor
            Raw signed map, shape ``(N, C, H, W)``, on the inputs' device and dtype.
        """
        m = get_method(method)
        with self._lock:
            targets = resolve_targets(target, self._logits)
            out = m.compute(self, targets, **options)
        self._warn_degenerate(out, method)
        return out.to(device=self._orig_device, dtype=self._orig_dtype)

    def backward_logits(self, targets: torch.Tensor, rule: ReLURule) -> torch.Tensor:
        """d(logit[target]) / d(input) with ``rule`` at every ReLU; ``(N, C, H, W)`` on the model's device."""
        seed = torch.zeros_like(self._logits)
        seed.scatter_(1, targets.view(-1, 1).to(seed.device), 1.0)
        return self._backward(self._logits, seed, rule)

    def _backward(self, output: Any, grad_output: torch.Tensor, rule: ReLURule) -> torch.Tensor:
        self._check_rule(rule)
        with self._lock:
            if self._spent:
                raise ModelError(
                    "this Explainer was created with retain_graph=False and its recorded graph was freed by "
                    "the first map; create a new Explainer, or pass retain_graph=True to compute several maps"
                )
            self._box.rule = rule
            try:
                self._spent = not self._retain
                (g,) = torch.autograd.grad(output, self._x, grad_output, retain_graph=self._retain, allow_unused=True)
            except RuntimeError as err:
                if "modified by an inplace operation" in str(err) or "backward through the graph" in str(err):
                    raise ModelError(
                        "the recorded forward pass is no longer valid (the model's parameters were changed "
                        f"in place after the Explainer was created); create a new Explainer. ({err})"
                    ) from err
                raise
        if g is None:  # the output does not depend on the input
            g = torch.zeros_like(self._x)
        return g.detach()

    def _check_rule(self, rule: ReLURule) -> None:
        if rule.name == "gradient":
            return
        if self._interceptor is None:
            raise ModelError("this Explainer was created with intercept=False and can only compute gradients")
        if self._interceptor.relu_calls == 0 and not self._partial:
            # (A partial forward may legitimately stop before the first ReLU.)
            raise ModelError(
                f"{rule.name!r} changes the backward pass at ReLUs, but the model ({type(self.model).__name__}) "
                f"ran no ReLU on this input (other activations seen: "
                f"{choices(sorted(self._interceptor.other_activations)) or 'none'}); "
                "use method='gradient' or a model with ReLU activations"
            )
        others = sorted(self._interceptor.other_activations)
        if others:
            warn_once(
                ("non-relu", rule.name, type(self.model).__name__, tuple(others)),
                f"{rule.name}: the model also uses {', '.join(others)}, for which {rule.name} is not defined; "
                "those activations kept their plain gradient (only the ReLUs use the rule)",
                NonReLUActivationWarning,
            )

    def _warn_degenerate(self, out: torch.Tensor, what: str) -> None:
        if not bool(torch.isfinite(out).all()):
            warn_once(("nonfinite", what), f"{what}: the map contains NaN or Inf values", DegenerateMapWarning)
        elif not bool(out.any()):
            warn_once(("allzero", what), f"{what}: the map is all zeros", DegenerateMapWarning)

    # ------------------------------------------------------------------ layers
    def _record(self, layer: str, call: int = 0) -> LayerRecord:
        if isinstance(layer, str) and "#" in layer and call == 0:
            layer, call = parse_layer_key(layer)
        check_layer_name(self.model, layer)
        rec = self._records.get((layer, call))
        if rec is None:
            calls = sorted(c for (n, c) in self._records if n == layer)
            if not calls:
                raise LayerError(
                    f"layer {layer!r} did not run (or returned no tensor) in the forward pass; "
                    f"layers that ran: {choices([i.key for i in self.layers])}"
                )
            raise LayerError(f"layer {layer!r} ran {len(calls)} time(s); call must be one of {calls}, got {call!r}")
        return rec

    def layout(self, layer: str, call: int = 0) -> Layout:
        """The :class:`~saliency_widget.engine.layouts.Layout` of ``layer``'s output at its ``call``-th execution."""
        rec = self._record(layer, call)
        return self._layouts.get((rec.name, rec.call), AMBIGUOUS)

    def activation(self, layer: str, call: int = 0) -> torch.Tensor:
        """Output of ``layer`` at its ``call``-th execution, detached.

        ``(N, C, h, w)`` for the spatial layouts (an NHWC or tokens output is viewed through
        its layout, see :func:`~saliency_widget.engine.layouts.to_nchw`), ``(N, C)`` for a
        flat one, the output as returned for an ambiguous one. A value later overwritten by
        an in-place op (e.g. a conv output followed by ``ReLU(inplace=True)``) is recomputed
        with a no-grad forward up to that layer.
        """
        rec = self._record(layer, call)
        val = rec.current_value()
        if val is None:
            with self._lock:
                rec.value = _recompute_output(self.model, self._x.detach(), rec.name, rec.call)
            val = rec.value
        lay = self._layouts.get((rec.name, rec.call), AMBIGUOUS)  # [models] read through the layout
        return to_nchw(val, lay).contiguous() if lay.kind in ("NHWC", "tokens") else val

    def _spatial_activation(self, layer: str, call: int = 0) -> tuple[LayerRecord, Layout, torch.Tensor]:
        """[models] Record, layout and ``(N, C, h, w)`` / ``(N, C)`` activation; an ambiguous layer is refused."""
        rec = self._record(layer, call)
        lay = self._layouts.get((rec.name, rec.call), AMBIGUOUS)
        if lay.kind == "ambiguous":
            raise LayerError(
                f"layer {rec.key!r} outputs shape {tuple(rec.tensor.shape)} whose channel and spatial axes are "
                "ambiguous (not followed from the input's (N, C, H, W), e.g. attention maps or window partitions); "
                f"choose a layer with layout NCHW, NHWC or tokens: "
                f"{choices([i.key for i in self.layers if i.layout in ('NCHW', 'NHWC', 'tokens')])}"
            )
        return rec, lay, self.activation(rec.name, rec.call)

    def _check_channel_position(
        self, act: torch.Tensor, layer: str, channel: Any, position: Any
    ) -> tuple[Any, torch.Tensor | None]:
        if act.dim() not in (2, 4):
            raise LayerError(
                f"layer {layer!r} outputs shape {tuple(act.shape)}; projections need (N, C, H, W) or (N, C) outputs"
            )
        c_count = act.shape[1]
        if isinstance(channel, (torch.Tensor, list, tuple)):
            # one channel per sample (used to project many winners in one batch)
            ch = torch.as_tensor(channel)
            if ch.shape != (act.shape[0],) or ch.is_floating_point() or bool(((ch < 0) | (ch >= c_count)).any()):
                raise InputError(
                    f"per-sample channels must be N={act.shape[0]} ints in 0..{c_count - 1}, got {channel!r}"
                )
            channel = ch.to(torch.long)
        elif isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < c_count:
            raise InputError(f"channel {channel!r} is out of range for layer {layer!r}: valid channels are 0..{c_count - 1}")
        if act.dim() == 2:
            if position is not None:
                raise InputError(f"layer {layer!r} has no spatial dimensions (shape {tuple(act.shape)}); use position=None")
            return channel, None
        n, _, h, w = act.shape
        if position is None:
            return channel, None
        pos = torch.as_tensor(position)
        if pos.is_floating_point() or pos.shape not in ((2,), (n, 2)):
            raise InputError(f"position must be (y, x) or an (N, 2) array of ints, got {position!r}")
        pos = pos.reshape(-1, 2).expand(n, 2).to(torch.long)
        bad = (pos[:, 0] < 0) | (pos[:, 0] >= h) | (pos[:, 1] < 0) | (pos[:, 1] >= w)
        if bool(bad.any()):
            y, x = pos[bad][0].tolist()
            raise InputError(
                f"position (y={y}, x={x}) is out of range for layer {layer!r} with feature maps of "
                f"{h}x{w}: valid y is 0..{h - 1}, x is 0..{w - 1}"
            )
        return channel, pos

    def strongest(self, layer: str, channel: int, call: int = 0) -> list[tuple[int, int]]:
        """Per sample, the ``(y, x)`` of the largest activation of ``channel`` in ``layer``."""
        _, _, act = self._spatial_activation(layer, call)  # [models]
        ch, _ = self._check_channel_position(act, layer, channel, None)
        if act.dim() == 2:
            return [(0, 0)] * act.shape[0]
        return [tuple(p) for p in _argmax_positions(act[:, ch]).tolist()]  # type: ignore[misc]

    def project(
        self,
        layer: str,
        channel: int,
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
        rec, lay, act = self._spatial_activation(layer, call)  # [models]
        ch, pos = self._check_channel_position(act, rec.name, channel, position)
        if rec.edge is None:
            raise ModelError(f"layer {rec.key!r} output does not depend on the input through autograd; it cannot be projected")
        seed = _one_hot_seed(act, ch, pos)
        if lay.kind in ("NHWC", "tokens"):
            seed = from_nchw(seed, lay)  # [models] the seed in the layer's own layout
        out = self._backward(rec.edge, seed, rule)
        self._warn_degenerate(out, f"projection of {rec.key}")
        return out.to(device=self._orig_device, dtype=self._orig_dtype)

    def receptive_field(self, layer: str, y: int, x: int, call: int = 0) -> tuple[int, int, int, int]:
        """Input-pixel box ``(y0, x0, y1, x1)`` (half-open) that the unit at ``(y, x)`` of ``layer`` sees.

        Computed structurally (ReLUs pass, max-pools spread over their window, all weights
        one), so it is the full theoretical receptive field clipped to the image.
        """
        rec, lay, act = self._spatial_activation(layer, call)  # [models]
        self._check_channel_position(act, rec.name, 0, (y, x))
        key = (rec.name, rec.call, int(y), int(x))
        if key not in self._rf_cache:
            with self._lock:
                self._rf_cache[key] = receptive_field(self.model, tuple(self._x.shape[1:]), rec.name, int(y), int(x), rec.call, self._x.dtype, self.device, layout=lay)
        return self._rf_cache[key]


def _argmax_positions(maps: torch.Tensor) -> torch.Tensor:
    """``(N, H, W)`` -> ``(N, 2)`` long tensor of (y, x) of each map's maximum."""
    n, h, w = maps.shape
    flat = maps.reshape(n, -1).argmax(dim=1)
    return torch.stack([flat // w, flat % w], dim=1)


def _one_hot_seed(act: torch.Tensor, channel: int | torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
    """Zero everywhere except the chosen activation, which keeps its forward value.

    ``channel`` is one int, or an ``(N,)`` tensor with one channel per sample.
    """
    seed = torch.zeros_like(act)
    n = act.shape[0]
    idx = torch.arange(n, device=act.device)
    if isinstance(channel, torch.Tensor):
        channel = channel.to(act.device)
    if act.dim() == 2:
        seed[idx, channel] = act[idx, channel]
        return seed
    if pos is None:
        pos = _argmax_positions(act[idx, channel])
    pos = pos.to(act.device)
    seed[idx, channel, pos[:, 0], pos[:, 1]] = act[idx, channel, pos[:, 0], pos[:, 1]]
    return seed


def _recompute_output(model: nn.Module, x: torch.Tensor, layer: str, call: int) -> torch.Tensor:
    """Forward (no grad) until ``layer`` ran for the ``call``-th time; return a copy of its output."""
    with torch.no_grad():
        return forward_to(model, x, layer, call, clone=True)


def receptive_field(
    model: nn.Module,
    input_shape: Sequence[int],
    layer: str,
    y: int,
    x: int,
    call: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    layout: Layout | None = None,
) -> tuple[int, int, int, int]:
    """Receptive field of unit ``(y, x)`` of ``layer`` as a half-open pixel box ``(y0, x0, y1, x1)``.

    Parameters
    ----------
    model
        The model (not modified).
    input_shape
        ``(C, H, W)`` of one input.
    layer, call
        Module name and execution index.
    y, x
        Position in the layer's output feature map (its ``(C, H, W)`` view).
    layout
        The layer's :class:`~saliency_widget.engine.layouts.Layout` (default: NCHW).
    """
    return receptive_fields(model, input_shape, layer, [(y, x)], call, dtype, device, layout=layout)[0]


def receptive_fields(
    model: nn.Module,
    input_shape: Sequence[int],
    layer: str,
    positions: Sequence[tuple[int, int]],
    call: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
    layout: Layout | None = None,
) -> list[tuple[int, int, int, int]]:
    """Receptive-field boxes of many units at once: one probe image per position, batched.

    Each probe is an all-ones input run under :class:`ReceptiveFieldMode` (ReLUs pass,
    max-pools spread, weights are ones), so the input-gradient's support of unit ``(y, x)``
    is exactly the set of pixels it is connected to. ``layout`` (default NCHW) places the
    units of an NHWC or tokens layer on its ``(C, H, W)`` view.
    """
    boxes: list[tuple[int, int, int, int]] = []
    for start in range(0, len(positions), batch_size):
        chunk = positions[start : start + batch_size]
        probe = torch.ones((len(chunk), *input_shape), dtype=dtype, device=device, requires_grad=True)
        with torch.enable_grad():
            out = forward_to(model, probe, layer, call, mode=ReceptiveFieldMode())
        if layout is not None and layout.kind in ("NHWC", "tokens"):
            out = to_nchw(out, layout)  # [models] the unit (y, x) on the layer's (C, H, W) view
        if out.dim() != 4 or not out.requires_grad:
            boxes += [(0, 0, int(input_shape[-2]), int(input_shape[-1]))] * len(chunk)
            continue
        seed = torch.zeros_like(out)
        for i, (y, x) in enumerate(chunk):
            seed[i, :, y, x] = 1.0
        (g,) = torch.autograd.grad(out, probe, seed, allow_unused=True)
        if g is None:
            boxes += [(0, 0, 0, 0)] * len(chunk)
            continue
        support = g.abs().sum(1) > 0  # (B, H, W)
        for i in range(len(chunk)):
            ys = torch.nonzero(support[i].any(1)).flatten()
            xs = torch.nonzero(support[i].any(0)).flatten()
            boxes.append((0, 0, 0, 0) if ys.numel() == 0 else (int(ys[0]), int(xs[0]), int(ys[-1]) + 1, int(xs[-1]) + 1))
    return boxes


# Re-exported for callers that want the paper's default rule object.
DEFAULT_PROJECTION_RULE = DECONVNET
