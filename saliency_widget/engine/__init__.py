"""The pure-PyTorch engine of saliency-widget (never imports widget code).

Modules, one job each: :mod:`.checks` (models, inputs, targets, layer names),
:mod:`.capture` (recording a forward pass), :mod:`.sharing` (one model, many sessions and threads), :mod:`.intercept` (ReLU backward rules at run
time), :mod:`.walk` (a model's submodules), :mod:`.rules` (the rules), :mod:`.seeds` (where a backward starts),
:mod:`.session` (the :class:`Explainer`), :mod:`.recording` (the one recorded forward it
answers from), :mod:`.layouts` (NCHW, channels-last and token layouts, followed op by op through
the axis algebra of :mod:`.axes`), :mod:`.outputs`
(logits of any model output), :mod:`.compiled` (torch.compile unwrapped), :mod:`.receptive` (receptive fields),
:mod:`.methods` / :mod:`.registry` (what a method is, and which exist), :mod:`.cam` (with
:func:`default_cam_layer`, the one default Grad-CAM layer),
:mod:`.sampling`, :mod:`.occlusion` (the methods beyond the ReLU rules), :mod:`.api`
(one-shot functions) and :mod:`.keys` (:class:`LayerKey`).

Floor 1 of 5 (errors < engine, data, models, render primitives < analysis < figures, reports,
views < widget, classroom, cli): imports ``errors`` only, never a module above it.
"""

from __future__ import annotations

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
from .api import layers, project, saliency
from .cam import default_cam_layer
from .capture import LayerInfo
from .keys import LayerKey
from .methods import Method
from .receptive import receptive_field, receptive_fields
from .registry import available_methods, get_method, method_label, register_method
from .rules import RULES, ReLURule, relu_backward
from .session import Explainer

__all__ = [
    "RULES",
    "DegenerateMapWarning",
    "Explainer",
    "InputError",
    "LayerError",
    "LayerInfo",
    "LayerKey",
    "Method",
    "MethodError",
    "ModelError",
    "NonReLUActivationWarning",
    "ReLURule",
    "SaliencyError",
    "SaliencyWarning",
    "available_methods",
    "default_cam_layer",
    "get_method",
    "layers",
    "method_label",
    "project",
    "receptive_field",
    "receptive_fields",
    "register_method",
    "relu_backward",
    "saliency",
]
