"""The method registry: every attribution method the engine, the API and the widget know.

A method is a small object with a ``name``, a human ``label`` and a ``compute`` that receives
an :class:`~saliency_widget.engine.session.Explainer` (which holds the cached forward pass)
and per-sample targets. New methods register here and appear everywhere without other
changes (``saliency(..., method=...)``, ``Explainer.saliency``, the widget's toggles).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

from ..errors import MethodError, choices
from .rules import RULES, ReLURule

if TYPE_CHECKING:  # pragma: no cover
    from .session import Explainer

__all__ = ["Method", "RuleMethod", "register_method", "get_method", "available_methods"]


class Method(Protocol):
    """What the registry holds."""

    name: str
    label: str
    #: True when the method sends the recorded forward back through ReLUs with a rule.
    needs_relu_rules: bool
    # Optional ``single_backward: bool``: True when ``compute`` runs exactly one backward through
    # the full graph and runs it last, so one-shot callers may free the graph during it.

    def compute(self, explainer: "Explainer", targets: torch.Tensor, **options: Any) -> torch.Tensor:
        """Return the raw attribution, shape ``(N, C, H, W)`` like the inputs."""
        ...


@dataclass(frozen=True)
class RuleMethod:
    """Backpropagate the target logit to the input with one ReLU rule."""

    rule: ReLURule
    label: str
    needs_relu_rules: bool = True
    single_backward: bool = True

    @property
    def name(self) -> str:
        return self.rule.name

    def compute(self, explainer: "Explainer", targets: torch.Tensor, **options: Any) -> torch.Tensor:
        if options:
            raise MethodError(f"method {self.name!r} takes no options, got {sorted(options)}")
        return explainer.backward_logits(targets, self.rule)


_REGISTRY: dict[str, Method] = {}


def register_method(method: Method, *, replace: bool = False) -> Method:
    """Add ``method`` to the registry under ``method.name``."""
    if method.name in _REGISTRY and not replace:
        raise MethodError(f"a method named {method.name!r} is already registered")
    _REGISTRY[method.name] = method
    return method


def get_method(name: Any) -> Method:
    """Look a method up by name; raise :class:`MethodError` listing the valid names."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise MethodError(f"unknown method {name!r}; expected one of {choices(_REGISTRY)}") from None


def check_options(method: str, options: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with ``options``; unknown option names raise :class:`MethodError` listing the valid ones."""
    extra = sorted(set(options) - set(defaults))
    if extra:
        raise MethodError(f"method {method!r} got unknown option(s) {extra}; valid options: {sorted(defaults)}")
    return {**defaults, **options}


def available_methods() -> list[str]:
    """Names of the registered methods, in registration order."""
    return list(_REGISTRY)


def method_label(name: str) -> str:
    """Human-readable label of a registered method."""
    return get_method(name).label


register_method(RuleMethod(RULES["gradient"], "Gradient"))
register_method(RuleMethod(RULES["deconvnet"], "DeconvNet"))
register_method(RuleMethod(RULES["guided_backprop"], "Guided Backprop"))
