"""Layer-wise Relevance Propagation through the engine's interception mechanism.

zennit applies its rules to ``nn.Module`` objects with hooks: a network written with
``F.conv2d`` / ``F.linear`` gets no rule there and its "LRP" is silently the plain gradient.
Here, as for the ReLU rules (:mod:`.intercept`), one :class:`~torch.overrides.TorchFunctionMode`
sees every call, whatever its form, during one forward pass, and routes:

- convolutions (``conv1d/2d/3d``, transposed), ``F.linear``, and ``matmul`` / ``@`` where one
  operand is a parameter (a weight): through a layer rule of the composite
  (:mod:`.lrprules`); the first such layer run may get the composite's first-layer rule;
- eval-mode batch norm right after such a layer: merged into it for the rule (``W' = s W``,
  ``b' = s (b - mean) + beta`` with ``s = gamma / sqrt(var + eps)``), as zennit's canonizers
  do; the batch norm itself passes relevance through;
- a sum of two activations (a residual ``out + identity``, in place or not): shared in
  proportion to each branch's contribution, ``R_a = a R / z``, ``R_b = b R / z`` (zennit's
  ``Norm`` on its ResNet canonizer's ``Sum``);
- average pooling and means: the ``Norm`` rule;
- ReLU and other element-wise activations: relevance passes through unchanged (zennit's
  ``Pass``); max pooling, reshapes, concatenations and slices keep autograd's routing.

Operations that mix relevance and that no rule covers (layer/group norm, softmax, products of
two activations as in attention, interpolation) are named in one
:class:`~saliency_widget.errors.LRPCoverageWarning` per model; their relevance follows the
gradient there. The mode lives only inside one forward; the model is never changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import LRPCoverageWarning, ModelError, warn_once
from .checks import eval_mode
from .intercept import NON_RELU_ACTIVATIONS, RELU_FUNCTIONS
from .lrprules import Composite, LinearOp, Rule, make_composite, stabilize
from .methods import check_options
from .outputs import logits_of

if TYPE_CHECKING:  # pragma: no cover
    from .session import Explainer

__all__ = ["LRP", "LRPInterceptor", "lrp_relevance"]

_CONVS: dict[Callable[..., Any], Callable[..., Any]] = {
    F.conv1d: F.conv1d, F.conv2d: F.conv2d, F.conv3d: F.conv3d,
    F.conv_transpose1d: F.conv_transpose1d, F.conv_transpose2d: F.conv_transpose2d,
    F.conv_transpose3d: F.conv_transpose3d,
}
_MATMULS = frozenset({torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.__rmatmul__, torch.mm})
_ADDS = frozenset({torch.add, torch.Tensor.add, torch.Tensor.__add__, torch.Tensor.__radd__})
_ADDS_INPLACE = frozenset({torch.Tensor.add_, torch.Tensor.__iadd__})
_POOLS = frozenset({F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d,
                    F.adaptive_avg_pool3d, torch.mean, torch.Tensor.mean})
_PASS = frozenset({*RELU_FUNCTIONS, *(f for f, n in NON_RELU_ACTIVATIONS.items() if n != "GLU")})
# Calls that mix relevance with no rule here: named in the coverage warning when on the relevance path.
_MIXING: dict[Callable[..., Any], str] = {
    F.layer_norm: "layer_norm", F.group_norm: "group_norm", F.instance_norm: "instance_norm",
    F.softmax: "softmax", torch.softmax: "softmax", torch.Tensor.softmax: "softmax",
    F.log_softmax: "log_softmax", F.scaled_dot_product_attention: "scaled_dot_product_attention",
    F.interpolate: "interpolate", torch.einsum: "einsum", torch.bmm: "bmm",
    torch.mul: "mul", torch.Tensor.mul: "mul", torch.Tensor.__mul__: "mul", torch.Tensor.__rmul__: "mul",
    torch.div: "div", torch.Tensor.div: "div", torch.Tensor.__truediv__: "div", F.glu: "glu",
}


@dataclass
class _Layer:
    """One linear layer call seen in the forward: its op, weights, rule and merged batch norm."""

    op: LinearOp
    weight: torch.Tensor
    bias: torch.Tensor | None
    rule: Rule
    kind: str
    bn: tuple[torch.Tensor, torch.Tensor] | None = None  # (scale, shift) per output channel
    out: torch.Tensor | None = field(default=None, repr=False)

    def merged(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The weight and bias with the following batch norm folded in (the layer's own if none)."""
        if self.bn is None:
            return self.weight, self.bias
        scale, shift = self.bn
        # output channels: dim 0 of a conv / linear weight, dim 1 of a transposed conv's
        out_dim = 1 if self.op_is_transposed else 0
        shape = [1] * self.weight.dim()
        shape[out_dim] = -1
        bias = self.bias if self.bias is not None else torch.zeros_like(shift)
        return self.weight * scale.view(shape), bias * scale + shift

    @property
    def op_is_transposed(self) -> bool:
        """True for transposed convolutions (output channels on the weight's dim 1)."""
        return getattr(self.op, "transposed", False)


