"""Feature visualization at the engine floor: what does a unit (or a class) want to see.

Modules, one job each: :mod:`.objectives` (what is maximised, composable), :mod:`.params`
(pixel, Fourier and MACO image parametrisations), :mod:`.transforms` (transformation
robustness), :mod:`.readout` (layer outputs through the engine's capture and layouts),
:mod:`.optimize` (the batched gradient ascent, :func:`render`) and :mod:`.result`
(:class:`Visualization`). Imports only :mod:`saliency_widget.errors` and the engine; the
public :func:`saliency_widget.visualize` adds the model's own preprocessing.
"""

from __future__ import annotations

from . import objectives
from .objectives import Objective
from .optimize import render
from .params import PARAMS
from .result import Visualization
from .transforms import StandardTransform

__all__ = ["PARAMS", "Objective", "StandardTransform", "Visualization", "objectives", "render"]
