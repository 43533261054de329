"""One mechanism that changes the backward pass of every ReLU form.

Module hooks only see ``nn.ReLU`` modules and miss ``F.relu``, ``torch.relu_`` or
``x.relu()``; swapping modules rewrites the user's model. Instead, a
:class:`torch.overrides.TorchFunctionMode` routes every ReLU call, whatever its form, through
one :class:`torch.autograd.Function` whose backward asks a shared :class:`RuleBox` which
rule is current *when the backward runs*. One recorded forward can therefore be sent back
with gradient, DeconvNet and Guided Backprop in turn.

The mode only lives inside ``with`` blocks; it touches neither the model nor global state.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .rules import GRADIENT, ReLURule

__all__ = ["RuleBox", "ReLUInterceptor", "NON_RELU_ACTIVATIONS"]


class RuleBox:
    """Mutable holder of the rule applied by recorded ReLUs at backward time."""

    __slots__ = ("rule",)

    def __init__(self, rule: ReLURule = GRADIENT) -> None:
        self.rule = rule


class _RuleReLU(torch.autograd.Function):
    """``relu(x)`` forward; backward applies ``box.rule``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, box: RuleBox) -> torch.Tensor:  # type: ignore[override]
        out = torch.relu(x)
        ctx.box = box
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (out,) = ctx.saved_tensors
        return ctx.box.rule.backward(grad, out), None


class _RuleReLUInplace(_RuleReLU):
    """``x.relu_()`` forward, in place like the original (callers may ignore the return value).

    The backward is :class:`_RuleReLU`'s: ``x`` now holds relu's output, which is what it saves.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, box: RuleBox) -> torch.Tensor:  # type: ignore[override]
        x.relu_()
        ctx.mark_dirty(x)
        ctx.box = box
        ctx.save_for_backward(x)
        return x


_RELU_OUT_OF_PLACE: frozenset[Callable[..., Any]] = frozenset({torch.relu, torch.Tensor.relu})
_RELU_IN_PLACE: frozenset[Callable[..., Any]] = frozenset({torch.relu_, torch.Tensor.relu_, F.relu_})

# Activations for which DeconvNet / Guided Backprop are not defined: reported, never silent.
NON_RELU_ACTIVATIONS: dict[Callable[..., Any], str] = {
    F.relu6: "ReLU6",
    F.hardtanh: "Hardtanh",
    F.leaky_relu: "LeakyReLU",
    F.elu: "ELU",
    F.selu: "SELU",
    F.celu: "CELU",
    F.gelu: "GELU",
    F.silu: "SiLU",
    F.mish: "Mish",
    F.hardswish: "Hardswish",
    F.softplus: "Softplus",
    F.prelu: "PReLU",
    F.rrelu: "RReLU",
    F.glu: "GLU",
    torch.tanh: "Tanh",
    torch.Tensor.tanh: "Tanh",
    torch.sigmoid: "Sigmoid",
    torch.Tensor.sigmoid: "Sigmoid",
}


_WATCHED: frozenset[Callable[..., Any]] = frozenset(
    {F.relu, *_RELU_OUT_OF_PLACE, *_RELU_IN_PLACE, *NON_RELU_ACTIVATIONS}
)


class ReLUInterceptor(TorchFunctionMode):
    """Route every ReLU call through :class:`_RuleReLU`, and record other activations.

    Parameters
    ----------
    box
        Holder of the rule applied at backward time.

    Attributes
    ----------
    relu_calls
        Number of ReLU calls intercepted (with autograd recording).
    other_activations
        Count of calls per non-ReLU activation name (these keep their plain gradient).
    """

    def __init__(self, box: RuleBox) -> None:
        super().__init__()
        self.box = box
        self.relu_calls = 0
        self.other_activations: Counter[str] = Counter()

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if func not in _WATCHED:
            # the common case (conv, pooling, tensor attributes read by hooks): no extra work
            return func(*args, **kwargs)
        if func is F.relu:
            inplace = bool(kwargs.get("inplace", args[1] if len(args) > 1 else False))
            return self._relu(args[0] if args else kwargs["input"], inplace)
        if func in _RELU_OUT_OF_PLACE:
            return self._relu(args[0] if args else kwargs["input"], False)
        if func in _RELU_IN_PLACE:
            return self._relu(args[0] if args else kwargs["input"], True)
        name = NON_RELU_ACTIVATIONS.get(func)
        if name is not None:
            self.other_activations[name] += 1
        return func(*args, **kwargs)

    def _relu(self, x: torch.Tensor, inplace: bool) -> torch.Tensor:
        if not (torch.is_grad_enabled() and isinstance(x, torch.Tensor) and x.requires_grad):
            # Nothing will flow back through this call: keep the original op.
            return torch.relu_(x) if inplace else torch.relu(x)
        self.relu_calls += 1
        if inplace:
            return _RuleReLUInplace.apply(x, self.box)
        return _RuleReLU.apply(x, self.box)


class ReceptiveFieldMode(TorchFunctionMode):
    """Make every path positive so an input-gradient's support is the receptive field.

    ReLUs pass everything, max-pooling spreads to its whole window (as average pooling),
    convolutions and linear layers use all-ones weights and batch-norm is the identity.
    The backward of one unit then reaches exactly the input pixels it is connected to,
    with no cancellation and no dependence on the image or the weights.
    """

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = dict(kwargs or {})
        if func is F.relu or func in _RELU_OUT_OF_PLACE or func in _RELU_IN_PLACE:
            x = args[0] if args else kwargs["input"]
            return x
        if func in NON_RELU_ACTIVATIONS:
            return args[0] if args else kwargs["input"]
        if func in (F.conv1d, F.conv2d, F.conv3d, torch.conv2d, F.linear):
            args = list(args)  # type: ignore[assignment]
            if len(args) > 1:
                args[1] = torch.ones_like(args[1])  # type: ignore[index]
            else:
                kwargs["weight"] = torch.ones_like(kwargs["weight"])
            if len(args) > 2:
                args[2] = None  # type: ignore[index]
            else:
                kwargs.pop("bias", None)
            return func(*args, **kwargs)
        if func is F.batch_norm or func is F.layer_norm or func is F.group_norm:
            return args[0] if args else kwargs["input"]
        if func in (F.max_pool2d, F.max_pool2d_with_indices, torch.max_pool2d):
            return _max_as_avg(args, kwargs)
        if func is F.adaptive_max_pool2d:
            x = args[0] if args else kwargs["input"]
            size = args[1] if len(args) > 1 else kwargs["output_size"]
            return F.adaptive_avg_pool2d(x, size)
        return func(*args, **kwargs)


def _max_as_avg(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
    names = ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"]
    bound = dict(zip(names, args))
    bound.update(kwargs)
    dilation = bound.get("dilation", 1)
    if dilation not in (1, (1, 1), [1, 1]):
        # avg_pool2d has no dilation: keep the max-pool (its switches may narrow the box).
        return F.max_pool2d(**{k: v for k, v in bound.items() if k != "return_indices"})
    kernel = bound["kernel_size"]
    stride = bound.get("stride") or kernel
    out = F.avg_pool2d(
        bound["input"],
        kernel,
        stride,
        bound.get("padding", 0),
        ceil_mode=bool(bound.get("ceil_mode", False)),
        count_include_pad=True,
    )
    return out
