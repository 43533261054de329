"""The result of a feature visualization: images, model inputs, values, history."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["Visualization"]


@dataclass(frozen=True, eq=False)
class Visualization:
    """Optimised images, one per objective (all tensors on the CPU, detached).

    Attributes
    ----------
    images
        ``(N, 3, H, W)`` RGB in [0, 1], before the model's preprocessing.
    inputs
        ``(N, C, H, W)``: the model's preprocessing applied to :attr:`images` (what was scored).
    values
        ``(N,)`` final objective values, on :attr:`inputs` (no transformations).
    history
        ``(steps_run, N)`` objective value at each step (on the transformed images); an image
        stopped by ``stop_at_probability`` keeps its value from then on.
    names
        The objectives, as text.
    probabilities
        ``(N, K)`` softmax of the model's logits on :attr:`inputs`, or None when the model's
        output is not class scores.
    steps
        ``(N,)`` steps each image was optimised for (fewer than asked when it reached
        ``stop_at_probability``).
    init
        ``(N, 3, H, W)`` the start images when ``init`` was an image, else None.
    param, seed
        The parametrisation and seed of the run.
    """

    images: torch.Tensor
    inputs: torch.Tensor
    values: torch.Tensor
    history: torch.Tensor
    names: list[str]
    probabilities: torch.Tensor | None = None
    steps: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    init: torch.Tensor | None = None
    param: str = "fourier"
    seed: int = 0

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def change_linf(self) -> torch.Tensor | None:
        """``(N,)`` largest per-pixel change from the ``init`` image (L-infinity, in [0, 1] units), or None."""
        if self.init is None:
            return None
        return (self.images - self.init).abs().amax((1, 2, 3))

    @property
    def change_l2(self) -> torch.Tensor | None:
        """``(N,)`` Euclidean norm of the change from the ``init`` image (over all pixels and colours), or None."""
        if self.init is None:
            return None
        return (self.images - self.init).flatten(1).norm(dim=1)

    def predicted(self) -> torch.Tensor | None:
        """``(N,)`` the model's predicted class for each image, or None without class scores."""
        return None if self.probabilities is None else self.probabilities.argmax(1)

    def __repr__(self) -> str:
        n, _, h, w = self.images.shape
        return f"Visualization({n} image(s) {h}x{w}, param={self.param!r}, values={[round(float(v), 3) for v in self.values[:8]]})"
