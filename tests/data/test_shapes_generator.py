"""The "shapes in clutter" generator: determinism, exact masks, class balance, normalisation constants, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from saliency_widget.data import (
    CLASSES,
    MEAN,
    STD,
    ShapesDataset,
    make_batch,
    make_scene,
    to_tensor,
)
from saliency_widget.errors import InputError, SaliencyError

# ----------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("n_objects", [1, 2])
def test_same_seed_same_scene(n_objects: int) -> None:
    a = make_scene(123, n_objects=n_objects)
    b = make_scene(123, n_objects=n_objects)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert a.labels == b.labels and a.colors == b.colors


def test_generator_argument_is_advanced_and_reproducible() -> None:
    rng1, rng2 = np.random.default_rng(5), np.random.default_rng(5)
    first = [make_scene(rng1).image for _ in range(2)]
    second = [make_scene(rng2).image for _ in range(2)]
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], first[1])  # the generator moved on


@pytest.mark.parametrize("seed_a, seed_b", [(0, 1), (1, 2), ([0, 1], [1, 0])])
def test_different_seeds_differ(seed_a: int | list[int], seed_b: int | list[int]) -> None:
    assert not np.array_equal(make_scene(seed_a).image, make_scene(seed_b).image)


def test_dataset_items_depend_only_on_seed_and_index() -> None:
    ds = ShapesDataset(20, size=64, seed=7)
    x_rev = ds[13]
    _ = ds[2]  # reading other items first must not change item 13
    again = ShapesDataset(20, size=64, seed=7)[13]
    torch.testing.assert_close(x_rev[0], again[0])
    assert x_rev[1] == again[1]
    torch.testing.assert_close(x_rev[2], again[2])
    batch = ds.arrays(10, 15)  # a slice generated on its own equals the items
    np.testing.assert_array_equal(batch.images[3], ds.scene(13).image)
    assert not torch.equal(ShapesDataset(20, size=64, seed=8)[13][0], x_rev[0])


@pytest.mark.parametrize("size", [32, 64, 128, 200])
def test_shapes_and_dtypes(size: int) -> None:
    ds = ShapesDataset(3, size=size, seed=1)
    image, label, mask = ds[0]
    assert image.shape == (3, size, size) and image.dtype == torch.float32
    assert isinstance(label, int) and 0 <= label < len(CLASSES)
    assert mask.shape == (size, size) and mask.dtype == torch.bool
    images, labels, masks = ds.tensors()
    assert images.shape == (3, 3, size, size) and labels.shape == (3,) and masks.shape == (3, size, size)
    torch.testing.assert_close(images[0], image)


# ----------------------------------------------------------------------------- masks


@pytest.mark.parametrize("n_objects", [1, 2])
def test_masks_are_exactly_the_painted_object(n_objects: int) -> None:
    """Inside a mask every pixel has the object's colour; outside, that exact colour is rare.

    (Only clutter or a background pixel of the very same RGB value could have it.)
    """
    batch_outside = []
    for seed in range(60):
        scene = make_scene([99, seed], size=96, n_objects=n_objects)
        for mask, color in zip(scene.masks, scene.colors, strict=True):
            assert mask.sum() > 50  # every object is visible
            assert (scene.image[mask] == np.array(color, dtype=np.uint8)).all()
            same_color = (scene.image == np.array(color, dtype=np.uint8)).all(axis=-1)
            batch_outside.append((same_color & ~scene.masks.any(0)).sum() / mask.sum())
    assert float(np.mean(batch_outside)) < 0.02


def test_two_object_scenes_have_two_distinct_labels_and_disjoint_masks() -> None:
    batch = make_batch(60, size=96, seed=3, n_objects=2)
    assert batch.labels.shape == (60, 2) and batch.masks.shape == (60, 2, 96, 96)
    assert (batch.labels[:, 0] != batch.labels[:, 1]).all()
    assert (batch.masks.sum(axis=(2, 3)) > 30).all()
    assert not (batch.masks[:, 0] & batch.masks[:, 1]).any()


def test_requested_labels_are_drawn() -> None:
    scene = make_scene(0, n_objects=2, labels=[5, 0])
    assert scene.labels == [5, 0] and scene.names == ["ring", "circle"]


def test_ring_has_a_hole_and_circle_does_not() -> None:
    """The ring's centre pixel is outside its mask (background shows through); the circle's is inside."""
    for label in (CLASSES.index("ring"), CLASSES.index("circle")):
        scene = make_scene(11, size=128, labels=[label])
        ys, xs = np.nonzero(scene.masks[0])
        cy, cx = int(round((ys.min() + ys.max()) / 2)), int(round((xs.min() + xs.max()) / 2))
        assert scene.masks[0, cy, cx] == (CLASSES[label] == "circle")


# ----------------------------------------------------------------------------- balance & statistics


def test_dataset_labels_are_balanced() -> None:
    labels = ShapesDataset(300, size=32, seed=0).arrays().labels[:, 0]
    np.testing.assert_array_equal(np.bincount(labels, minlength=len(CLASSES)), [50] * len(CLASSES))


def test_random_labels_are_roughly_balanced() -> None:
    rng = np.random.default_rng(2024)
    labels = [make_scene(rng, size=32).labels[0] for _ in range(600)]
    counts = np.bincount(labels, minlength=len(CLASSES))
    # expected 100 each; a chi-square-style bound far outside sampling noise (sd ~ 9)
    assert counts.min() > 65 and counts.max() < 135, counts


def test_normalisation_constants_match_the_generator() -> None:
    images = make_batch(400, size=128, seed=0).images.astype(np.float64) / 255.0
    np.testing.assert_allclose(images.mean(axis=(0, 1, 2)), MEAN, atol=0.03)
    np.testing.assert_allclose(images.std(axis=(0, 1, 2)), STD, atol=0.03)


def test_to_tensor_normalises() -> None:
    img = np.full((4, 5, 3), 255, dtype=np.uint8)
    x = to_tensor(img)
    assert x.shape == (3, 4, 5)
    torch.testing.assert_close(x[:, 0, 0], (1.0 - torch.tensor(MEAN)) / torch.tensor(STD))


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"size": 16}, "size=16"),
        ({"size": 64.0}, "size=64.0"),
        ({"n_objects": 3}, "n_objects=3"),
        ({"n_objects": 0}, "n_objects=0"),
        ({"labels": [6]}, "labels=[6]"),
        ({"labels": [1, 1], "n_objects": 2}, "distinct"),
        ({"labels": [1], "n_objects": 2}, "expected 2 class"),
    ],
)
def test_make_scene_rejects_bad_arguments(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(InputError, match=re.escape(fragment)):
        make_scene(0, **kwargs)


@pytest.mark.parametrize("seed", [-1, 1.5, "abc", [0, -3], True])
def test_bad_seeds_raise_input_error(seed: object) -> None:
    with pytest.raises(InputError, match="rng_or_seed"):
        make_scene(seed)  # type: ignore[arg-type]


def test_errors_belong_to_the_package_family() -> None:
    with pytest.raises(SaliencyError):
        ShapesDataset(-1)
    with pytest.raises(ValueError):  # InputError is also a ValueError
        make_batch(2, n_objects=5)
    with pytest.raises(InputError, match="transform"):
        ShapesDataset(2, transform="not callable")  # type: ignore[arg-type]
    with pytest.raises(IndexError):
        ShapesDataset(2, size=32)[2]
    with pytest.raises(InputError, match="uint8"):
        to_tensor(np.zeros((4, 4, 3), dtype=np.float32))
