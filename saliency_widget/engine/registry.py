"""The method registry: every attribution method the engine, the API and the widget know.

The built-in methods are declared here, once, in the order the widget lists them
(:data:`BUILTIN_METHODS`). Third-party methods join with :func:`register_method`.
"""

from __future__ import annotations

from typing import Any

from ..errors import MethodError, choices
from .cam import CAM_METHODS, GuidedGradCAM
from .lrp import LRP
from .methods import REQUIRED_ATTRIBUTES, Method, RuleMethod
from .occlusion import Occlusion
from .rules import DECONVNET, GRADIENT, GUIDED_BACKPROP
from .sampling import InputXGradient, IntegratedGradients, SmoothGrad

__all__ = ["BUILTIN_METHODS", "available_methods", "get_method", "method_label", "register_method"]

BUILTIN_METHODS: tuple[Method, ...] = (
    RuleMethod(
        GRADIENT,
        "Gradient",
        "Gradient: how much each pixel changes the class score, the plain backward pass (Simonyan et al. 2013)",
    ),
    RuleMethod(
        DECONVNET,
        "DeconvNet",
        "DeconvNet: backward pass that keeps only positive signals at ReLUs, ignoring the forward pass (Zeiler & Fergus 2014)",
    ),
    RuleMethod(
        GUIDED_BACKPROP,
        "Guided Backprop",
        "Guided Backprop: gradient with negative signals blocked at ReLUs (Springenberg et al. 2014)",
    ),
    CAM_METHODS[0],
    GuidedGradCAM(),
    *CAM_METHODS[1:],
    SmoothGrad(),
    IntegratedGradients(),
    InputXGradient(),
    Occlusion(),
    LRP(),
)

_REGISTRY: dict[str, Method] = {}


def _check_method(method: Any) -> None:
    """Raise :class:`MethodError` unless ``method`` has every member of :class:`Method`."""
    name = getattr(method, "name", None)
    missing = [a for a in REQUIRED_ATTRIBUTES if not hasattr(method, a)]
    wrong = [
        f"{a} must be {t.__name__}, got {type(getattr(method, a)).__name__}"
        for a, t in REQUIRED_ATTRIBUTES.items()
        if a not in missing and not isinstance(getattr(method, a), t)
    ]
    if not callable(getattr(method, "compute", None)):
        missing.append("compute")
    if missing or wrong:
        raise MethodError(
            f"cannot register method {name!r} ({type(method).__name__}): "
            + "; ".join(([f"missing {missing}"] if missing else []) + wrong)
            + f"; a method declares {sorted([*REQUIRED_ATTRIBUTES, 'compute'])} "
            "(see saliency_widget.engine.methods.Method)"
        )


def register_method(method: Method, *, replace: bool = False) -> Method:
    """Add ``method`` to the registry under ``method.name``, after the ones already there.

    Parameters
    ----------
    method
        An object with every member of :class:`~saliency_widget.engine.methods.Method`.
    replace
        Allow replacing a registered method of the same name (it keeps its place).

    Returns
    -------
    Method
        ``method``, so the call can be used as an expression.
    """
    _check_method(method)
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


def available_methods() -> list[str]:
    """Names of the registered methods: the built-ins in :data:`BUILTIN_METHODS` order, then plugins."""
    return list(_REGISTRY)


def method_label(name: str) -> str:
    """Human-readable label of a registered method."""
    return get_method(name).label


for _method in BUILTIN_METHODS:
    register_method(_method)
del _method
