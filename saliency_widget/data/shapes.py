"""Seeded generator of "shapes in clutter" scenes with labels and ground-truth masks.

Each scene shows one or two flat-coloured shapes (:data:`CLASSES`) of random colour,
size, rotation and position on a textured or photo-like background, with clutter
(lines, blobs and irregular polygons) drawn *under* the objects. Because the objects are
painted last in a single flat colour, their boolean masks are exact: every pixel inside a
mask has the object's colour, so saliency maps can be scored against them.

Everything is numpy + PIL and deterministic: :func:`make_scene` given the same seed (or a
generator in the same state) returns identical arrays, and item ``i`` of
:class:`ShapesDataset` depends only on ``(seed, i)``, so datasets are reproducible and
can be generated in any order or in parallel.

Examples
--------
>>> from saliency_widget.data import make_scene, CLASSES
>>> scene = make_scene(0, size=128, n_objects=2)
>>> scene.image.shape, scene.masks.shape, [CLASSES[k] for k in scene.labels]  # doctest: +SKIP
((128, 128, 3), (2, 128, 128), ['star', 'ring'])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..errors import InputError, choices
from .drawing import background, contrasting_color, draw_clutter, object_mask, place

__all__ = [
    "CLASSES",
    "MEAN",
    "STD",
    "MIN_SIZE",
    "Scene",
    "SceneBatch",
    "make_scene",
    "make_batch",
    "to_tensor",
    "ShapesDataset",
]

CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "star", "ring")
"""Class names; a label ``k`` means ``CLASSES[k]``."""

# Normalisation constants: the per-channel statistics of generated scenes in [0, 1]
# (measured about (0.51, 0.49, 0.50) and (0.26, 0.26, 0.27) over 1000 single-object 128 px
# scenes of seed 0), rounded. The bundled model was trained with exactly these values, so
# changing them means retraining; ``tests/data/test_shapes_generator.py`` checks they stay within
# 0.03 of what the generator produces.
MEAN: tuple[float, float, float] = (0.49, 0.49, 0.49)
STD: tuple[float, float, float] = (0.25, 0.25, 0.25)

MIN_SIZE = 32
"""Smallest supported image side in pixels (smaller scenes leave no room for clutter)."""


@dataclass(frozen=True)
class Scene:
    """One generated scene.

    Attributes
    ----------
    image
        ``(H, W, 3)`` uint8 RGB image.
    labels
        Class index of each object (``n_objects`` entries, all distinct).
    masks
        ``(n_objects, H, W)`` bool; ``masks[j]`` is True exactly on the pixels painted
        with object ``j``'s colour (masks of different objects never overlap).
    colors
        RGB colour of each object.
    """

    image: np.ndarray
    labels: list[int]
    masks: np.ndarray
    colors: list[tuple[int, int, int]]

    @property
    def names(self) -> list[str]:
        """Class names of the objects, in the order of :attr:`labels`."""
        return [CLASSES[k] for k in self.labels]


@dataclass(frozen=True)
class SceneBatch:
    """Many scenes stacked into arrays.

    Attributes
    ----------
    images
        ``(N, H, W, 3)`` uint8.
    labels
        ``(N, n_objects)`` int64.
    masks
        ``(N, n_objects, H, W)`` bool.
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])


# --------------------------------------------------------------------------------------
# argument checks


