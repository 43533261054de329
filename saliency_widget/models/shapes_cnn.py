"""The bundled "shapes in clutter" CNN: a small Zeiler-Fergus-style network that works offline.

Architecture (input ``(N, 3, 128, 128)``, any size >= 32 works thanks to the global pool)::

    features.conv1  3x3, 3 -> 16               features.relu1   features.pool1  2x2 max
    features.conv2  3x3, 16 -> 32              features.relu2   features.pool2  2x2 max
    features.conv3  3x3, 32 -> 48              features.relu3   features.pool3  2x2 max
    features.conv4  3x3, 48 -> 64              features.relu4   features.pool4  2x2 max
    features.conv5  3x3, 64 -> 64              features.relu5   features.pool5  2x2 max
    pool            global max pool -> (N, 64, 1, 1);  flatten -> (N, 64)
    classifier.fc1  64 -> 64                   classifier.relu6
    classifier.fc2  64 -> 6 logits (see ``SHAPES_WEIGHTS.meta["categories"]``)

Why a 3x3 first layer at full resolution followed by a max-pool, rather than Zeiler and
Fergus's 7x7 stride-2 one: a first-layer unit that fires on an object's outline paints its
whole filter footprint back into pixel space, so with 7x7 filters the brightest DeconvNet /
Guided Backprop pixel often lay 2-3 px *outside* the object (pointing game within 1 px:
0.85 / 0.55); with 3x3 filters and the pool's switches it lies on the object or next to it
(1.00 / 1.00 for the shipped checkpoint; 0.99 / 0.99 with the old 5-epoch schedule), at about
the same cost (measured on the same 150 held-out scenes, data and seed).

It is trained with BatchNorm after every convolution (see
:mod:`saliency_widget.models.train_shapes`); the BatchNorm layers are then folded into
the convolutions, so the shipped network is a pure conv -> ReLU -> max-pool stack, the
setting DeconvNet and Guided Backprop were defined for. The global max pool (rather than
flatten + linear) is what made training work: it makes the classifier translation
invariant, and its argmax "switch" routes saliency back to one location, as the max-pool
switches of Zeiler & Fergus do.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..data.shapes import CLASSES, MEAN, STD
from ..errors import InputError, SaliencyError

__all__ = [
    "CHANNELS",
    "CHECKPOINT",
    "ShapesCNN",
    "Preprocess",
    "BundledWeights",
    "SHAPES_WEIGHTS",
    "shapes_cnn",
    "fold_batchnorm",
]

CHANNELS: tuple[int, ...] = (16, 32, 48, 64, 64)
"""Output channels of ``features.conv1`` .. ``features.conv5``."""

HIDDEN = 64
"""Width of ``classifier.fc1``."""

CHECKPOINT = Path(__file__).with_name("shapes_cnn.pt")
"""The shipped fp32 state dict (BatchNorm already folded)."""

METADATA = Path(__file__).with_name("shapes_cnn.json")
"""Written next to the checkpoint by the training script: accuracy, seed, time, ..."""


class ShapesCNN(nn.Sequential):
    """The bundled network as a named ``nn.Sequential`` (see the module docstring).

    Parameters
    ----------
    num_classes
        Number of output logits.
    batchnorm
        Insert ``features.bnK`` after every ``features.convK`` (training only; fold with
        :func:`fold_batchnorm` before shipping).

    Notes
    -----
    Input ``(N, 3, H, W)`` float normalised with :data:`~saliency_widget.data.MEAN` /
    :data:`~saliency_widget.data.STD`; output ``(N, num_classes)`` logits.
    """

    def __init__(self, num_classes: int = len(CLASSES), batchnorm: bool = False) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = 3
        for k, c_out in enumerate(CHANNELS, start=1):
            layers[f"conv{k}"] = nn.Conv2d(
                c_in,
                c_out,
                kernel_size=3,
                padding=1,
                bias=not batchnorm,  # BatchNorm's shift replaces the bias while training
            )
            if batchnorm:
                layers[f"bn{k}"] = nn.BatchNorm2d(c_out)
            layers[f"relu{k}"] = nn.ReLU()
            layers[f"pool{k}"] = nn.MaxPool2d(kernel_size=2, stride=2)
            c_in = c_out
        super().__init__(
            OrderedDict(
                features=nn.Sequential(layers),
                pool=nn.AdaptiveMaxPool2d(1),
                flatten=nn.Flatten(),
                classifier=nn.Sequential(
                    OrderedDict(
                        fc1=nn.Linear(c_in, HIDDEN),
                        relu6=nn.ReLU(),
                        fc2=nn.Linear(HIDDEN, num_classes),
                    )
                ),
            )
        )


@torch.no_grad()
def fold_batchnorm(trained: ShapesCNN) -> ShapesCNN:
    """Fold every ``features.bnK`` into ``features.convK``; returns a new BatchNorm-free model.

    In eval mode ``bn(conv(x)) = s * (W * x + b - mu) + beta`` with
    ``s = gamma / sqrt(var + eps)`` per output channel, which is a convolution with
    weight ``s * W`` and bias ``s * (b - mu) + beta``; so the folded model computes the
    same function (up to float rounding) with the paper's plain architecture.

    Parameters
    ----------
    trained
        A :class:`ShapesCNN` built with ``batchnorm=True`` (its running statistics are used).

    Returns
    -------
    ShapesCNN
        ``batchnorm=False`` model in eval mode.
    """
    fc2 = trained.get_submodule("classifier.fc2")
    if not isinstance(fc2, nn.Linear):
        raise InputError(f"expected a ShapesCNN with a Linear classifier.fc2, got {type(fc2).__name__}")
    num_classes = fc2.out_features
    folded = ShapesCNN(num_classes=num_classes, batchnorm=False).eval()
    for k in range(1, len(CHANNELS) + 1):
        conv: nn.Conv2d = getattr(trained.features, f"conv{k}")
        bn: nn.BatchNorm2d | None = getattr(trained.features, f"bn{k}", None)
        target: nn.Conv2d = getattr(folded.features, f"conv{k}")
        weight = conv.weight.detach().clone()
        bias = conv.bias.detach().clone() if conv.bias is not None else torch.zeros(weight.shape[0])
        if bn is not None and bn.running_var is not None and bn.running_mean is not None:
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            weight = weight * scale.view(-1, 1, 1, 1)
            bias = (bias - bn.running_mean) * scale + bn.bias
        target.weight.copy_(weight)
        if target.bias is not None:
            target.bias.copy_(bias)
    folded.classifier.load_state_dict(trained.classifier.state_dict())  # type: ignore[union-attr,operator]
    return folded


class Preprocess:
    """Image -> normalised model input, like torchvision's ``weights.transforms()``.

    Resizes the shorter side to ``size`` (bilinear), centre-crops to ``size x size``,
    scales to [0, 1] and normalises with ``mean`` / ``std``.

    Parameters
    ----------
    size
        Output side in pixels.
    mean, std
        Per-channel normalisation constants (RGB, for values in [0, 1]).
    """

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.size = int(size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def __call__(self, image: Image.Image | np.ndarray) -> torch.Tensor:
        """Preprocess one image.

        Parameters
        ----------
        image
            A PIL image (any mode; converted to RGB) or a uint8 array ``(H, W, 3)``
            (or ``(H, W)`` grey).

        Returns
        -------
        torch.Tensor
            ``(3, size, size)`` float32.
        """
        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
                raise InputError(
                    f"image array has dtype {image.dtype} and shape {image.shape}: expected uint8 of shape "
                    "(H, W, 3) or (H, W). Convert float images with (x * 255).round().astype(np.uint8)."
                )
            image = Image.fromarray(image)
        if not isinstance(image, Image.Image):
            raise InputError(
                f"image is a {type(image).__name__}: expected a PIL.Image or a uint8 numpy array (H, W, 3)."
            )
        image = image.convert("RGB")
        w, h = image.size
        scale = self.size / min(w, h)
        new_w, new_h = max(self.size, round(w * scale)), max(self.size, round(h * scale))
        if (new_w, new_h) != (w, h):
            image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
        left, top = (new_w - self.size) // 2, (new_h - self.size) // 2
        image = image.crop((left, top, left + self.size, top + self.size))
        x = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255.0)
        return (x - torch.tensor(self.mean).view(3, 1, 1)) / torch.tensor(self.std).view(3, 1, 1)

    def __repr__(self) -> str:
        return f"Preprocess(size={self.size}, mean={self.mean}, std={self.std})"


@dataclass(frozen=True)
class BundledWeights:
    """Weights shipped inside the package, described like a torchvision ``Weights`` entry.

    Attributes
    ----------
    name
        Identifier of the weights.
    checkpoint
        Path of the fp32 state dict.
    metadata
        Path of the JSON file the training script wrote next to the checkpoint.
    categories, mean, std, input_size
        Label names and preprocessing constants.
    """

    name: str
    checkpoint: Path
    metadata: Path
    categories: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: tuple[int, int]

    @property
    def training(self) -> dict[str, Any]:
        """What the training script recorded (held-out accuracy, seed, epochs, time, ...); {} if absent."""
        try:
            return dict(json.loads(self.metadata.read_text()))
        except FileNotFoundError:
            return {}

    @property
    def meta(self) -> dict[str, Any]:
        """torchvision-style metadata: categories, mean, std, input_size, accuracy, num_params, file_size."""
        info = self.training
        return {
            "categories": list(self.categories),
            "mean": self.mean,
            "std": self.std,
            "input_size": self.input_size,
            "accuracy": info.get("heldout_accuracy"),
            "num_params": info.get("num_params"),
            "file_size": self.checkpoint.stat().st_size if self.checkpoint.exists() else None,
            "recipe": "python -m saliency_widget.models.train_shapes",
        }

    def transforms(self) -> Preprocess:
        """The preprocessing the model expects: PIL image or uint8 ``(H, W, 3)`` -> ``(3, 128, 128)`` float."""
        return Preprocess(self.input_size[0], self.mean, self.std)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation for display.

        Parameters
        ----------
        x
            ``(3, H, W)`` or ``(N, 3, H, W)`` normalised input.

        Returns
        -------
        torch.Tensor
            Same shape, values in [0, 1] (clamped).
        """
        if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4) or x.shape[-3] != 3:
            raise InputError(
                f"denormalize expected a tensor of shape (3, H, W) or (N, 3, H, W), got "
                f"{type(x).__name__} {tuple(getattr(x, 'shape', ()))}."
            )
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(3, 1, 1)
        return (x * std + mean).clamp(0.0, 1.0)

    def get_state_dict(self) -> Mapping[str, torch.Tensor]:
        """Load the checkpoint (``torch.load(..., weights_only=True)``, on CPU)."""
        if not self.checkpoint.exists():
            raise SaliencyError(
                f"The bundled checkpoint {self.checkpoint} is missing. Recreate it with "
                "`python -m saliency_widget.models.train_shapes` or use shapes_cnn(pretrained=False)."
            )
        return torch.load(self.checkpoint, map_location="cpu", weights_only=True)

    def __repr__(self) -> str:
        return f"BundledWeights({self.name!r})"


