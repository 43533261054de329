"""Models for saliency-widget: the bundled offline shapes CNN, a torchvision helper and the one spec reader.

Floor: with ``engine`` and ``data`` (imports ``errors`` and ``data`` only), so every command, the
widget and the reports can load a model through :func:`load_model`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .loading import DEFAULT_MODEL, MODEL_SPECS, load_model
from .shapes_cnn import SHAPES_WEIGHTS, BundledWeights, Preprocess, ShapesCNN, fold_batchnorm, shapes_cnn

if TYPE_CHECKING:
    from .torchvision_models import torchvision_model

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_SPECS",
    "load_model",
    "SHAPES_WEIGHTS",
    "BundledWeights",
    "Preprocess",
    "ShapesCNN",
    "fold_batchnorm",
    "shapes_cnn",
    "torchvision_model",
]


def __getattr__(name: str) -> object:
    # torchvision costs ~165 MB per process; the bundled model (and every classroom kernel) does not need it
    if name == "torchvision_model":
        from .torchvision_models import torchvision_model

        return torchvision_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
