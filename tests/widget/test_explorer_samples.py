"""The sample menu offers the images a model knows: shape scenes for the bundled model, photos for others."""

from __future__ import annotations

import pytest
import torch

from saliency_widget.data import sample_images
from saliency_widget.models import shapes_cnn
from saliency_widget.widget import explore
from tests.nets import sequential_cnn

SHAPES = [n for n in sample_images() if n.startswith("shapes")]
PHOTOS = [n for n in sample_images() if not n.startswith("shapes")]


def test_there_are_both_kinds() -> None:
    assert SHAPES == ["shapes_star", "shapes_cross_ring", "shapes_star_square"]
    assert PHOTOS and set(PHOTOS) >= {"cat", "coffee"}


@pytest.mark.parametrize("make", [lambda: None, shapes_cnn], ids=["default", "explicit-shapes_cnn"])
def test_bundled_model_offers_shape_scenes_only(make) -> None:  # type: ignore[no-untyped-def]
    w = explore(make())
    try:
        assert [v for _, v in w.w_sample.options] == ["", *SHAPES]
        assert w.inputs.source == "argument" and w.labels[0] == "circle"
    finally:
        w.close()


def test_other_models_offer_photos_only() -> None:
    w = explore(sequential_cnn(), transform=lambda img: torch.zeros(3, 16, 16))
    try:
        assert [v for _, v in w.w_sample.options] == ["", *PHOTOS]
    finally:
        w.close()
