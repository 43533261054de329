"""Classroom tools: the three ReLU rules and transposed convolution, as widgets and functions.

Floor: the top one (with ``widget`` and ``cli``); it may import every lower floor.
"""

from __future__ import annotations

from .transposed import (
    bilinear_kernel,
    bilinear_upsample,
    conv_matrix,
    conv_transpose2d_tf,
    overlap_counts,
    tf_same_padding,
    transposed_is_input_gradient,
    zero_insertion,
)

__all__ = [
    "conv_transpose2d_tf",
    "tf_same_padding",
    "conv_matrix",
    "zero_insertion",
    "transposed_is_input_gradient",
    "overlap_counts",
    "bilinear_kernel",
    "bilinear_upsample",
    "relu_rules_explorer",
    "transposed_conv_explorer",
]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # The explorers need ipywidgets; the functions above do not.
    if name in ("relu_rules_explorer", "transposed_conv_explorer", "ReLURulesExplorer", "TransposedConvExplorer"):
        from . import explorers

        return getattr(explorers, name)
    raise AttributeError(name)
