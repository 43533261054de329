"""Pure rendering: maps to RGB/PNG, HTML reports, figures and image decoding.

Nothing here imports a Jupyter package (ipywidgets, bqplot, anywidget), so the CLI, scripts
and reports use it without the notebook stack.
"""

from __future__ import annotations

from . import render, report

__all__ = ["render", "report"]
