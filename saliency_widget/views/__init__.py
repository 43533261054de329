"""The view model: what every surface shows, decided once (no Jupyter import).

Floor: figures, reports and views (above ``engine``, ``data``, the render primitives and
``analysis``; below ``widget``, ``classroom`` and ``cli``).

* :mod:`.options` -- :class:`DisplayOptions` (sign, clip, colormap, overlay, alpha) and its one check.
* :mod:`.classes` -- class names, the chart's classes, the method check, projection rules, strongest position.
* :mod:`.pipeline` -- from a state snapshot to the panels of one explorer view (:func:`~.pipeline.compute_view`).
* :mod:`.snapshot`, :mod:`.viewresult` -- the frozen state a view is computed from; what it shows, drawn with any options.
* :mod:`.memo`, :mod:`.layermenu`, :mod:`.compare` -- the explorer's memo, layer menu and compare composite.
"""

from __future__ import annotations

from .classes import (
    ALL_BARS,
    TOPK,
    bar_entries,
    chart_classes,
    check_methods,
    class_name,
    class_names,
    projection_rule,
    projection_rules,
    strongest,
    top_classes,
)
from .options import CLIPS, DisplayOptions, check_option

__all__ = [
    "ALL_BARS",
    "CLIPS",
    "TOPK",
    "DisplayOptions",
    "bar_entries",
    "chart_classes",
    "check_methods",
    "check_option",
    "class_name",
    "class_names",
    "projection_rule",
    "projection_rules",
    "strongest",
    "top_classes",
]