def _check_size(size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise InputError(f"size={size!r} is not supported: expected an int >= {MIN_SIZE} (pixels per side).")
    return int(size)


def _check_n_objects(n_objects: object) -> int:
    if isinstance(n_objects, bool) or n_objects not in (1, 2):
        raise InputError(f"n_objects={n_objects!r} is not supported: expected one of {choices([1, 2])}.")
    return int(n_objects)  # type: ignore[call-overload]


def _check_labels(labels: Sequence[int] | None, n_objects: int) -> list[int] | None:
    if labels is None:
        return None
    labels = list(labels)
    valid = range(len(CLASSES))
    if len(labels) != n_objects or any(
        isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k not in valid for k in labels
    ):
        raise InputError(
            f"labels={labels!r} is not valid: expected {n_objects} class index(es) from "
            f"{choices(valid)} (meaning {choices(CLASSES)})."
        )
    if len(set(labels)) != len(labels):
        raise InputError(f"labels={labels!r} repeats a class: the objects of a scene must have distinct classes.")
    return [int(k) for k in labels]


def _as_rng(rng_or_seed: np.random.Generator | int | Sequence[int]) -> np.random.Generator:
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    seeds = [rng_or_seed] if isinstance(rng_or_seed, (int, np.integer)) else rng_or_seed
    try:
        ok = all(not isinstance(s, bool) and isinstance(s, (int, np.integer)) and s >= 0 for s in seeds)
    except TypeError:
        ok = False
    if not ok:
        raise InputError(
            f"rng_or_seed={rng_or_seed!r} is not valid: expected a numpy Generator, a non-negative int "
            "or a sequence of non-negative ints."
        )
    return np.random.default_rng(list(seeds))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# backgrounds


def make_scene(
    rng_or_seed: np.random.Generator | int | Sequence[int],
    size: int = 128,
    n_objects: int = 1,
    labels: Sequence[int] | None = None,
) -> Scene:
    """Generate one scene.

    Parameters
    ----------
    rng_or_seed
        A ``numpy.random.Generator`` (advanced in place), or a non-negative int / sequence
        of ints used to seed a fresh one (``[seed, index]`` gives independent streams).
    size
        Image side in pixels (``>= MIN_SIZE``); the scene is ``size x size``.
    n_objects
        1 or 2. Two-object scenes hold two different classes that do not overlap.
    labels
        Class indices to draw (``n_objects`` distinct values in ``range(len(CLASSES))``);
        random when None.

    Returns
    -------
    Scene
        ``image`` ``(size, size, 3)`` uint8, ``labels``, ``masks``
        ``(n_objects, size, size)`` bool and ``colors``.

    Raises
    ------
    InputError
        For an invalid seed, size, n_objects or labels.
    """
    size = _check_size(size)
    n_objects = _check_n_objects(n_objects)
    chosen = _check_labels(labels, n_objects)
    rng = _as_rng(rng_or_seed)
    if chosen is None:
        chosen = [int(k) for k in rng.choice(len(CLASSES), size=n_objects, replace=False)]

    canvas = Image.fromarray(background(rng, size).astype(np.uint8), "RGB")
    draw_clutter(rng, ImageDraw.Draw(canvas), size)
    image = np.array(canvas)  # writable copy

    masks = np.zeros((n_objects, size, size), dtype=bool)
    colors: list[tuple[int, int, int]] = []
    for j, ((cx, cy, r), label) in enumerate(zip(place(rng, size, n_objects), chosen, strict=True)):
        theta = float(rng.uniform(0, 2 * math.pi))
        mask = object_mask(CLASSES[label], size, cx, cy, r, theta)
        y0, y1 = max(0, int(cy - r)), min(size, int(cy + r) + 1)
        x0, x1 = max(0, int(cx - r)), min(size, int(cx + r) + 1)
        color = contrasting_color(rng, image[y0:y1, x0:x1])
        image[mask] = color
        masks[:j, mask] = False  # cannot happen with the placement above; keeps masks exact regardless
        masks[j] = mask
        colors.append(color)
    return Scene(image=image, labels=chosen, masks=masks, colors=colors)


def _dataset_labels(seed: int, index: int, n_objects: int) -> list[int]:
    """Balanced labels for dataset item ``index``: the first object cycles through the classes."""
    first = index % len(CLASSES)
    if n_objects == 1:
        return [first]
    others = [k for k in range(len(CLASSES)) if k != first]
    second = others[int(np.random.default_rng([seed, index, 1]).integers(len(others)))]
    return [first, second]


def make_batch(
    n: int,
    size: int = 128,
    seed: int = 0,
    n_objects: int = 1,
    start: int = 0,
) -> SceneBatch:
    """Generate scenes ``start .. start + n - 1`` of the dataset stream ``seed``.

    Scene ``i`` is ``make_scene([seed, i], size, n_objects, labels)`` with the first
    object's class cycling through :data:`CLASSES`, exactly as item ``i`` of
    ``ShapesDataset(..., seed=seed)``; so any slice can be generated independently.

    Parameters
    ----------
    n
        Number of scenes (>= 0).
    size, n_objects
        As in :func:`make_scene`.
    seed
        Non-negative stream seed.
    start
        Index of the first scene in the stream (>= 0).

    Returns
    -------
    SceneBatch
        ``images`` ``(n, size, size, 3)`` uint8, ``labels`` ``(n, n_objects)`` int64,
        ``masks`` ``(n, n_objects, size, size)`` bool.
    """
    for name, value in (("n", n), ("seed", seed), ("start", start)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise InputError(f"{name}={value!r} is not valid: expected a non-negative int.")
    size = _check_size(size)
    n_objects = _check_n_objects(n_objects)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.empty((n, n_objects), dtype=np.int64)
    masks = np.empty((n, n_objects, size, size), dtype=bool)
    for k in range(n):
        i = start + k
        scene = make_scene([seed, i], size, n_objects, _dataset_labels(seed, i, n_objects))
        images[k], labels[k], masks[k] = scene.image, scene.labels, scene.masks
    return SceneBatch(images=images, labels=labels, masks=masks)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """Convert uint8 RGB images to normalised float tensors (the model's input format).

    Parameters
    ----------
    images
        ``(H, W, 3)`` or ``(N, H, W, 3)`` uint8.

    Returns
    -------
    torch.Tensor
        ``(3, H, W)`` or ``(N, 3, H, W)`` float32, ``(x / 255 - MEAN) / STD``.
    """
    if (
        not isinstance(images, np.ndarray)
        or images.dtype != np.uint8
        or images.ndim not in (3, 4)
        or images.shape[-1] != 3
    ):
        got = f"{type(images).__name__} {getattr(images, 'dtype', '')} {getattr(images, 'shape', '')}"
        raise InputError(f"to_tensor expected a uint8 array of shape (H, W, 3) or (N, H, W, 3), got {got}.")
    # copy read-only input (e.g. np.asarray(PIL image)): torch warns about non-writable arrays
    images = np.ascontiguousarray(images) if images.flags.writeable else images.copy()
    x = torch.from_numpy(images).movedim(-1, -3).float().div_(255.0)
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    return (x - mean) / std


class ShapesDataset(torch.utils.data.Dataset):
    """A reproducible torch dataset of generated scenes.

    Item ``i`` is generated on demand from ``(seed, i)`` alone, so two datasets with the
    same arguments are identical, items can be read in any order, and DataLoader workers
    need no shared state.

    Parameters
    ----------
    n
        Number of items.
    size
        Image side in pixels.
    seed
        Non-negative seed of the stream; use different seeds for training and evaluation.
    n_objects
        1 or 2 objects per scene. Labels are balanced: the first object of item ``i`` has
        class ``i % len(CLASSES)``.
    transform
        Callable mapping the ``(H, W, 3)`` uint8 image to the returned image tensor;
        default :func:`to_tensor` (normalised with :data:`MEAN` / :data:`STD`).

    Notes
    -----
    ``dataset[i]`` returns ``(image, label, mask)``: ``image`` ``(3, H, W)`` float32,
    ``label`` the int class of the first object and ``mask`` its ``(H, W)`` bool
    mask. For two-object scenes use :meth:`scene` to get both objects.
    """

    def __init__(
        self,
        n: int,
        size: int = 128,
        seed: int = 0,
        n_objects: int = 1,
        transform: Callable[[np.ndarray], torch.Tensor] | None = None,
    ) -> None:
        for name, value in (("n", n), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise InputError(f"{name}={value!r} is not valid: expected a non-negative int.")
        if transform is not None and not callable(transform):
            raise InputError(
                f"transform={transform!r} is not callable: expected a function of an (H, W, 3) uint8 array, or None."
            )
        self.n = int(n)
        self.size = _check_size(size)
        self.seed = int(seed)
        self.n_objects = _check_n_objects(n_objects)
        self.transform = transform if transform is not None else to_tensor

    def __len__(self) -> int:
        return self.n

    def _index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise InputError(f"index {index!r} is not an int.")
        i = int(index) + self.n if index < 0 else int(index)
        if not 0 <= i < self.n:
            raise IndexError(f"index {index} is out of range for a dataset of {self.n} items.")
        return i

    def scene(self, index: int) -> Scene:
        """The full :class:`Scene` of item ``index`` (all objects, colours, uint8 image)."""
        i = self._index(index)
        return make_scene([self.seed, i], self.size, self.n_objects, _dataset_labels(self.seed, i, self.n_objects))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        scene = self.scene(index)
        return self.transform(scene.image), scene.labels[0], torch.from_numpy(scene.masks[0])

    def arrays(self, start: int = 0, stop: int | None = None) -> SceneBatch:
        """Items ``start .. stop - 1`` as stacked numpy arrays (see :func:`make_batch`)."""
        stop = self.n if stop is None else stop
        if not 0 <= start <= stop <= self.n:
            raise InputError(f"start={start!r}, stop={stop!r} are not valid: expected 0 <= start <= stop <= {self.n}.")
        return make_batch(stop - start, self.size, self.seed, self.n_objects, start=start)

    def tensors(self, start: int = 0, stop: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Items ``start .. stop - 1`` as tensors, the fast way to build a training set.

        Returns
        -------
        tuple of torch.Tensor
            ``images`` ``(N, 3, H, W)`` float32 normalised, ``labels`` ``(N,)`` int64 and
            ``masks`` ``(N, H, W)`` bool, all of the first object of each scene.
        """
        batch = self.arrays(start, stop)
        return to_tensor(batch.images), torch.from_numpy(batch.labels[:, 0]), torch.from_numpy(batch.masks[:, 0])
