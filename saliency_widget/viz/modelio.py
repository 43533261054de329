"""The one reader of what a model says about itself: its class names and its preprocessing.

:func:`describe_model` looks, in order, at explicit arguments, a torchvision-style ``weights``
object (or the bundled model's ``saliency_weights``), a Hugging Face image processor passed
as ``processor=``, a Hugging Face model's ``config.id2label``, and a timm model's
``pretrained_cfg`` (through ``timm.data.resolve_data_config`` / ``create_transform``). timm and
transformers are never imported unless the model comes from them. Every caller (the
explorer, reports, the CLI, the analyses panel) asks it instead of probing attributes itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import InputError, choices

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ModelIO",
    "Transform",
    "describe_model",
    "imagenet_transform",
    "resolve_target",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

Transform = Callable[[Image.Image], torch.Tensor]

class _ImageNetTransform:
    """Resize to ``size`` x ``size`` (bilinear) and normalise with ImageNet statistics."""

    def __init__(self, size: int = 224) -> None:
        self.size = int(size)
        self.mean = IMAGENET_MEAN
        self.std = IMAGENET_STD

    def __call__(self, img: Image.Image) -> torch.Tensor:
        """PIL image -> ``(3, size, size)`` float32, normalised."""
        img = img.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR)
        t = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (t - torch.tensor(self.mean).view(3, 1, 1)) / torch.tensor(self.std).view(3, 1, 1)

    def __repr__(self) -> str:
        return f"imagenet_transform(size={self.size})"


def imagenet_transform(size: int = 224) -> Transform:
    """The default preprocessing: resize to ``size`` x ``size`` and ImageNet normalisation.

    Returns
    -------
    callable
        PIL image -> ``(3, size, size)`` float32 tensor; it has ``.mean`` and ``.std``.
    """
    return _ImageNetTransform(size)


@dataclass(frozen=True)
class ModelIO:
    """What a model expects and answers, as far as it tells.

    Attributes
    ----------
    labels
        Class names in class-index order, or None when the model names none.
    transform
        PIL image -> ``(C, H, W)`` float tensor, the model's preprocessing.
    mean, std
        Per-channel normalisation of ``transform`` (to show inputs in colour), or None when unknown.
    source
        Where the description came from, for status lines (e.g. ``"weights"``, ``"default"``).
    """

    labels: list[str] | None
    transform: Transform
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    source: str = "default"


def _labels_from(weights: Any) -> list[str] | None:
    meta = getattr(weights, "meta", None)
    if isinstance(meta, dict) and meta.get("categories") is not None:
        return [str(c) for c in meta["categories"]]
    return None


def _norm_from(weights: Any, transform: Any) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    meta = getattr(weights, "meta", None)
    if isinstance(meta, dict) and "mean" in meta and "std" in meta:
        return tuple(meta["mean"]), tuple(meta["std"])
    # torchvision weights keep them on their transforms object (ImageClassification.mean/.std)
    mean, std = getattr(transform, "mean", None), getattr(transform, "std", None)
    if mean is not None and std is not None:
        return tuple(float(v) for v in mean), tuple(float(v) for v in std)
    return None, None


def _hf_labels(model: Any) -> list[str] | None:
    """``config.id2label`` of a Hugging Face model, in class-index order (keys may be ints or strings)."""
    id2label = getattr(getattr(model, "config", None), "id2label", None)
    if not isinstance(id2label, Mapping) or not id2label:
        return None
    try:
        by_index = {int(k): str(v) for k, v in id2label.items()}
    except (TypeError, ValueError):
        return None
    if sorted(by_index) != list(range(len(by_index))):
        return None
    return [by_index[i] for i in range(len(by_index))]


class _ProcessorTransform:
    """A Hugging Face image processor as a transform: PIL image -> its ``pixel_values[0]``, ``(C, H, W)``."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.mean = tuple(float(v) for v in processor.image_mean) if getattr(processor, "image_mean", None) is not None else None
        self.std = tuple(float(v) for v in processor.image_std) if getattr(processor, "image_std", None) is not None else None

    def __call__(self, img: Image.Image) -> torch.Tensor:
        out = self.processor(images=img.convert("RGB"), return_tensors="pt")
        return out["pixel_values"][0]

    def __repr__(self) -> str:
        return f"processor({type(self.processor).__name__})"


def _from_timm(model: Any) -> tuple[Transform, tuple[float, ...], tuple[float, ...]] | None:
    """Timm's own eval transform for a timm model (``pretrained_cfg``), or None for other models."""
    if not type(model).__module__.startswith("timm.") or not isinstance(getattr(model, "pretrained_cfg", None), Mapping):
        return None
    import timm.data  # only reached for a model that came from timm

    cfg = timm.data.resolve_data_config({}, model=model)
    return timm.data.create_transform(**cfg), tuple(cfg["mean"]), tuple(cfg["std"])


