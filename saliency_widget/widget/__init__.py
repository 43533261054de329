"""The interactive explorer widget (ipywidgets, bqplot and an anywidget canvas).

``saliency_widget.widget.render`` and ``saliency_widget.widget.report`` are the old import
paths of :mod:`saliency_widget.viz.render` and :mod:`saliency_widget.viz.report`, kept as
aliases for existing notebooks.
"""

from __future__ import annotations

import sys

from ..viz import render, report
from .canvas import FeatureMapCanvas, esm_path
from .entry import explore
from .explorer import Explorer
from .renderlog import RenderRecord

# Old import paths (``from saliency_widget.widget import render``) keep working.
sys.modules[__name__ + ".render"] = render
sys.modules[__name__ + ".report"] = report

__all__ = ["Explorer", "FeatureMapCanvas", "RenderRecord", "esm_path", "explore"]
