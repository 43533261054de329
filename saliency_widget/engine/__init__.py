"""The pure-PyTorch engine of saliency-widget (never imports widget code)."""

from __future__ import annotations

from .api import layers, project, saliency
from ..errors import (
    DegenerateMapWarning,
    InputError,
    LayerError,
    MethodError,
    ModelError,
    NonReLUActivationWarning,
    SaliencyError,
    SaliencyWarning,
)
from .methods import available_methods, get_method, register_method
# Importing these registers their methods, in this order (the widget lists them so).
from . import cam  # noqa: E402,F401,I001
from . import sampling  # noqa: E402,F401,I001
from . import occlusion  # noqa: E402,F401,I001
from .rules import RULES, ReLURule, relu_backward
from .session import Explainer, LayerInfo, receptive_field, receptive_fields

__all__ = [
    "saliency",
    "project",
    "layers",
    "Explainer",
    "LayerInfo",
    "receptive_field",
    "receptive_fields",
    "available_methods",
    "get_method",
    "register_method",
    "RULES",
    "ReLURule",
    "relu_backward",
    "SaliencyError",
    "InputError",
    "LayerError",
    "MethodError",
    "ModelError",
    "SaliencyWarning",
    "NonReLUActivationWarning",
    "DegenerateMapWarning",
]
