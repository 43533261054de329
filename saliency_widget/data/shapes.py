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
# changing them means retraining; ``tests/test_data_shapes.py`` checks they stay within
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


def _smooth_noise(rng: np.random.Generator, size: int, cells: int, channels: int) -> np.ndarray:
    """Random ``(cells, cells, channels)`` values bicubically upsampled to ``(size, size, channels)`` in [0, 1]."""
    grid = rng.integers(0, 256, size=(cells, cells, channels), dtype=np.uint8)
    mode = "RGB" if channels == 3 else "L"
    img = Image.fromarray(grid if channels == 3 else grid[..., 0], mode).resize((size, size), Image.BICUBIC)
    out = np.asarray(img, dtype=np.float32) / 255.0
    return out if channels == 3 else out[..., None]


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A ``(size, size, 3)`` float32 background in [0, 255].

    Three families so that no single colour statistic identifies the background:
    photo-like smooth colour fields, oriented gratings / plaids, and two-colour noise
    textures. All get a little pixel noise, like a camera.
    """
    kind = rng.integers(3)
    if kind == 0:  # photo-like: large smooth colour regions plus mid-frequency detail
        base = _smooth_noise(rng, size, int(rng.integers(2, 6)), 3)
        detail = _smooth_noise(rng, size, int(rng.integers(8, 20)), 3) - 0.5
        img = np.float32(255.0) * np.clip(base + np.float32(rng.uniform(0.1, 0.4)) * detail, 0.0, 1.0)
    else:
        c1 = rng.uniform(0, 255, 3).astype(np.float32)
        c2 = rng.uniform(0, 255, 3).astype(np.float32)
        if kind == 1:  # gratings: one or two oriented sinusoids (stripes or a plaid)
            coord = np.arange(size, dtype=np.float32) / np.float32(size)
            t = np.ones((size, size), np.float32)
            for _ in range(int(rng.integers(1, 3))):
                phi = rng.uniform(0, math.pi)
                freq = 2 * math.pi * rng.uniform(2.0, 14.0)
                # separable phase: row term (y) plus column term (x), broadcast to (size, size)
                phase = (
                    np.float32(freq * math.sin(phi)) * coord[:, None]
                    + np.float32(freq * math.cos(phi)) * coord[None, :]
                )
                t *= 0.5 + 0.5 * np.sin(phase + np.float32(rng.uniform(0, 2 * math.pi)))
        else:  # mottled two-colour noise texture
            t = _smooth_noise(rng, size, int(rng.integers(size // 16, size // 4 + 1)), 1)[..., 0]
        img = c1 + (c2 - c1) * t[..., None]
    # uniform rather than Gaussian sensor noise: several times cheaper to draw, looks the same
    img = img + np.float32(rng.uniform(0.0, 30.0)) * (rng.random(img.shape, dtype=np.float32) - np.float32(0.5))
    return np.clip(img, 0.0, 255.0, out=img)


def _random_color(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = rng.integers(0, 256, size=3)
    return int(r), int(g), int(b)


def _draw_clutter(rng: np.random.Generator, draw: ImageDraw.ImageDraw, size: int) -> None:
    """Lines, small blobs and irregular 4-7-gons in random colours.

    Clutter is smaller than any object and never a regular triangle, square, cross, star
    or ring, so the scene's class stays unambiguous while the network still has to ignore
    strong edges that are not the object.
    """
    for _ in range(int(rng.integers(3, 13))):
        kind = rng.integers(3)
        color = _random_color(rng)
        if kind == 0:
            x0, y0, x1, y1 = (float(v) for v in rng.uniform(-0.1 * size, 1.1 * size, 4))
            draw.line([(x0, y0), (x1, y1)], fill=color, width=int(rng.integers(1, max(2, size // 40) + 1)))
        elif kind == 1:
            cx, cy = (float(v) for v in rng.uniform(0, size, 2))
            rx, ry = (float(v) for v in rng.uniform(0.015 * size, 0.075 * size, 2))
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=color)
        else:
            cx, cy = (float(v) for v in rng.uniform(0, size, 2))
            n = int(rng.integers(4, 8))
            ang = np.sort(rng.uniform(0, 2 * math.pi, n))
            rad = rng.uniform(0.03 * size, 0.10 * size, n)
            draw.polygon(
                [(cx + r * math.cos(a), cy + r * math.sin(a)) for a, r in zip(ang, rad, strict=True)], fill=color
            )


# --------------------------------------------------------------------------------------
# objects


def _regular(n: int, r: float, phase: float = 0.0) -> np.ndarray:
    a = phase + 2 * math.pi * np.arange(n) / n
    return r * np.stack([np.cos(a), np.sin(a)], axis=1)


def _outline(label: int, r: float) -> np.ndarray:
    """Polygon vertices ``(V, 2)`` of a shape with circumradius ``r`` centred at 0 (not rotated).

    Circles and rings are handled separately (PIL ellipses); this covers the polygons.
    """
    name = CLASSES[label]
    if name == "square":
        return _regular(4, r, math.pi / 4)
    if name == "triangle":
        return _regular(3, r, -math.pi / 2)
    if name == "star":
        outer = _regular(5, r, -math.pi / 2)
        inner = _regular(5, 0.42 * r, -math.pi / 2 + math.pi / 5)
        return np.stack([outer, inner], axis=1).reshape(10, 2)
    if name == "cross":
        w = 0.32 * r  # half-width of the arms
        pts = [
            (w, -r),
            (w, -w),
            (r, -w),
            (r, w),
            (w, w),
            (w, r),
            (-w, r),
            (-w, w),
            (-r, w),
            (-r, -w),
            (-w, -w),
            (-w, -r),
        ]
        return np.asarray(pts, dtype=np.float64)
    raise AssertionError(f"no polygon for {name!r}")  # internal: callers pass polygon classes only


def _object_mask(label: int, size: int, cx: float, cy: float, r: float, theta: float) -> np.ndarray:
    """``(size, size)`` bool mask of one object."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    name = CLASSES[label]
    if name in ("circle", "ring"):
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        if name == "ring":  # punch the hole: the background shows through it
            ri = 0.55 * r
            draw.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=0)
    else:
        c, s = math.cos(theta), math.sin(theta)
        pts = _outline(label, r) @ np.array([[c, s], [-s, c]])
        draw.polygon([(cx + float(x), cy + float(y)) for x, y in pts], fill=255)
    return np.asarray(canvas) > 127


