"""Objectives for :func:`saliency_widget.visualize` (see :mod:`saliency_widget.featviz.objectives`)."""

from __future__ import annotations

from .featviz.objectives import (
    Objective,
    blur,
    channel,
    class_logit,
    dream,
    inversion,
    l1,
    l2,
    neuron,
    total_variation,
)

__all__ = ["Objective", "blur", "channel", "class_logit", "dream", "inversion", "l1", "l2", "neuron", "total_variation"]
