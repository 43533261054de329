"""The interactive explorer widget (ipywidgets, bqplot and an anywidget canvas).

Floor: the top one (with ``classroom`` and ``cli``): it may import every lower floor
(``engine``, ``data``, ``models``, ``analysis``, ``viz``, ``views``) and nothing below imports it.
The renderers live in :mod:`saliency_widget.viz` (``viz.render``, ``viz.report``).
"""

from __future__ import annotations

from .canvas import FeatureMapCanvas, esm_path
from .entry import explore
from .explorer import Explorer
from .renderlog import RenderRecord

__all__ = ["Explorer", "FeatureMapCanvas", "RenderRecord", "esm_path", "explore"]
