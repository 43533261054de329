"""``saliency_widget.visualize``: feature visualization with the model's own preprocessing.

The optimisation lives at the engine floor (:func:`saliency_widget.featviz.render`, which
takes the preprocessing as a tensor function); this wrapper finds that preprocessing with
:func:`~saliency_widget.viz.modelio.describe_model`, the one reader the widget, reports and
CLI use (``weights=``, a Hugging Face ``processor=``, timm's ``pretrained_cfg``, the bundled
model's ``saliency_weights``), so the images are scored exactly as the explorer scores a photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..engine.progress import Progress
from ..errors import SaliencyWarning, warn_once
from ..featviz.objectives import Objective
from ..featviz.optimize import render
from ..featviz.result import Visualization
from .modelio import ModelIO, describe_model

__all__ = ["Normalize", "model_preprocess", "visualize"]


class Normalize:
    """``(x - mean) / std`` per channel on ``(N, C, H, W)`` tensors in [0, 1], differentiable.

    Parameters
    ----------
    mean, std
        Per-channel constants (RGB).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` ``(N, C, H, W)``."""
        m = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        s = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        return (x - m) / s

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def model_preprocess(io: ModelIO) -> tuple[Any, int]:
    """The tensor preprocessing and input side of a described model.

    Parameters
    ----------
    io
        What :func:`~saliency_widget.viz.modelio.describe_model` read.

    Returns
    -------
    preprocess, side
        ``(N, 3, H, W)`` [0, 1] -> model input (its normalisation), and the side its transform
        produces (read by running the transform on a blank image).
    """
    try:
        out = io.transform(Image.new("RGB", (256, 256), (128, 128, 128)))
        side = int(out.shape[-1]) if isinstance(out, torch.Tensor) and out.dim() == 3 else 224
    except Exception:  # a transform that cannot run on a blank PIL image: fall back to ImageNet's side
        side = 224
    if io.mean is None or io.std is None:
        warn_once(
            ("featviz-no-normalisation", repr(io.transform)),
            f"the model's preprocessing ({io.transform!r}) names no mean/std, so visualize() feeds it images in [0, 1]; "
            "pass preprocess= (a function on (N, 3, H, W) tensors) if it expects something else",
            SaliencyWarning,
        )
        return _identity, side
    return Normalize(io.mean, io.std), side


def _as_tensor_image(image: Any, size: int | tuple[int, int] | None) -> Any:
    """A PIL image as a ``(3, H, W)`` float tensor in [0, 1] (resized to ``size``); other values unchanged."""
    if not isinstance(image, Image.Image):
        return image
    img = image.convert("RGB")
    if size is not None:
        h, w = (size, size) if isinstance(size, int) else size
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


def visualize(
    model: Any,
    objectives: Objective | Sequence[Objective],
    *,
    steps: int = 256,
    size: int | tuple[int, int] | None = None,
    param: str = "fourier",
    transforms: Any = "standard",
    lr: float | None = None,
    seed: int = 0,
    init: Any = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
    stop_at_probability: float | None = None,
    max_change: float | None = None,
    optimizer: str = "adam",
    redirect_relu: bool = True,
    weights: Any = None,
    processor: Any = None,
    transform: Any = None,
    labels: Sequence[str] | None = None,
    preprocess: Any = None,
) -> Visualization:
    """What does a unit (or a class) want to see? Optimise one image per objective, as one batch.

    Parameters
    ----------
    model
        The network; never modified.
    objectives
        One objective or a list from :mod:`saliency_widget.objectives` (``channel``,
        ``neuron``, ``class_logit``, ``dream``, ``inversion``; composed with ``+`` and scalar
        ``*``, penalties ``l1``, ``l2``, ``total_variation``, ``blur`` subtracted).
    steps, param, transforms, lr, seed, batch_size, progress, stop_at_probability, max_change, optimizer, redirect_relu
        See :func:`saliency_widget.featviz.render`.
    size
        Image side or ``(H, W)``; None: the side the model's preprocessing produces (or the
        ``init`` image's).
    init
        None, ``"noise"``, or a start image: RGB in [0, 1] ``(3, H, W)`` / ``(N, 3, H, W)``, or
        a PIL image (resized to ``size``).
    weights, processor, transform, labels
        As for the explorer: where the model's preprocessing and class names come from.
    preprocess
        Override: a function ``(N, 3, H, W)`` [0, 1] -> model input.

    Returns
    -------
    Visualization
        ``.images`` ``(N, 3, H, W)`` in [0, 1], ``.inputs`` (preprocessed), ``.values``
        ``(N,)``, ``.history`` ``(steps, N)``, ``.probabilities`` ``(N, K)``.

    Examples
    --------
    >>> import saliency_widget as sw
    >>> from saliency_widget import objectives as obj
    >>> model = sw.models.shapes_cnn()  # doctest: +SKIP
    >>> vis = sw.visualize(model, [obj.channel("features.relu5", c) for c in range(64)], steps=128)  # doctest: +SKIP
    """
    io = describe_model(model, weights=weights, labels=labels, transform=transform, processor=processor)
    pre, side = model_preprocess(io)
    if preprocess is not None:
        pre = preprocess
    if size is None and not isinstance(init, (torch.Tensor, np.ndarray)):
        size = side
    init = _as_tensor_image(init, size)
    return render(
        model, objectives, preprocess=pre, labels=io.labels, steps=steps, size=size, param=param, transforms=transforms,
        lr=lr, optimizer=optimizer, seed=seed, init=init, batch_size=batch_size, progress=progress,
        stop_at_probability=stop_at_probability, max_change=max_change, redirect_relu=redirect_relu,
    )  # fmt: skip
