"""Offline data for saliency-widget: the "shapes in clutter" generator and sample images."""

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
