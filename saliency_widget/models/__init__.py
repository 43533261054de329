"""Models for saliency-widget: the bundled offline shapes CNN and a torchvision helper."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .shapes_cnn import SHAPES_WEIGHTS, BundledWeights, Preprocess, ShapesCNN, fold_batchnorm, shapes_cnn

if TYPE_CHECKING:
    from .torchvision_models import torchvision_model

__all__ = [
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
