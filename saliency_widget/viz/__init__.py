"""Pure rendering: maps to RGB/PNG, HTML reports, figures and image decoding.

Nothing here imports a Jupyter package (ipywidgets, bqplot, anywidget), so the CLI, scripts
and reports use it without the notebook stack; nothing here imports the widget layer either.

* :mod:`.render` -- maps to RGB, colormaps, overlays, panels, PNG encoding.
* :mod:`.images` -- image decoding, a model's labels and preprocessing, target resolution.
* :mod:`.figures` -- analysis figures (top-k grids, sanity-check plots) as PNG.
* :mod:`.report` -- self-contained HTML reports and PNG grids.
"""

from __future__ import annotations

from . import figures, images, render, report

__all__ = ["figures", "images", "render", "report"]