SHAPES_WEIGHTS = BundledWeights(
    name="shapes_cnn.v1",
    checkpoint=CHECKPOINT,
    metadata=METADATA,
    categories=CLASSES,
    mean=MEAN,
    std=STD,
    input_size=(128, 128),
)
"""The bundled weights of :func:`shapes_cnn`."""


def shapes_cnn(pretrained: bool = True) -> ShapesCNN:
    """The bundled shapes CNN, in eval mode.

    Parameters
    ----------
    pretrained
        Load the shipped weights (offline, from inside the package); otherwise the
        weights are randomly initialised.

    Returns
    -------
    ShapesCNN
        Maps ``(N, 3, H, W)`` normalised images to ``(N, 6)`` logits. Its attribute
        ``saliency_weights`` is :data:`SHAPES_WEIGHTS`, from which the widget reads the
        labels (``.meta["categories"]``) and preprocessing (``.transforms()``).
    """
    if not isinstance(pretrained, bool):
        raise InputError(f"pretrained={pretrained!r} is not valid: expected True or False.")
    model = ShapesCNN(num_classes=len(CLASSES), batchnorm=False)
    if pretrained:
        model.load_state_dict(SHAPES_WEIGHTS.get_state_dict())
    model.saliency_weights = SHAPES_WEIGHTS  # type: ignore[assignment]  # read by describe_model
    return model.eval()
