"""saliency-widget: see what a convolutional network looks at, live, in Jupyter.

The engine (``saliency``, ``project``, ``layers``, ``Explainer``) is pure PyTorch; the widget
(``explore``) is imported lazily so that the engine works without Jupyter installed.

The package is built in five floors, lowest first; a module imports only its own floor or
lower (``tests/tools/test_import_graph.py`` checks it, with no cycle and no private reach):

0. :mod:`.errors`
1. :mod:`.engine`, :mod:`.data`, :mod:`.models`, :mod:`.featviz` and the render primitives of :mod:`.viz`
2. :mod:`.analysis`
3. figures, reports and views (the rest of :mod:`.viz`)
4. :mod:`.widget`, :mod:`.classroom`, :mod:`.cli`
"""

from __future__ import annotations

from typing import Any

from . import objectives
from .engine import (
    DegenerateMapWarning,
    Explainer,
    InputError,
    LayerError,
    LayerInfo,
    LayerKey,
    MethodError,
    ModelError,
    NonReLUActivationWarning,
    SaliencyError,
    SaliencyWarning,
    available_methods,
    layers,
    project,
    relu_backward,
    saliency,
)
from .featviz import Visualization

__version__ = "0.1.0"

__all__ = [
    "DegenerateMapWarning",
    "Explainer",
    "InputError",
    "LayerError",
    "LayerInfo",
    "LayerKey",
    "MethodError",
    "ModelError",
    "NonReLUActivationWarning",
    "SaliencyError",
    "SaliencyWarning",
    "Visualization",
    "available_methods",
    "explore",
    "layers",
    "objectives",
    "project",
    "relu_backward",
    "saliency",
    "visualize",
]


def __getattr__(name: str) -> Any:
    # Lazy: the widget layer pulls in ipywidgets/bqplot/anywidget.
    if name == "explore":
        from .widget import explore

        return explore
    if name == "visualize":  # feature visualization; finds the model's preprocessing like the widget
        from .viz.visualize import visualize

        return visualize
    raise AttributeError(f"module 'saliency_widget' has no attribute {name!r}")