class _LayerFn(torch.autograd.Function):
    """``op(x, W, b)`` forward; backward: the layer's rule on the (batch-norm-merged) weights."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, layer: _Layer) -> torch.Tensor:  # type: ignore[override]
        ctx.layer = layer
        ctx.save_for_backward(x)
        return layer.op(x, layer.weight, layer.bias)

    @staticmethod
    def backward(ctx: Any, R: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        layer: _Layer = ctx.layer
        weight, bias = layer.merged()
        return layer.rule.relevance(layer.op, x, weight, bias, R), None


class _PassFn(torch.autograd.Function):
    """An element-wise op (activation, merged or lone batch norm) that passes relevance unchanged."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        return fn(x)

    @staticmethod
    def backward(ctx: Any, R: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return R, None


class _PassInplaceFn(torch.autograd.Function):
    """In-place ReLU (``relu_``, ``ReLU(inplace=True)``) that passes relevance unchanged."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x.relu_()
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx: Any, R: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return R


class _NormFn(torch.autograd.Function):
    """A parameter-free linear op ``z = op(x)`` (pooling, mean) with the Norm rule."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, op: Callable[[torch.Tensor], torch.Tensor], rule: Rule) -> torch.Tensor:  # type: ignore[override]
        ctx.op, ctx.rule = op, rule
        ctx.save_for_backward(x)
        return op(x)

    @staticmethod
    def backward(ctx: Any, R: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        op = ctx.op
        return ctx.rule.relevance(lambda t, _w, _b: op(t), x, x, None, R), None, None


class _SumFn(torch.autograd.Function):
    """``a + b`` of two activations: each branch gets ``branch * R / stabilize(a + b)``."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:  # type: ignore[override]
        ctx.eps = eps
        ctx.save_for_backward(a, b)
        return a + b

    @staticmethod
    def backward(ctx: Any, R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:  # type: ignore[override]
        a, b = ctx.saved_tensors
        g = R / stabilize(a + b, ctx.eps)
        return a * g, b * g, None


class _SumInplaceFn(torch.autograd.Function):
    """``a += b`` of two activations (a residual add in place), with :class:`_SumFn`'s rule."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:  # type: ignore[override]
        ctx.eps = eps
        ctx.save_for_backward(a.clone(), b)  # a's old value: it is overwritten below
        a.add_(b)
        ctx.mark_dirty(a)
        return a

    @staticmethod
    def backward(ctx: Any, R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:  # type: ignore[override]
        return _SumFn.backward(ctx, R)


def _conv_op(func: Callable[..., Any], rest: tuple[Any, ...], kwargs: dict[str, Any]) -> LinearOp:
    def op(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return func(x, w, b, *rest, **kwargs)

    op.transposed = "transpose" in func.__name__  # type: ignore[attr-defined]
    return op


def _linear_op(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return F.linear(x, w, b)


def _matmul_right(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``x @ W (+ b)``: a bias added right after the product is folded in (see ``_fold_bias``)."""
    z = torch.matmul(x, w)
    return z if b is None else z + b


def _matmul_left(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``W @ x (+ b)``."""
    z = torch.matmul(w, x)
    return z if b is None else z + b


def _needs(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.requires_grad


def _is_weight(t: Any) -> bool:
    """A parameter, or a view of one (``W.T``, ``W.view(...)``): the fixed operand of a dense layer."""
    return isinstance(t, nn.Parameter) or isinstance(getattr(t, "_base", None), nn.Parameter)


class LRPInterceptor(TorchFunctionMode):
    """Route every call of a forward through the composite's rules (see the module docstring).

    Parameters
    ----------
    composite
        The rules per layer kind.

    Attributes
    ----------
    layers
        Number of layers (convolutions, dense) given a rule.
    uncovered
        Count of relevance-mixing calls with no rule, by name (see the module docstring).
    """

    def __init__(self, composite: Composite) -> None:
        super().__init__()
        self.composite = composite
        self.layers = 0
        self.uncovered: Counter[str] = Counter()
        self._produced: dict[int, _Layer] = {}  # id(output) -> the layer that produced it (batch-norm merging)

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        if not torch.is_grad_enabled():
            return func(*args, **kwargs)
        if func in _CONVS and _needs(args[0]):
            w = args[1] if len(args) > 1 else kwargs.pop("weight")
            b = args[2] if len(args) > 2 else kwargs.pop("bias", None)
            return self._layer(_conv_op(func, tuple(args[3:]), kwargs), args[0], w, b, "conv")
        if func is F.linear and _needs(args[0]):
            w = args[1] if len(args) > 1 else kwargs["weight"]
            b = args[2] if len(args) > 2 else kwargs.get("bias")
            return self._layer(_linear_op, args[0], w, b, "dense")
        if func in _MATMULS and len(args) == 2:
            return self._matmul(func, args, kwargs)
        if func is F.batch_norm:
            return self._batch_norm(args, kwargs)
        if func in _PASS and args and _needs(args[0]):
            return self._pass(func, args, kwargs)
        if func in _ADDS | _ADDS_INPLACE and len(args) == 2 and not kwargs:
            a, b = args
            if _needs(a) and _needs(b) and not _is_weight(a) and not _is_weight(b) and a.shape == b.shape:
                fn = _SumInplaceFn if func in _ADDS_INPLACE else _SumFn
                return fn.apply(a, b, self._stabilizer)
            if func in _ADDS:
                folded = self._fold_bias(a, b) if _is_weight(b) else self._fold_bias(b, a) if _is_weight(a) else None
                if folded is not None:
                    return folded
        if func in _POOLS and args and _needs(args[0]):
            x, rest = args[0], args[1:]
            return _NormFn.apply(x, lambda t: func(t, *rest, **kwargs), self.composite.norm)
        name = _MIXING.get(func)
        if name is not None:
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            # a product or quotient only mixes when both sides carry relevance (a scale by a constant does not)
            if name not in ("mul", "div") or sum(_needs(t) and not _is_weight(t) for t in tensors) == 2:
                if any(_needs(t) for t in tensors):
                    self.uncovered[name] += 1
        return func(*args, **kwargs)

    @property
    def _stabilizer(self) -> float:
        return float(getattr(self.composite.norm, "stabilizer", 1e-6))

    def _layer(self, op: LinearOp, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, kind: str) -> torch.Tensor:
        rule = self.composite.rule_for(kind, is_first=self.layers == 0)
        self.layers += 1
        layer = _Layer(op, w.detach(), None if b is None else b.detach(), rule, kind)
        out = _LayerFn.apply(x, layer)
        layer.out = out  # keeps the id below unique while the forward lives
        self._produced[id(out)] = layer
        return out

    def _fold_bias(self, x: Any, bias: torch.Tensor) -> torch.Tensor | None:
        """``x + bias`` right after a ``matmul`` layer: the bias joins that layer (``x @ W.T + b`` is one dense layer)."""
        producer = self._produced.get(id(x)) if isinstance(x, torch.Tensor) else None
        if producer is None or producer.bias is not None or producer.bn is not None or bias.dim() != 1:
            return None
        producer.bias = bias.detach()
        out = _PassFn.apply(x, lambda t: t + bias.detach())
        producer.out = out
        self._produced[id(out)] = producer  # a batch norm may still follow
        return out

    def _matmul(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        a, b = args
        if func is torch.Tensor.__rmatmul__:
            a, b = b, a
        if _is_weight(b) and _needs(a) and not _is_weight(a):
            return self._layer(_matmul_right, a, b, None, "dense")
        if _is_weight(a) and _needs(b) and not _is_weight(b):
            return self._layer(_matmul_left, b, a, None, "dense")
        if _needs(a) and _needs(b):
            self.uncovered["matmul"] += 1
        return func(*args, **kwargs)

    def _batch_norm(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        names = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
        bound = dict(zip(names, args)) | kwargs
        x = bound["input"]
        if not _needs(x):
            return F.batch_norm(*args, **kwargs)
        producer = self._produced.get(id(x))
        mean, var = bound.get("running_mean"), bound.get("running_var")
        if bound.get("training", False) or mean is None or var is None:
            self.uncovered["batch_norm (batch statistics)"] += 1
            return F.batch_norm(*args, **kwargs)

        def bn(t: torch.Tensor) -> torch.Tensor:
            return F.batch_norm(t, *args[1:], **kwargs)

        if producer is not None and producer.bn is None and producer.kind in ("conv", "dense"):
            eps = float(bound.get("eps", 1e-5))
            gamma = bound.get("weight")
            beta = bound.get("bias")
            scale = (gamma.detach() if gamma is not None else torch.ones_like(var)) / (var + eps) ** 0.5
            shift = (beta.detach() if beta is not None else torch.zeros_like(mean)) - mean * scale
            producer.bn = (scale, shift)
        return _PassFn.apply(x, bn)

    def _pass(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        x = args[0]
        inplace = func in (torch.relu_, torch.Tensor.relu_, F.relu_) or (
            func is F.relu and bool(kwargs.get("inplace", args[1] if len(args) > 1 else False)))
        if inplace:
            return _PassInplaceFn.apply(x)
        rest = args[1:]
        # an in-place activation (hardtanh_, leaky_relu(inplace=True)) runs out of place inside the Function
        kw = {**kwargs, "inplace": False} if kwargs.get("inplace") else kwargs
        return _PassFn.apply(x, lambda t: func(t, *rest, **kw))

    def warn_uncovered(self, model_name: str) -> None:
        """Warn once per model and set of names about relevance-mixing calls no rule covered."""
        if self.uncovered:
            names = sorted(self.uncovered)
            warn_once(
                ("lrp-uncovered", model_name, tuple(names)),
                f"LRP on {model_name}: no rule covers {', '.join(f'{n} (x{self.uncovered[n]})' for n in names)}; "
                "relevance follows the gradient there and is not conserved through them",
                LRPCoverageWarning,
            )


def lrp_relevance(model: nn.Module, inputs: torch.Tensor, seed: torch.Tensor, composite: Composite) -> torch.Tensor:
    """Relevance of ``seed`` at the output, propagated to the inputs by ``composite``'s rules.

    Parameters
    ----------
    model
        The network (run in eval mode, never modified).
    inputs
        ``(N, C, H, W)`` model-ready inputs.
    seed
        ``(N, K)`` relevance at the logits (a one-hot of the target, as zennit's ``attr_output``).
    composite
        The rules.

    Returns
    -------
    torch.Tensor
        ``(N, C, H, W)`` relevance.
    """
    leaf = inputs.detach().clone().requires_grad_(True)
    mode = LRPInterceptor(composite)
    with torch.enable_grad(), eval_mode(model):
        with mode:
            out = logits_of(model(leaf.clone()))  # a copy: the model may modify its input in place
        if not out.requires_grad:
            raise ModelError(
                f"LRP needs the gradient graph, but {type(model).__name__}'s forward disables gradients "
                "(e.g. @torch.no_grad()); remove that, or use occlusion, which needs only forward passes"
            )
        (rel,) = torch.autograd.grad(out, leaf, seed.to(out))
    mode.warn_uncovered(type(model).__name__)
    return rel


@dataclass(frozen=True)
class LRP:
    """Layer-wise Relevance Propagation (Bach et al. 2015) with zennit's composites.

    Options: ``composite`` (one of :data:`~.lrprules.COMPOSITES`, default ``"epsilon_plus"``),
    ``epsilon`` (1e-6), ``gamma`` (0.25), ``alpha`` (2.0; β = α − 1), ``stabilizer`` (1e-6),
    ``first`` (the first layer's rule, one of :data:`~.lrprules.FIRST_RULES`; None: the
    composite's), ``low`` / ``high`` (the z^B rule of ``"epsilon_gamma_box"`` or
    ``first="zbox"``: the smallest and largest model-ready pixel values).
    """

    name: str = "lrp"
    label: str = "LRP"
    description: str = (
        "LRP: the class score shared back layer by layer by conservation rules (zennit's composites), "
        "on modules and functional calls alike (Bach et al. 2015)"
    )
    needs_relu_rules: bool = False
    needs_gradients: bool = True
    single_backward: bool = False  # runs its own forward and backward; the explainer's graph is untouched

    def compute(self, explainer: Explainer, targets: torch.Tensor, **options: Any) -> torch.Tensor:
        """The relevance of ``targets`` ``(N,)`` on the explainer's inputs, ``(N, C, H, W)``."""
        opts = check_options(self.name, options, {"composite": "epsilon_plus", "epsilon": 1e-6, "gamma": 0.25,
                                                  "alpha": 2.0, "stabilizer": 1e-6, "low": None, "high": None,
                                                  "first": None})
        composite = make_composite(opts.pop("composite"), **opts)
        reason = explainer.unavailable(self.name)
        if reason is not None:  # the same message as every gradient method's (a no_grad forward)
            raise ModelError(reason)
        return lrp_relevance(explainer.model, explainer.inputs, explainer.target_seed(targets), composite)

