"""What an attribution method is: the :class:`Method` protocol, and the ReLU-rule methods.

A method is a small object with a ``name``, a human ``label``, a one-line ``description``
(for tooltips), two flags the engine plans with, and a ``compute`` that receives an
:class:`~saliency_widget.engine.session.Explainer` (which holds the cached forward pass) and
per-sample targets. ``compute`` uses only the Explainer's public surface (``inputs``,
``logits``, ``activation``, ``record``, ``target_seed``, ``backward_logits``,
``backward_to``, ``layer_gradient``), so every backward goes through its checks.

The built-in methods are listed, in order, in :mod:`saliency_widget.engine.registry`; a
third-party method is added with :func:`~saliency_widget.engine.registry.register_method`
and then appears everywhere (``saliency(..., method=...)``, ``Explainer.saliency``, the widget).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

from ..errors import MethodError
from .rules import ReLURule

if TYPE_CHECKING:  # pragma: no cover
    from .session import Explainer

__all__ = ["REQUIRED_ATTRIBUTES", "Method", "RuleMethod", "check_options"]


class Method(Protocol):
    """What the registry holds: every member is required (checked by ``register_method``)."""

    @property
    def name(self) -> str:
        """Registry name, e.g. ``"guided_backprop"``."""
        ...

    @property
    def label(self) -> str:
        """Short human label for buttons, e.g. ``"Guided Backprop"``."""
        ...

    @property
    def description(self) -> str:
        """One line for tooltips that says what the map is and names the paper."""
        ...

    @property
    def needs_relu_rules(self) -> bool:
        """True when the recorded forward must route ReLUs through the rule mechanism."""
        ...

    @property
    def needs_gradients(self) -> bool:
        """True when the method runs a backward pass (False: forwards only, e.g. occlusion).

        A model whose forward disables gradients (``@torch.no_grad()``) runs only methods without.
        """
        ...

    @property
    def single_backward(self) -> bool:
        """True when ``compute`` runs exactly one backward through the full graph, last.

        One-shot callers may then free the graph during it.
        """
        ...

    def compute(self, explainer: Explainer, targets: torch.Tensor, **options: Any) -> torch.Tensor:
        """Return the raw attribution, shape ``(N, C, H, W)`` like the inputs.

        ``targets`` is ``(N,)`` class indices on the model's device.
        """
        ...


#: Attribute name -> type every registered method must have (besides a callable ``compute``).
REQUIRED_ATTRIBUTES: dict[str, type] = {
    "name": str,
    "label": str,
    "description": str,
    "needs_relu_rules": bool,
    "needs_gradients": bool,
    "single_backward": bool,
}


@dataclass(frozen=True)
class RuleMethod:
    """Backpropagate the target logit to the input with one ReLU rule.

    Attributes
    ----------
    rule
        The ReLU rule; its name is the method's name.
    label, description
        As in :class:`Method`.
    """

    rule: ReLURule
    label: str
    description: str
    single_backward: bool = True
    needs_gradients: bool = True

    @property
    def name(self) -> str:
        """The rule's name, which is the method's."""
        return self.rule.name

    @property
    def needs_relu_rules(self) -> bool:
        """True unless the rule is the plain gradient."""
        # The plain gradient is autograd's own ReLU backward: no interception needed.
        return not self.rule.is_plain_gradient

    def compute(self, explainer: Explainer, targets: torch.Tensor, **options: Any) -> torch.Tensor:
        """The map of ``targets`` ``(N,)`` on the explainer's inputs, ``(N, C, H, W)``."""
        if options:
            raise MethodError(f"method {self.name!r} takes no options, got {sorted(options)}")
        return explainer.backward_logits(targets, self.rule)


def check_options(method: str, options: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with ``options``; unknown option names raise :class:`MethodError` listing the valid ones."""
    extra = sorted(set(options) - set(defaults))
    if extra:
        raise MethodError(f"method {method!r} got unknown option(s) {extra}; valid options: {sorted(defaults)}")
    return {**defaults, **options}
