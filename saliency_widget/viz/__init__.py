"""Pure rendering: maps to RGB/PNG, HTML reports, figures and image decoding.

Nothing here imports a Jupyter package (ipywidgets, bqplot, anywidget), so the CLI, scripts
and reports use it without the notebook stack; nothing here imports the widget layer either.

* :mod:`.render` -- maps to RGB, colormaps, overlays, panels, PNG encoding.
* :mod:`.images` -- image decoding, a model's labels and preprocessing, target resolution.
* :mod:`.figures` -- analysis figures (top-k grids, sanity-check plots) as PNG.
* :mod:`.report` -- self-contained HTML reports and PNG grids.

Two floors live here: the render primitives (``render``, ``colorbar``, ``images``, ``modelio``,
``bundle``) sit with ``engine`` and ``data``, so ``analysis`` may use them; figures, reports and
pages (every other module) sit above ``analysis``. So this package imports nothing itself: its
submodules are lazy exports (PEP 562), and importing a primitive never runs a report.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["figures", "images", "render", "report"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
