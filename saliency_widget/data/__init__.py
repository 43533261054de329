"""Offline data for saliency-widget: the "shapes in clutter" generator, sample images, and files.

Besides the data: :mod:`.decode` is the one image decoder (every reader of image files and
folders), :mod:`.atomic` the one atomic file writer, :mod:`.paths` the check that paths read
from files stay in their folder, :mod:`.folders` the image-folder dataset and scene stream.

Floor 1 of 5 (errors < engine, data, models, render primitives < analysis < figures, reports,
views < widget, classroom, cli): imports ``errors`` only.
"""

from __future__ import annotations

from .samples import SAMPLES, SAMPLES_DIR, SampleInfo, load_sample, render_shape_scene, sample_images
from .shapes import (
    CLASSES,
    MEAN,
    MIN_SIZE,
    STD,
    Scene,
    SceneBatch,
    ShapesDataset,
    make_batch,
    make_scene,
    to_tensor,
)

__all__ = [
    "CLASSES",
    "MEAN",
    "MIN_SIZE",
    "STD",
    "Scene",
    "SceneBatch",
    "ShapesDataset",
    "make_batch",
    "make_scene",
    "to_tensor",
    "SAMPLES",
    "SAMPLES_DIR",
    "SampleInfo",
    "load_sample",
    "render_shape_scene",
    "sample_images",
]
