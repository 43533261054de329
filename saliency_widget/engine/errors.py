"""The engine's error family lives at the package top (:mod:`saliency_widget.errors`); re-exported here."""

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
    choices,
    reset_warnings,
    warn_once,
)

__all__ = [
    "DegenerateMapWarning",
    "InputError",
    "LayerError",
    "MethodError",
    "ModelError",
    "NonReLUActivationWarning",
    "SaliencyError",
    "SaliencyWarning",
    "choices",
    "reset_warnings",
    "warn_once",
]
