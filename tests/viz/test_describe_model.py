"""describe_model (the one reader of labels and preprocessing) and resolve_target (the viz-side target resolver)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from saliency_widget.data.shapes import CLASSES, MEAN, STD
from saliency_widget.errors import InputError
from saliency_widget.models import shapes_cnn
from saliency_widget.viz.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    describe_model,
    resolve_target,
)


class _Normalize:
    """Like torchvision's ``ImageClassification``: a callable with ``.mean`` / ``.std`` lists."""

    def __init__(self) -> None:
        self.mean = [0.1, 0.2, 0.3]
        self.std = [0.4, 0.5, 0.6]

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return torch.zeros(3, 8, 8)


class _Weights:
    """Like a torchvision ``WeightsEnum`` member: ``.meta`` and ``.transforms()``."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta
        self.tf = _Normalize()

    def transforms(self) -> _Normalize:
        return self.tf


def test_torchvision_like_weights() -> None:
    w = _Weights({"categories": ["cat", 7]})
    io = describe_model(nn.Identity(), w)
    assert io.labels == ["cat", "7"]
    assert io.transform is w.tf
    assert (io.mean, io.std, io.source) == ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6), "weights")


def test_meta_normalisation_wins_over_the_transforms_attributes() -> None:
    io = describe_model(nn.Identity(), _Weights({"categories": ["a"], "mean": [0.5], "std": [0.25]}))
    assert (io.mean, io.std) == ((0.5,), (0.25,))


def test_bundled_shapes_model() -> None:
    io = describe_model(shapes_cnn())
    assert io.labels == list(CLASSES)
    assert (io.mean, io.std, io.source) == (MEAN, STD, "weights")
    x = io.transform(Image.new("RGB", (40, 30), (125, 125, 125)))
    assert x.shape[0] == 3 and x.shape[1] == x.shape[2]
    # grey 125/255 normalised with the shapes statistics
    torch.testing.assert_close(x[:, 0, 0], torch.full((3,), (125 / 255 - 0.49) / 0.25), atol=1e-3, rtol=0)


def test_explicit_labels_and_transform_win() -> None:
    names = ["a", "b", "c", "d", "e", "f"]

    def tf(img: Image.Image) -> torch.Tensor:
        return torch.ones(3, 4, 4)

    io = describe_model(shapes_cnn(), labels=tuple(names), transform=tf)
    assert io.labels == names and io.transform is tf


def test_model_without_weights_gets_the_imagenet_default() -> None:
    io = describe_model(nn.Linear(2, 2))
    assert io.labels is None and io.source == "default"
    assert (io.mean, io.std) == (IMAGENET_MEAN, IMAGENET_STD)
    assert io.transform(Image.new("RGB", (10, 10))).shape == (3, 224, 224)


@pytest.mark.parametrize("labels", ["cat,dog", b"cat", 3, {"a": 1}])
def test_bad_labels(labels: Any) -> None:
    with pytest.raises(InputError, match=f"labels must be a list of class names.*got {type(labels).__name__}"):
        describe_model(nn.Identity(), labels=labels)


LABELS = ["cat", "dog", "7"]


@pytest.mark.parametrize(
    ("target", "labels", "expected"),
    [
        (None, LABELS, None),
        (0, LABELS, 0),
        (2, LABELS, 2),
        (np.int64(1), LABELS, 1),
        (torch.tensor(1), LABELS, 1),
        ("dog", LABELS, 1),
        ("7", LABELS, 2),  # a label, not the index 7
        ("2", None, 2),  # unnamed classes are called "0", "1", ...
    ],
)
def test_resolve_target(target: Any, labels: list[str] | None, expected: int | None) -> None:
    assert resolve_target(target, labels, 3) == expected


@pytest.mark.parametrize(
    ("target", "labels", "message"),
    [
        (3, LABELS, r"target 3 is out of range: valid classes are 0\.\.2"),
        (-1, LABELS, r"target -1 is out of range"),
        (True, LABELS, "got the bool True"),
        ("cow", LABELS, r"unknown class 'cow'; expected one of 'cat', 'dog', '7'"),
        ("3", None, r"unknown class '3'; expected one of '0', '1', '2'"),
        (1.0, LABELS, "got float 1.0"),
    ],
)
def test_resolve_target_errors(target: Any, labels: list[str] | None, message: str) -> None:
    with pytest.raises(InputError, match=message):
        resolve_target(target, labels, 3)