def _place(rng: np.random.Generator, size: int, n_objects: int) -> list[tuple[float, float, float]]:
    """Centres and radii ``(cx, cy, r)`` of non-overlapping objects fully inside the image."""
    lo, hi = (0.14, 0.30) if n_objects == 1 else (0.11, 0.21)
    margin = 2.0
    while True:  # rejection sampling; the shrink below guarantees termination
        placed: list[tuple[float, float, float]] = []
        for _ in range(50 * n_objects):
            r = float(rng.uniform(lo, hi)) * size
            cx, cy = (float(v) for v in rng.uniform(r + margin, size - r - margin, 2))
            if all(math.hypot(cx - px, cy - py) > r + pr + margin for px, py, pr in placed):
                placed.append((cx, cy, r))
                if len(placed) == n_objects:
                    return placed
        lo, hi = 0.9 * lo, 0.9 * hi


def _contrasting_color(rng: np.random.Generator, region: np.ndarray) -> tuple[int, int, int]:
    """Of a few random colours, the one farthest from the mean colour of ``region`` ``(h, w, 3)``.

    Random colours alone would sometimes vanish into the background; this keeps colour
    random while making the object visible in practically every scene.
    """
    mean = region.reshape(-1, 3).mean(axis=0)
    cands = rng.integers(0, 256, size=(6, 3))
    best = cands[int(np.argmax(np.linalg.norm(cands - mean, axis=1)))]
    return int(best[0]), int(best[1]), int(best[2])


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

    canvas = Image.fromarray(_background(rng, size).astype(np.uint8), "RGB")
    _draw_clutter(rng, ImageDraw.Draw(canvas), size)
    image = np.array(canvas)  # writable copy

    masks = np.zeros((n_objects, size, size), dtype=bool)
    colors: list[tuple[int, int, int]] = []
    for j, ((cx, cy, r), label) in enumerate(zip(_place(rng, size, n_objects), chosen, strict=True)):
        theta = float(rng.uniform(0, 2 * math.pi))
        mask = _object_mask(label, size, cx, cy, r, theta)
        y0, y1 = max(0, int(cy - r)), min(size, int(cy + r) + 1)
        x0, x1 = max(0, int(cx - r)), min(size, int(cx + r) + 1)
        color = _contrasting_color(rng, image[y0:y1, x0:x1])
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
