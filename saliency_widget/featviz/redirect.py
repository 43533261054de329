"""Lucid's redirected ReLU gradient: a unit that is off on the start image still gets a signal.

A channel of a ReLU layer that is zero everywhere on a near-grey start image has zero
gradient, so plain gradient ascent never moves it. Lucid (``redirected_relu_grad``) lets the
signal cross a ReLU whose input is negative when it would push that input up, but only for
the images whose ordinary ReLU gradient is zero everywhere; once a unit is on, the ordinary
gradient takes over. The override runs through the engine's one ReLU interception
(:class:`~saliency_widget.engine.intercept.ReLUInterceptor`), which lives inside the forward
pass only and never touches the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..engine.rules import ReLURule

__all__ = ["REDIRECTED"]


@dataclass(frozen=True)
class _Redirected(ReLURule):
    """Ordinary ReLU gradient per image, or, where that is all zero, the signal that raises the input.

    ``grad`` is the gradient of the loss (minus the objective): a negative value asks for a
    larger input, and is passed where the unit is off.
    """

    def backward(self, grad: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:  # noqa: D102
        assert out is not None  # forward_mask=True: the mechanism saves the output
        plain = torch.ops.aten.threshold_backward(grad, out, 0)
        dead = ~plain.flatten(1).ne(0).any(1)
        # Once every image's units are on (after the first few steps) the ordinary gradient is the
        # answer: skip building the redirected one (half of a step's backward on the CPU). On a GPU
        # the check would cost a sync per ReLU, so there both are always built.
        if not grad.is_cuda and not bool(dead.any()):
            return plain
        redirected = torch.where((out <= 0) & (grad > 0), torch.zeros_like(grad), grad)
        return torch.where(dead.view(-1, *([1] * (grad.dim() - 1))), redirected, plain)


REDIRECTED: ReLURule = _Redirected("redirected", forward_mask=True, signal_mask=False)
"""The redirected ReLU rule, for a :class:`~saliency_widget.engine.intercept.RuleBox`."""
