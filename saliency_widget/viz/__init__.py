"""Pure rendering: maps to RGB/PNG, HTML reports, figures and image decoding.

Nothing here imports a Jupyter package (ipywidgets, bqplot, anywidget), so the CLI, scripts
and reports use it without the notebook stack; nothing here imports the widget layer either.

* :mod:`.render` -- maps to RGB, colormaps, overlays, panels, PNG encoding (render primitives).
* :mod:`.images` -- image decoding, a model's labels and preprocessing, target resolution.
* :mod:`.figures` -- analysis figures (top-k grids, sanity-check plots) as PNG.
* :mod:`.report` -- self-contained HTML reports and PNG grids.

The submodules load on first use (PEP 562), so importing the render primitives does not load
the reports, which use the view model (:mod:`saliency_widget.views`) that uses the primitives.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["figures", "images", "render", "report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
