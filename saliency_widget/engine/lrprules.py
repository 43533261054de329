"""Layer-wise Relevance Propagation rules as tiny objects, and the composites that assign them.

A rule says how the relevance ``R`` at the output ``z = f(x; W, b)`` of a layer that is linear
in its input (a convolution, a dense layer, a ``matmul`` with a parameter) is shared among
the inputs. Each rule builds one or more modified copies ``f(x'; W', b')`` of the layer,
divides ``R`` by a stabilised denominator and pulls the result back through the modified
layer with one vector-Jacobian product, exactly as zennit's ``BasicHook`` does:

===================  ===============================================================  =====================
rule                 relevance passed to the input                                    paper
===================  ===============================================================  =====================
``Epsilon``          ``x * W^T [R / (z + eps sign z)]``                               Bach et al. 2015
``ZPlus``            z⁺: positive contributions only (``W⁺ x⁺ + W⁻ x⁻``)              Montavon et al. 2017
``AlphaBeta``        ``alpha`` times the positive minus ``beta`` times the negative   Bach et al. 2015
``Gamma``            ``W + gamma W⁺`` favours positive contributions                  Montavon et al. 2019
``ZBox``             z^B for a bounded input ``low <= x <= high`` (the first layer)   Montavon et al. 2017
``Flat``             ``W = 1``, ``x = 1``: spread evenly over the receptive field       Lapuschkin et al. 2019
``WSquare``          ``W²``, ``x = 1``: shared by squared weights (unbounded first layer) Montavon et al. 2017
``Norm``             ``x * d f^T [R / z]`` for parameter-free linear ops (sums, means)  (zennit's Norm)
===================  ===============================================================  =====================

The stabiliser is zennit's: ``z + eps * s`` with ``s = sign(z)``, and ``s = 1`` where ``z == 0``.
A :class:`Composite` maps layer kinds (``"conv"``, ``"dense"``, and the first of them) to rules;
:data:`COMPOSITES` holds zennit's composites under their names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch

from ..errors import MethodError, choices

__all__ = [
    "COMPOSITES",
    "AlphaBeta",
    "Composite",
    "Epsilon",
    "Flat",
    "Gamma",
    "LinearOp",
    "Norm",
    "FIRST_RULES",
    "Rule",
    "WSquare",
    "ZBox",
    "ZPlus",
    "make_composite",
    "stabilize",
]

#: ``f(x, weight, bias)``: a layer that is linear in ``x`` (bias may be None).
LinearOp = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def stabilize(z: torch.Tensor, eps: float) -> torch.Tensor:
    """``z + eps * sign(z)`` with sign 1 at zero (zennit's stabiliser), any shape."""
    return z + ((z == 0).to(z) + z.sign()) * eps


def _pull(op: LinearOp, xs: Sequence[torch.Tensor], params: Sequence[tuple[torch.Tensor, torch.Tensor | None]],
          denominators: Callable[[list[torch.Tensor]], list[torch.Tensor]], R: torch.Tensor) -> list[torch.Tensor]:
    """Run ``op`` on each modified input/parameter pair and pull ``R / denominator`` back to each input.

    Parameters
    ----------
    op
        The layer, linear in its input.
    xs, params
        One modified input (shape of the layer's input) and one ``(weight, bias)`` per term.
    denominators
        From the terms' outputs (each shaped like ``R``), the signal sent back through each term.
    R
        Relevance at the layer's output.

    Returns
    -------
    list of torch.Tensor
        The vector-Jacobian product of each term with respect to its input, each shaped like the input.
    """
    with torch.enable_grad():
        leaves = [x.detach().requires_grad_(True) for x in xs]
        outs = [op(x, w, b) for x, (w, b) in zip(leaves, params)]
        signals = denominators(outs)
        return list(torch.autograd.grad(outs, leaves, signals))


def _pos(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clamp(min=0)


def _neg(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clamp(max=0)


class Rule(Protocol):
    """What every rule offers: a name and the relevance at the input of one linear layer."""

    @property
    def name(self) -> str:
        """Short name, e.g. ``"epsilon"``."""
        ...

    def relevance(self, op: LinearOp, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  R: torch.Tensor) -> torch.Tensor:
        """Relevance at the input ``x`` (its shape) of ``z = op(x, weight, bias)`` carrying ``R`` (``z``'s shape)."""
        ...


@dataclass(frozen=True)
class Epsilon:
    """LRP-ε: ``R_in = x * W^T [R / stabilize(z, epsilon)]`` (ε = 0 is LRP-0)."""

    epsilon: float = 1e-6
    name: str = "epsilon"

    def relevance(self, op: LinearOp, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  R: torch.Tensor) -> torch.Tensor:
        """See :class:`Rule`."""
        (g,) = _pull(op, [x], [(weight, bias)], lambda outs: [R / stabilize(outs[0], self.epsilon)], R)
        return x * g


@dataclass(frozen=True)
class ZPlus:
    """z⁺ (α=1, β=0): ``z = W⁺ x⁺ + b⁺ + W⁻ x⁻``, shared by the positive contributions."""

    stabilizer: float = 1e-6
    name: str = "zplus"

    def relevance(self, op: LinearOp, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  R: torch.Tensor) -> torch.Tensor:
        """See :class:`Rule`."""
        xp, xn = x.clamp(min=0), x.clamp(max=0)

        def den(outs: list[torch.Tensor]) -> list[torch.Tensor]:
            return [R / stabilize(outs[0] + outs[1], self.stabilizer)] * 2

        gp, gn = _pull(op, [xp, xn], [(weight.clamp(min=0), _pos(bias)), (weight.clamp(max=0), None)], den, R)
        return xp * gp + xn * gn


@dataclass(frozen=True)
class AlphaBeta:
    """α-β: ``alpha`` times the positive share minus ``beta`` times the negative share (α − β = 1)."""

    alpha: float = 2.0
    beta: float = 1.0
    stabilizer: float = 1e-6
    name: str = "alpha_beta"

    def __post_init__(self) -> None:
        if self.alpha < 0 or self.beta < 0 or abs(self.alpha - self.beta - 1.0) > 1e-12:
            raise MethodError(
                f"alpha-beta rule got alpha={self.alpha!r}, beta={self.beta!r}; expected alpha >= 0, beta >= 0 "
                "and alpha - beta == 1 (relevance is conserved only then), e.g. alpha=2, beta=1"
            )

    def relevance(self, op: LinearOp, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  R: torch.Tensor) -> torch.Tensor:
        """See :class:`Rule`."""
        xp, xn = x.clamp(min=0), x.clamp(max=0)
        wp, wn = weight.clamp(min=0), weight.clamp(max=0)

        def den(outs: list[torch.Tensor]) -> list[torch.Tensor]:
            pos = R / stabilize(outs[0] + outs[1], self.stabilizer)
            neg = R / stabilize(outs[2] + outs[3], self.stabilizer)
            return [pos, pos, neg, neg]

        g = _pull(op, [xp, xn, xp, xn], [(wp, _pos(bias)), (wn, None), (wn, _neg(bias)), (wp, None)], den, R)
        return self.alpha * (xp * g[0] + xn * g[1]) - self.beta * (xp * g[2] + xn * g[3])


@dataclass(frozen=True)
class Gamma:
    """Generalised γ: weights ``W + γ W⁺`` for the positive output, ``W + γ W⁻`` for the negative one."""

    gamma: float = 0.25
    stabilizer: float = 1e-6
    name: str = "gamma"

    def relevance(self, op: LinearOp, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  R: torch.Tensor) -> torch.Tensor:
        """See :class:`Rule`."""
        xp, xn = x.clamp(min=0), x.clamp(max=0)
        g = self.gamma
        w_up = weight + g * weight.clamp(min=0)
        w_dn = weight + g * weight.clamp(max=0)
        b_up = None if bias is None else bias + g * bias.clamp(min=0)
        b_dn = None if bias is None else bias + g * bias.clamp(max=0)

        def den(outs: list[torch.Tensor]) -> list[torch.Tensor]:
            z = outs[4]
            up = (z > 0).to(R) * R / stabilize(outs[0] + outs[1], self.stabilizer)
            dn = (z < 0).to(R) * R / stabilize(outs[2] + outs[3], self.stabilizer)
            return [up, up, dn, dn, torch.zeros_like(R)]

        grads = _pull(op, [xp, xn, xp, xn, x], [(w_up, b_up), (w_dn, None), (w_dn, b_dn), (w_up, None), (weight, bias)],
                      den, R)
        return xp * grads[0] + xn * grads[1] + xp * grads[2] + xn * grads[3]


@dataclass(frozen=True)
class ZBox:
    """z^B for inputs bounded by ``low`` and ``high`` (scalars or per-channel, broadcast like ``x[0]``)."""

    low: Any
    high: Any
    stabilizer: float = 1e-6
    name: str = "zbox"

    def relevance(self, op: LinearOp, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  R: torch.Tensor) -> torch.Tensor:
        """See :class:`Rule`."""
        lo = _bound(self.low, x)
        hi = _bound(self.high, x)

        def den(outs: list[torch.Tensor]) -> list[torch.Tensor]:
            return [R / stabilize(outs[0] - outs[1] - outs[2], self.stabilizer)] * 3

        g = _pull(op, [x, lo, hi], [(weight, bias), (weight.clamp(min=0), _pos(bias)), (weight.clamp(max=0), _neg(bias))],
                  den, R)
        return x * g[0] - lo * g[1] - hi * g[2]


def _bound(value: Any, x: torch.Tensor) -> torch.Tensor:
    """``value`` (scalar, per-channel sequence or tensor) broadcast to ``x``'s shape ``(N, C, ...)``."""
    t = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    if t.dim() == 1 and x.dim() > 2 and t.numel() == x.shape[1]:
        t = t.view(1, -1, *([1] * (x.dim() - 2)))  # per channel
    try:
        return t.expand_as(x).clone()
    except RuntimeError:
        raise MethodError(
            f"LRP box bounds of shape {tuple(t.shape)} do not fit inputs of shape {tuple(x.shape)}; "
            "expected a number, one value per channel, or a tensor broadcastable to the inputs"
        ) from None


@dataclass(frozen=True)
class Flat:
    """Flat: every weight and input 1, no bias: relevance spread evenly over each output's receptive field."""

    stabilizer: float = 1e-6
    name: str = "flat"

    def relevance(self, op: LinearOp, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  R: torch.Tensor) -> torch.Tensor:
        """See :class:`Rule`."""
        (g,) = _pull(op, [torch.ones_like(x)], [(torch.ones_like(weight), None)],
                     lambda outs: [R / stabilize(outs[0], self.stabilizer)], R)
        return g


@dataclass(frozen=True)
class WSquare:
    """w²: inputs 1 and every parameter squared (the bias too, as zennit's ``WSquare``): shared by squared weights."""

    stabilizer: float = 1e-6
    name: str = "wsquare"

    def relevance(self, op: LinearOp, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  R: torch.Tensor) -> torch.Tensor:
        """See :class:`Rule`."""
        (g,) = _pull(op, [torch.ones_like(x)], [(weight * weight, None if bias is None else bias * bias)],
                     lambda outs: [R / stabilize(outs[0], self.stabilizer)], R)
        return g


@dataclass(frozen=True)
class Norm:
    """For parameter-free linear ops (sums of branches, average pooling): ``x * df^T [R / z]``.

    The ε rule's arithmetic with ``stabilizer`` as ε; a rule of its own so composites and
    warnings name it as zennit does.
    """

    stabilizer: float = 1e-6
    name: str = "norm"

    def relevance(self, op: LinearOp, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  R: torch.Tensor) -> torch.Tensor:
        """See :class:`Rule`."""
        return Epsilon(self.stabilizer).relevance(op, x, weight, bias, R)


@dataclass(frozen=True)
class Composite:
    """Which rule each kind of layer gets.

    Attributes
    ----------
    name
        The composite's name (``"epsilon_plus"``, ...).
    conv, dense
        Rules for convolutions (and transposed ones) and for dense layers (``F.linear``,
        ``matmul`` with a parameter).
    first
        Rule for the first convolution or dense layer the forward runs (None: its kind's rule).
    first_kinds
        The kinds ``first`` may apply to (zennit's ``first_map`` types).
    norm
        Rule for parameter-free linear ops: sums of two branches, average pooling, means.
    """

    name: str
    conv: Rule
    dense: Rule
    first: Rule | None = None
    first_kinds: tuple[str, ...] = ("conv", "dense")
    norm: Rule = field(default_factory=Norm)

    def rule_for(self, kind: str, is_first: bool) -> Rule:
        """The rule of a layer of ``kind`` (``"conv"`` or ``"dense"``); ``is_first``: the first such layer run."""
        if is_first and self.first is not None and kind in self.first_kinds:
            return self.first
        return self.conv if kind == "conv" else self.dense


#: composite name -> one-line description (zennit's composites, by their names).
COMPOSITES: dict[str, str] = {
    "epsilon": "ε for every convolution and dense layer",
    "epsilon_plus": "z⁺ for convolutions, ε for dense layers (zennit EpsilonPlus)",
    "epsilon_plus_flat": "as epsilon_plus, with the flat rule for the first layer (zennit EpsilonPlusFlat)",
    "epsilon_gamma_box": "z^B for the first convolution (bounds low/high), γ for the other convolutions, "
    "ε for dense layers (zennit EpsilonGammaBox)",
    "alpha_beta": "α-β for convolutions (α=2, β=1 by default; β = α − 1), ε for dense layers (zennit EpsilonAlpha2Beta1)",
}

#: first-layer rule name -> one-line description (``first=`` of :func:`make_composite`; None keeps the composite's).
FIRST_RULES: dict[str, str] = {
    "none": "no rule of its own: the first layer gets its kind's rule of the composite",
    "flat": "flat: relevance spread evenly over each output's receptive field (Lapuschkin et al. 2019)",
    "wsquare": "w²: shared by squared weights, for unbounded inputs (Montavon et al. 2017)",
    "zbox": "z^B: for inputs bounded by low and high, the model-ready pixel range (Montavon et al. 2017)",
}


def _number(label: str, value: Any, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= low:
        raise MethodError(f"LRP option {label}={value!r} is invalid; expected a number >= {low:g}")
    return float(value)


def _zbox(low: Any, high: Any, stabilizer: float, why: str) -> ZBox:
    if low is None or high is None:
        raise MethodError(
            f"LRP {why} needs low= and high=, the smallest and largest model-ready "
            "pixel values (per channel: (0 - mean) / std and (1 - mean) / std of the model's preprocessing)"
        )
    return ZBox(low, high, stabilizer)


def make_composite(name: Any, *, epsilon: float = 1e-6, gamma: float = 0.25, alpha: float = 2.0, stabilizer: float = 1e-6,
                   low: Any = None, high: Any = None, first: str | None = None) -> Composite:
    """Build the composite called ``name`` with its parameters.

    Parameters
    ----------
    name
        One of :data:`COMPOSITES`.
    epsilon
        ε of the ε rule (dense layers; every layer for ``"epsilon"``).
    gamma
        γ of the γ rule (``"epsilon_gamma_box"``).
    alpha
        α of the α-β rule (``"alpha_beta"``), at least 1; β = α − 1 so that relevance is conserved.
    stabilizer
        ε of every other rule's denominator.
    low, high
        Smallest and largest model-ready input values (the z^B rule: ``"epsilon_gamma_box"`` or
        ``first="zbox"``): numbers, one value per channel, or tensors broadcastable to the inputs.
    first
        The first layer's rule, one of :data:`FIRST_RULES` (``"none"``: its kind's rule), applied
        to the first convolution or dense layer run; None keeps the composite's own (flat for
        ``"epsilon_plus_flat"``, z^B on a first convolution for ``"epsilon_gamma_box"``, none
        for the others).

    Returns
    -------
    Composite
    """
    eps = _number("epsilon", epsilon)
    stab = _number("stabilizer", stabilizer)
    g = _number("gamma", gamma)
    a = _number("alpha", alpha, 1.0)
    if first is not None and first not in FIRST_RULES:
        raise MethodError(f"unknown LRP first-layer rule {first!r}; expected one of {choices(FIRST_RULES)} (or None: the composite's)")
    eps_rule = Epsilon(eps)
    norm = Norm(stab)
    if name == "epsilon":
        composite = Composite("epsilon", eps_rule, eps_rule, norm=norm)
    elif name == "epsilon_plus":
        composite = Composite("epsilon_plus", ZPlus(stab), eps_rule, norm=norm)
    elif name == "epsilon_plus_flat":
        composite = Composite("epsilon_plus_flat", ZPlus(stab), eps_rule, first=Flat(stab), norm=norm)
    elif name == "alpha_beta":
        composite = Composite("alpha_beta", AlphaBeta(a, a - 1.0, stab), eps_rule, norm=norm)
    elif name == "epsilon_gamma_box":
        box = None if first is not None else _zbox(low, high, stab, "composite 'epsilon_gamma_box'")
        composite = Composite("epsilon_gamma_box", Gamma(g, stab), eps_rule, first=box, first_kinds=("conv",), norm=norm)
    else:
        raise MethodError(f"unknown LRP composite {name!r}; expected one of {choices(COMPOSITES)}")
    if first is None:
        return composite
    rules: dict[str, Rule | None] = {"none": None, "flat": Flat(stab), "wsquare": WSquare(stab)}
    rule = rules[first] if first != "zbox" else _zbox(low, high, stab, "first-layer rule 'zbox'")
    return replace(composite, first=rule, first_kinds=("conv", "dense"))
