"""Recording a forward pass: per-module outputs with their autograd edges, and partial forwards.

Forward hooks exist only inside a :class:`LayerCapture` ``with`` block; :func:`forward_to`
stops the model right after a chosen layer execution by raising :class:`StopForward`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as torch_module

from ..errors import LayerError
from .checks import eval_mode
from .keys import LayerKey
from .layouts import Layout, LayoutTracker, nchw_shape
from .sharing import ThreadOwned

__all__ = ["LayerCapture", "LayerInfo", "LayerRecord", "StopForward", "foreign_forward_hooks", "forward_to", "layer_infos", "layer_layout"]


class StopForward(BaseException):
    """Raised by a capture hook to end the forward pass once the wanted layer has run.

    A BaseException so that a model's own ``except Exception`` cannot swallow it.
    """


@dataclass
class LayerRecord:
    """One execution of one module during a recorded forward pass.

    Attributes
    ----------
    name, call
        Dotted module name and which execution of it (0 = first).
    type
        Module class name.
    tensor
        The output tensor object, shape ``(N, ...)``; its values may have been changed
        afterwards by an in-place op (see ``version``).
    version
        ``tensor._version`` right after the module ran: a different value now means an
        in-place op changed it, so its values must be recomputed.
    edge
        Autograd edge of the output at the time the module ran (None if no grad).
    """

    name: str
    call: int
    type: str
    tensor: torch.Tensor
    version: int
    edge: Any
    value: torch.Tensor | None = field(default=None, repr=False)

    @property
    def layer_key(self) -> LayerKey:
        """The execution as a :class:`~saliency_widget.engine.keys.LayerKey`."""
        return LayerKey(self.name, self.call)

    @property
    def key(self) -> str:
        """``"name"`` for the first call, ``"name#call"`` for later ones (``str(self.layer_key)``)."""
        return str(self.layer_key)

    def current_value(self) -> torch.Tensor | None:
        """The forward value, if no in-place op changed it since; else None."""
        if self.value is not None:
            return self.value
        if self.tensor._version == self.version:
            return self.tensor.detach()
        return None


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
    layout: str = "NCHW"  # defaults keep the positional constructor of (name, call, shape, type)
    prefix_tokens: int = 0
    raw_shape: tuple[int, ...] = ()

    @classmethod
    def of(cls, rec: LayerRecord, layout: Layout) -> LayerInfo:
        """The entry of one recorded execution whose output has ``layout``."""
        shape = tuple(rec.tensor.shape)
        return cls(rec.name, rec.call, nchw_shape(shape, layout), rec.type, layout.kind, layout.prefix, shape[1:])

    @property
    def layer_key(self) -> LayerKey:
        """The execution as a :class:`~saliency_widget.engine.keys.LayerKey`."""
        return LayerKey(self.name, self.call)

    @property
    def key(self) -> str:
        """``name`` for the first call, ``"name#call"`` for later ones (``str(self.layer_key)``)."""
        return str(self.layer_key)

    @property
    def channels(self) -> int:
        """Number of channels (the first output dimension)."""
        return self.shape[0]


def layer_infos(records: Iterable[LayerRecord], layout_of: Callable[[LayerRecord], Layout]) -> list[LayerInfo]:
    """The inspectable executions among ``records`` (tensor outputs of rank >= 2), in order, with their layouts."""
    return [LayerInfo.of(r, layout_of(r)) for r in records if r.tensor.dim() >= 2]


class LayerCapture:
    """Forward hooks that record module outputs; installed only inside ``with``.

    The hooks belong to the thread that enters the block: a forward of the same model in
    another thread (another session) runs past them unrecorded (see :mod:`.sharing`).

    Parameters
    ----------
    model
        The model; hooks go on its submodules (not on the model itself).
    names
        Module names to hook, or None for all.
    stop_at
        ``(name, call)``: raise :class:`StopForward` right after that execution.
    clone
        Keep a detached copy of the values of the ``stop_at`` execution.
    """

    def __init__(
        self,
        model: nn.Module,
        names: Sequence[str] | None = None,
        stop_at: tuple[str, int] | None = None,
        clone: bool = False,
    ) -> None:
        self.model = model
        self.names = None if names is None else set(names)
        self.stop_at = stop_at
        self.clone = clone
        self.records: list[LayerRecord] = []
        self.counts: dict[str, int] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> LayerCapture:
        try:
            for name, module in self.model.named_modules():
                if name == "" or (self.names is not None and name not in self.names):
                    continue
                self._handles.append(module.register_forward_hook(self._make_hook(name)))
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._remove()

    def _remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _make_hook(self, name: str) -> Any:
        return _RecordHook(self, name)


class _RecordHook(ThreadOwned):
    """The forward hook of one module: records its output into ``capture`` (owner thread only)."""

    __slots__ = ("capture", "name")

    def __init__(self, capture: LayerCapture, name: str) -> None:
        super().__init__()
        self.capture = capture
        self.name = name

    def run(self, *args: object) -> None:
        """Record ``output`` of ``module`` (hook arguments ``(module, args, output)``)."""
        module, _, output = args
        cap, name = self.capture, self.name
        call = cap.counts.get(name, 0)
        cap.counts[name] = call + 1
        if not isinstance(output, torch.Tensor):
            return
        edge = None
        if output.requires_grad:
            gfn = output.grad_fn
            # A C++ node directly (get_gradient_edge costs ~20 µs per layer); leaves and Python
            # nodes (our ReLU Function) need get_gradient_edge's ownership token.
            edge = (
                torch.autograd.graph.GradientEdge(gfn, output.output_nr)
                if gfn is not None and not isinstance(gfn, torch._C._FunctionBase)
                else torch.autograd.graph.get_gradient_edge(output)
            )
        rec = LayerRecord(name, call, type(module).__name__, output, output._version, edge)
        if cap.stop_at == (name, call) and cap.clone:
            rec.value = output.detach().clone()
        cap.records.append(rec)
        if cap.stop_at == (name, call):
            raise StopForward


def foreign_forward_hooks(model: nn.Module) -> list[str]:
    """The forward hooks and pre-hooks on ``model`` that are not the engine's, in one phrase each.

    The user's hooks on any module of ``model`` (the model itself included) and the global
    module hooks (``torch.nn.modules.module.register_module_forward_hook`` and its pre-hook
    twin). The engine's own recording hooks (:class:`~.sharing.ThreadOwned`, of this or any
    other session) are left out.

    Returns
    -------
    list of str
        E.g. ``["a forward hook on 'conv1' (Conv2d)", "a global forward pre-hook"]``; empty
        when there is none.
    """
    found: list[str] = []
    for what, hooks in (("forward hook", torch_module._global_forward_hooks),
                        ("forward pre-hook", torch_module._global_forward_pre_hooks)):
        if any(not isinstance(h, ThreadOwned) for h in hooks.values()):
            found.append(f"a global {what}")
    for name, mod in model.named_modules():
        for what, hooks in (("forward hook", mod._forward_hooks), ("forward pre-hook", mod._forward_pre_hooks)):
            if any(not isinstance(h, ThreadOwned) for h in hooks.values()):
                where = f"{name!r}" if name else "the model itself"
                found.append(f"a {what} on {where} ({type(mod).__name__})")
    return found


def forward_to(
    model: nn.Module, x: torch.Tensor, layer: str, call: int = 0, *, clone: bool = False, mode: Any = None
) -> torch.Tensor:
    """Run ``model(x)`` in eval mode until ``layer`` ran for the ``call``-th time; return that output.

    Grad mode is the caller's (wrap in ``torch.no_grad()`` for a plain scan). ``mode`` is an
    optional TorchFunctionMode active during the partial forward; ``clone`` returns a copy
    that later in-place ops cannot change.
    """
    cap = LayerCapture(model, names=[layer], stop_at=(layer, call), clone=clone)
    with eval_mode(model), cap, (mode if mode is not None else contextlib.nullcontext()):
        try:
            model(x)
        except StopForward:
            pass
    for rec in cap.records:
        if (rec.name, rec.call) == (layer, call):
            return rec.value if clone and rec.value is not None else rec.tensor
    ran = sorted(c for (n, c) in ((r.name, r.call) for r in cap.records) if n == layer)
    raise LayerError(
        f"layer {layer!r} call {call} did not run in the forward pass"
        + (f"; valid calls are {ran}" if ran else " (it is not on the path of this input)")
    )


def layer_layout(model: Any, x: torch.Tensor, layer: str, call: int = 0) -> Layout:
    """The layout of ``layer``'s output, from a tracked no-grad forward of ``x`` up to that layer.

    For callers that run their own forward passes (top activations); an Explainer knows
    its layouts already (:meth:`~saliency_widget.engine.session.Explainer.layout`). Lives here, next
    to :func:`forward_to`, because the layouts module must not import the capture.

    Parameters
    ----------
    model
        The network (run in eval mode, not modified).
    x
        Inputs ``(N, C, H, W)``; one sample is enough.
    layer, call
        Dotted module name and execution index.
    """
    tracker = LayoutTracker()
    with torch.no_grad():
        x = x.detach()
        tracker.watch(x)
        out = forward_to(model, x, layer, call, mode=tracker)
    return tracker.layout_of(out)
