"""Models for saliency-widget: the bundled offline shapes CNN and a torchvision helper."""

from __future__ import annotations

from .shapes_cnn import SHAPES_WEIGHTS, BundledWeights, Preprocess, ShapesCNN, fold_batchnorm, shapes_cnn
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
