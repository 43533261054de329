"""Analyses over datasets and models: Zeiler-Fergus top-k per filter, sanity checks, pointing game.

Pure PyTorch (plus tqdm); the widget layer draws them.
"""

from __future__ import annotations

from .pointing import PointingResult, pointing_game
from .sanity import SanityResult, sanity_check, spearman, ssim
from .topk import TopActivations, top_activations

__all__ = [
    "PointingResult",
    "SanityResult",
    "TopActivations",
    "pointing_game",
    "sanity_check",
    "spearman",
    "ssim",
    "top_activations",
]
