"""An atlas of a model: a static site with every filter's top-9, projections, feature visualization and histogram.

Figures-and-reports floor: pure site generation (imports no Jupyter package). Build one with
:func:`build_atlas` (or ``saliency-widget atlas``, also under torchrun); the pages come from
:mod:`saliency_widget.atlas.pages`, the histograms from :mod:`saliency_widget.atlas.histograms`.
"""

from .build import FORMAT, VERSION, Atlas, build_atlas, site_size

__all__ = ["FORMAT", "VERSION", "Atlas", "build_atlas", "site_size"]
