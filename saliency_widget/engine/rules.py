"""Backward rules at a ReLU: the one place where Gradient, DeconvNet and Guided Backprop differ.

With forward input ``x`` (so forward output ``z = relu(x)``) and incoming signal ``R``:

=================  =============================  ==========================
method             passes back                    paper
=================  =============================  ==========================
gradient           ``R * (x > 0)``                Simonyan et al. 2013
deconvnet          ``relu(R)``                    Zeiler & Fergus 2014
guided_backprop    ``R * (x > 0) * (R > 0)``      Springenberg et al. 2014
=================  =============================  ==========================

Each rule is a tiny stateless object; the interception mechanism in
:mod:`saliency_widget.engine.intercept` applies whichever one is current when the backward
pass runs, so one forward pass serves all three.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError, MethodError, choices

__all__ = ["DECONVNET", "GRADIENT", "GUIDED_BACKPROP", "RULES", "ReLURule", "changes_relus", "get_rule", "relu_backward"]


@dataclass(frozen=True)
class ReLURule:
    """How a backward signal crosses a ReLU.

    Attributes
    ----------
    name
        Registry name (``"gradient"``, ``"deconvnet"``, ``"guided_backprop"``).
    forward_mask
        Zero the signal where the forward input was not positive (``x <= 0``).
    signal_mask
        Zero the signal where the signal itself is not positive (``R <= 0``).
    """

    name: str
    forward_mask: bool
    signal_mask: bool

    @property
    def is_plain_gradient(self) -> bool:
        """True for the ordinary ReLU gradient (``forward_mask`` only), which needs no interception.

        Autograd's own ReLU backward already applies it, so a forward without the rule
        mechanism serves it, and the checks on intercepted ReLUs do not apply.
        """
        return self.forward_mask and not self.signal_mask

    def backward(self, grad: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:
        """Apply the rule.

        Parameters
        ----------
        grad
            Incoming signal ``R``, any shape.
        out
            Forward output ``relu(x)`` of the same shape (``out > 0`` iff ``x > 0``);
            may be None for rules without ``forward_mask``.

        Returns
        -------
        torch.Tensor
            The signal passed to the ReLU's input, same shape as ``grad``.
        """
        if not self.forward_mask:
            return grad.clamp(min=0) if self.signal_mask else grad
        if out is None:  # pragma: no cover - the mechanism always saves out when needed
            raise MethodError(f"rule {self.name!r} needs the forward output, which was not saved")
        # The same kernel autograd uses for relu's own backward, so "gradient" is bit-identical.
        masked = torch.ops.aten.threshold_backward(grad, out, 0)
        # Guided Backprop: then the signal mask, in place on the new tensor (never on the
        # incoming grad, which autograd may share between branches): one allocation, not two
        return masked.clamp_(min=0) if self.signal_mask else masked


GRADIENT = ReLURule("gradient", forward_mask=True, signal_mask=False)
DECONVNET = ReLURule("deconvnet", forward_mask=False, signal_mask=True)
GUIDED_BACKPROP = ReLURule("guided_backprop", forward_mask=True, signal_mask=True)

RULES: dict[str, ReLURule] = {r.name: r for r in (GRADIENT, DECONVNET, GUIDED_BACKPROP)}


def changes_relus(rule: ReLURule) -> bool:
    """Whether ``rule`` passes anything but autograd's own ReLU gradient (a subclass with its own arithmetic does)."""
    return not rule.is_plain_gradient or type(rule).backward is not ReLURule.backward


def get_rule(name: str) -> ReLURule:
    """Return the ReLU rule called ``name``; raise :class:`MethodError` listing the valid names."""
    try:
        return RULES[name]
    except (KeyError, TypeError):
        raise MethodError(
            f"unknown ReLU rule {name!r}; expected one of {choices(RULES)}"
        ) from None


def relu_backward(x: torch.Tensor, signal: torch.Tensor, rule: str | ReLURule) -> torch.Tensor:
    """Pass ``signal`` back through ``relu(x)`` with a rule: the engine's own arithmetic, for teaching.

    Parameters
    ----------
    x
        Forward input of the ReLU, any shape.
    signal
        Incoming backward signal ``R``, same shape as ``x``.
    rule
        A rule name or :class:`ReLURule`.

    Returns
    -------
    torch.Tensor
        Same shape as ``x``.

    Examples
    --------
    >>> x = torch.tensor([[1., -2.], [-4., 5.]]); R = torch.tensor([[-2., -2.], [4., 8.]])
    >>> relu_backward(x, R, "guided_backprop")
    tensor([[0., 0.],
            [0., 8.]])
    """
    r = get_rule(rule) if isinstance(rule, str) else rule
    if x.shape != signal.shape:
        raise InputError(f"x has shape {tuple(x.shape)} but signal has {tuple(signal.shape)}; they must match")
    return r.backward(signal, torch.relu(x))
