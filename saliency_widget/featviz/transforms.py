"""Transformation robustness: random jitter, scale and rotation applied before each forward pass.

Olah et al. 2017 (Lucid's ``standard_transforms``): pad by 12 px with grey, jitter by up to
8 px, scale by 0.90 .. 1.10, rotate by -10 .. 10 degrees, jitter by up to 4 px. Here the
whole chain is one affine resampling per image (one ``grid_sample`` for the batch), each
image with its own draw, and the output keeps the input's size so that models with a fixed
input size (ViTs) accept it. Outside the image the canvas is grey (0.5), as Lucid's padding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import InputError

__all__ = ["Transform", "StandardTransform", "resolve_transform"]

#: ``transform(images, generators) -> images``: ``(n, 3, H, W)`` in, ``(n, 3, H', W')`` out;
#: image ``i`` draws its randomness from ``generators[i]``.
Transform = Callable[[torch.Tensor, list[torch.Generator]], torch.Tensor]


LUCID_SCALES: tuple[float, ...] = tuple(1 + (i - 5) / 50 for i in range(11))
"""Lucid's ``random_scale`` choices: 0.90, 0.92, ..., 1.10."""


class StandardTransform:
    """Lucid's standard transformations as one affine map per image.

    Parameters
    ----------
    jitter
        Total translation range in pixels, ``(8 - 1) + (4 - 1)`` = 10 as Lucid's two jitters:
        the shift is uniform in ``[-jitter / 2, jitter / 2]`` on each axis.
    scales
        Scale factors drawn uniformly (Lucid: 0.90, 0.92, ..., 1.10).
    angles
        Rotation angles in degrees drawn uniformly (Lucid: -10 .. 10 plus five more zeros).
    """

    def __init__(
        self,
        jitter: float = 10.0,
        scales: Sequence[float] = LUCID_SCALES,
        angles: Sequence[float] = (*range(-10, 11), 0, 0, 0, 0, 0),
    ) -> None:
        self.jitter = float(jitter)
        self.scales = torch.tensor([float(s) for s in scales], dtype=torch.float64)
        self.angles = torch.tensor([float(a) for a in angles], dtype=torch.float64)

    def thetas(self, generators: list[torch.Generator], h: int, w: int) -> torch.Tensor:
        """``(n, 2, 3)`` affine matrices (output -> input, normalised coordinates), one draw per image."""
        rows = []
        for g in generators:
            u = torch.rand(4, generator=g, dtype=torch.float64)
            s = self.scales[int(u[0] * len(self.scales))]
            a = math.radians(float(self.angles[int(u[1] * len(self.angles))]))
            tx, ty = (float(u[2]) - 0.5) * self.jitter, (float(u[3]) - 0.5) * self.jitter
            cos, sin = math.cos(a) / s, math.sin(a) / s
            # pixel offsets -> normalised units (align_corners=False: 2 / size per pixel)
            rows.append([[cos, -sin * h / w, 2 * tx / w], [sin * w / h, cos, 2 * ty / h]])
        return torch.tensor(rows, dtype=torch.float64)

    def __call__(self, images: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        """Transform ``(n, 3, H, W)`` images; the output has the same shape."""
        n, c, h, w = images.shape
        theta = self.thetas(generators, h, w).to(device=images.device, dtype=images.dtype)
        grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
        return F.grid_sample(images - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 0.5

    def __repr__(self) -> str:
        return "StandardTransform()"


class _UserTransform:
    """A callable on images only (Lucent style); its randomness comes from the run's seeded RNG."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.fn = fn

    def __call__(self, images: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        out = self.fn(images)
        if not isinstance(out, torch.Tensor) or out.dim() != 4 or out.shape[:2] != images.shape[:2]:
            raise InputError(
                f"the transforms callable must map (n, 3, H, W) images to an (n, 3, H', W') tensor; "
                f"it returned {type(out).__name__} {tuple(getattr(out, 'shape', ()))}"
            )
        return out


def resolve_transform(transforms: Any) -> Transform | None:
    """``"standard"``, None, a callable ``images -> images`` or a list of them, as a :data:`Transform`."""
    if transforms is None:
        return None
    if isinstance(transforms, str):
        if transforms == "standard":
            return StandardTransform()
        raise InputError(f"unknown transforms={transforms!r}; expected 'standard', None, a callable images -> images, or a list of them")
    if isinstance(transforms, StandardTransform):
        return transforms
    if callable(transforms):
        return _UserTransform(transforms)
    if isinstance(transforms, Sequence) and all(callable(t) for t in transforms):
        fns = list(transforms)

        def chain(x: torch.Tensor) -> torch.Tensor:
            for f in fns:
                x = f(x)
            return x

        return _UserTransform(chain)
    raise InputError(
        f"transforms must be 'standard', None, a callable images -> images, or a list of them; got {type(transforms).__name__} {transforms!r:.60}"
    )
