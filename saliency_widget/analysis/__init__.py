"""Analyses over datasets and models: top-k per filter (and its mined index), sanity checks, pointing game, faithfulness.

Zeiler-Fergus top-k, Adebayo sanity checks, the pointing game, deletion / insertion curves.

Pure PyTorch (plus tqdm); the widget layer draws them. Floor 2 of 5 (errors < engine, data,
models, render primitives < analysis < figures, reports, views < widget, classroom, cli): imports
the engine, data, models and the render primitives (``viz.render``), never figures or reports.
Long scans report through :mod:`saliency_widget.engine.progress` (and stop on ``Cancelled``).
"""

from __future__ import annotations

from .faithfulness import FaithfulnessResult, deletion_insertion
from .faithrandom import faithfulness_vs_randomised, randomised_copy
from .index import MiningIndex, TopRecord, load_index
from .mining import mine
from .pointing import PointingResult, pointing_game
from .sanity import SanityResult, sanity_check, spearman, ssim
from .topk import TopActivations, top_activations

__all__ = [
    "FaithfulnessResult",
    "MiningIndex",
    "PointingResult",
    "SanityResult",
    "TopActivations",
    "TopRecord",
    "deletion_insertion",
    "faithfulness_vs_randomised",
    "load_index",
    "mine",
    "pointing_game",
    "randomised_copy",
    "sanity_check",
    "spearman",
    "ssim",
    "top_activations",
]