def _hf_image_size(model: Any) -> int | None:
    """The square input side a Hugging Face vision config asks for (ViT's position embeddings fix it)."""
    if not type(model).__module__.startswith("transformers."):
        return None
    size = getattr(getattr(model, "config", None), "image_size", None)
    if isinstance(size, int) and size > 0:
        return size
    if isinstance(size, (tuple, list)) and len(size) == 2 and size[0] == size[1]:
        return int(size[0])
    return None


def describe_model(
    model: Any,
    weights: Any = None,
    labels: Sequence[str] | None = None,
    transform: Transform | None = None,
    processor: Any = None,
) -> ModelIO:
    """Read a model's class names and preprocessing, with explicit arguments taking precedence.

    Parameters
    ----------
    model
        The classifier. Read from it: ``saliency_weights`` (the bundled model, like ``weights``),
        ``config.id2label`` (Hugging Face), ``pretrained_cfg`` (timm: mean, std, input size,
        crop and interpolation through ``timm.data``).
    weights
        A torchvision-style weights object (``.meta["categories"]``, ``.transforms()``).
    labels
        Class names; override what the model says.
    transform
        PIL image -> ``(C, H, W)`` tensor; overrides every other source of preprocessing.
    processor
        A Hugging Face image processor (``AutoImageProcessor``): the transform runs it on the
        image (its resize, crop, rescale and ``image_mean`` / ``image_std``).

    Returns
    -------
    ModelIO
        Labels (None when unknown), the transform (default :func:`imagenet_transform`, sized to
        a Hugging Face config's ``image_size``) and its normalisation constants.

    Raises
    ------
    InputError
        ``labels`` is not a sequence of names, or ``processor`` is not callable.
    """
    if labels is not None and (isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence)):
        raise InputError(
            f"labels must be a list of class names (one per class), got {type(labels).__name__} {labels!r:.60}"
        )
    if processor is not None and not callable(processor):
        raise InputError(
            f"processor must be a Hugging Face image processor (callable on images), got {type(processor).__name__}"
        )
    src = weights if weights is not None else getattr(model, "saliency_weights", None)
    names = [str(s) for s in labels] if labels is not None else _labels_from(src) or _hf_labels(model)
    if transform is not None:
        mean, std = _norm_from(src, transform)
        return ModelIO(names, transform, mean, std, "arguments")
    if processor is not None:
        tf = _ProcessorTransform(processor)
        return ModelIO(names, tf, tf.mean, tf.std, "processor")
    if src is not None and callable(getattr(src, "transforms", None)):
        tf = src.transforms()
        mean, std = _norm_from(src, tf)
        return ModelIO(names, tf, mean, std, "weights")
    timm_io = _from_timm(model)
    if timm_io is not None:
        return ModelIO(names, *timm_io, "timm pretrained_cfg")
    side = _hf_image_size(model)
    return ModelIO(names, imagenet_transform(side or 224), IMAGENET_MEAN, IMAGENET_STD, "default")


def resolve_target(target: Any, labels: Sequence[str] | None, num_classes: int) -> int | None:
    """Turn a user's class (None, an index or a label) into a class index.

    Parameters
    ----------
    target
        None (the caller uses each image's predicted class), an int class index, or a class
        label from ``labels``.
    labels
        Class names in class-index order, or None when the model names none (then classes are
        called ``"0"``, ``"1"``, ... as strings).
    num_classes
        K, the number of logits the model outputs.

    Returns
    -------
    int or None
        The class index in ``0..K-1``, or None for ``target=None``.

    Raises
    ------
    InputError
        A bool, an index outside ``0..K-1``, an unknown label, or another type.
    """
    if target is None:
        return None
    if isinstance(target, bool):
        raise InputError(f"target must be a class index or a class label, got the bool {target!r}")
    if isinstance(target, str):
        names = list(labels) if labels is not None else [str(i) for i in range(num_classes)]
        if target not in names:
            raise InputError(f"unknown class {target!r}; expected one of {choices(names)}")
        return names.index(target)
    if not hasattr(target, "__index__"):
        raise InputError(f"target must be None, a class index or a class label, got {type(target).__name__} {target!r:.60}")
    t = int(target.__index__())
    if not 0 <= t < num_classes:
        raise InputError(f"target {t} is out of range: valid classes are 0..{num_classes - 1}")
    return t


