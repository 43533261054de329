"""Fixtures of the analysis tests: the bundled model and a small seeded shapes dataset."""

from __future__ import annotations

import pytest
import torch

from saliency_widget.data import ShapesDataset
from saliency_widget.models import shapes_cnn


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return shapes_cnn()


@pytest.fixture(scope="module")
def small_set() -> ShapesDataset:
    return ShapesDataset(24, seed=321)
