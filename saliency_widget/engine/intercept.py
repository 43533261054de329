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
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ..errors import ModelError, NonReLUActivationWarning, choices, warn_once
from .rules import GRADIENT, ReLURule

__all__ = ["NON_RELU_ACTIVATIONS", "RELU_FUNCTIONS", "ReLUInterceptor", "RuleBox", "check_relu_rule"]


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


#: Every ReLU form the interceptor routes (functional, tensor method, in place or not).
RELU_FUNCTIONS: frozenset[Callable[..., Any]] = frozenset({F.relu, *_RELU_OUT_OF_PLACE, *_RELU_IN_PLACE})

_WATCHED: frozenset[Callable[..., Any]] = frozenset({*RELU_FUNCTIONS, *NON_RELU_ACTIVATIONS})


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

    def check_rule(self, rule: ReLURule, model_name: str, *, ran_to_end: bool = True) -> None:
        """Check that ``rule`` means something for the forward this interceptor saw (see :func:`check_relu_rule`)."""
        check_relu_rule(rule, model_name, self.relu_calls, self.other_activations, ran_to_end=ran_to_end)

    def _relu(self, x: torch.Tensor, inplace: bool) -> torch.Tensor:
        if not (torch.is_grad_enabled() and isinstance(x, torch.Tensor) and x.requires_grad):
            # Nothing will flow back through this call: keep the original op.
            return torch.relu_(x) if inplace else torch.relu(x)
        self.relu_calls += 1
        if inplace:
            return _RuleReLUInplace.apply(x, self.box)
        return _RuleReLU.apply(x, self.box)


def check_relu_rule(
    rule: ReLURule, model_name: str, relu_calls: int, other_activations: Counter[str], *, ran_to_end: bool = True
) -> None:
    """Check that ``rule`` means something for a forward that ran ``relu_calls`` ReLUs.

    Parameters
    ----------
    rule
        A rule that changes the backward at ReLUs (not the plain gradient).
    model_name
        The model's class name, for messages.
    relu_calls
        ReLU calls with autograd recording in that forward.
    other_activations
        Count of calls per non-ReLU activation name in that forward.
    ran_to_end
        False for a partial forward, which may stop before the first ReLU.

    Raises
    ------
    ModelError
        The whole forward ran no ReLU: the rule would change nothing.

    Warns
    -----
    NonReLUActivationWarning
        Once per model and activation set: other activations keep their plain gradient.
    """
    if relu_calls == 0 and ran_to_end:
        raise ModelError(
            f"{rule.name!r} changes the backward pass at ReLUs, but the model ({model_name}) "
            f"ran no ReLU on this input (other activations seen: "
            f"{choices(sorted(other_activations)) or 'none'}); "
            "use method='gradient' or a model with ReLU activations"
        )
    others = sorted(other_activations)
    if others:
        warn_once(
            ("non-relu", rule.name, model_name, tuple(others)),
            f"{rule.name}: the model also uses {', '.join(others)}, for which {rule.name} is not defined; "
            "those activations kept their plain gradient (only the ReLUs use the rule)",
            NonReLUActivationWarning,
        )
