"""Images in, model inputs out, for the renderers: the decoder and what a model says about itself.

The decoding (EXIF orientation, 16-bit, decompression-bomb and aspect-ratio guards, the
suffixes of an image folder) is :mod:`saliency_widget.data.decode`, the one decoder every reader
uses; what a model says about itself (labels, preprocessing) is
:func:`saliency_widget.viz.modelio.describe_model`. Both are re-exported here, the import path
of the renderers and reports. Floor: render primitives.
"""

from __future__ import annotations

from ..data.decode import IMAGE_SUFFIXES, MAX_ASPECT_RATIO, list_images, to_model_input, to_pil
from .modelio import IMAGENET_MEAN, IMAGENET_STD, ModelIO, Transform, describe_model, imagenet_transform, resolve_target

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_SUFFIXES",
    "MAX_ASPECT_RATIO",
    "ModelIO",
    "Transform",
    "describe_model",
    "imagenet_transform",
    "list_images",
    "resolve_target",
    "to_model_input",
    "to_pil",
]
