"""Images in, model inputs out: guarded decoding and the one reader of a model's labels and preprocessing.

* :func:`to_pil` turns whatever a user passes (PIL image, array, path, PNG/JPEG bytes) into an
  RGB PIL image, with the decompression-bomb and format guards.
* :func:`describe_model` is the single place that reads what a model says about itself: its
  class names and its preprocessing (torchvision-style ``weights`` objects today). Every caller
  (the explorer, reports, the CLI, the analyses panel) asks it instead of probing ``meta``.
* :func:`resolve_target` turns what a user calls a class (None, an index or a label) into an
  index, for reports and the CLI.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import InputError, choices

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ModelIO",
    "describe_model",
    "imagenet_transform",
    "resolve_target",
    "to_model_input",
    "to_pil",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

Transform = Callable[[Image.Image], torch.Tensor]


def _describe_bytes(data: bytes) -> str:
    """A short, safe description of undecodable bytes for an error message."""
    return f"{len(data)} bytes starting {data[:16]!r}"


def _decode(src: Any, what: str) -> Image.Image:
    """Open ``src`` (a path or a file object) with PIL, guarded, and return an RGB copy.

    PIL's decompression-bomb check (``Image.MAX_IMAGE_PIXELS``) is applied strictly: an image
    above the limit is an :class:`InputError` (PIL itself only warns up to twice the limit
    and would decode it).
    """
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(src) as im:
                w, h = im.size
                if limit is not None and w * h > limit:
                    raise Image.DecompressionBombError(f"{w}x{h} = {w * h} pixels")
                if w == 0 or h == 0:
                    raise InputError(f"{what} has zero size ({w}x{h}); use an image with at least one pixel")
                return im.convert("RGB")
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(
            f"{what} is too large to decode safely ({exc}); the limit is "
            f"PIL.Image.MAX_IMAGE_PIXELS = {limit} pixels (decompression-bomb guard). "
            "Downscale the image first"
        ) from None
    except Image.UnidentifiedImageError:
        raise InputError(f"cannot decode {what}: not in an image format PIL can read. Use a PNG or JPEG file") from None
    except Exception as exc:  # noqa: BLE001 -- any decoder failure (truncated, corrupt) is a bad input
        raise InputError(f"cannot decode {what} as an image: {exc}. Use a PNG or JPEG file") from None


def _array_to_pil(a: np.ndarray) -> Image.Image:
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise InputError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(f"the image array has zero size (shape {a.shape}); use an image with at least one pixel")
    if a.dtype != np.uint8:
        if not np.all(np.isfinite(a)):
            raise InputError("the image array contains NaN/Inf")
        hi = float(a.max()) if a.size else 0.0
        a = np.clip(a * (255.0 if hi <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return Image.fromarray(a).convert("RGB")


def to_pil(obj: Any) -> Image.Image:
    """Decode bytes, open a path or convert an array into an RGB PIL image.

    Parameters
    ----------
    obj
        A PIL image, an ndarray ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` (uint8, or floats in
        [0, 1] or [0, 255]), a file path, or PNG/JPEG/... bytes.

    Returns
    -------
    PIL.Image.Image
        An RGB image.

    Raises
    ------
    InputError
        Empty, undecodable, vector (SVG), too large (decompression bomb) or zero-sized input,
        a directory or a missing file, or an unsupported type.
    """
    if isinstance(obj, Image.Image):
        if obj.width == 0 or obj.height == 0:
            raise InputError(f"the image has zero size ({obj.width}x{obj.height}); use an image with at least one pixel")
        return obj.convert("RGB")
    if isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
        if not data:
            raise InputError("the image data is empty (0 bytes); upload or pass a PNG/JPEG file")
        if data.lstrip()[:5].lower() in (b"<svg ", b"<?xml") or b"<svg" in data[:512].lower():
            raise InputError(
                f"the image data ({_describe_bytes(data)}) is SVG, a vector format that cannot be decoded "
                "here; export it to PNG first"
            )
        return _decode(io.BytesIO(data), f"the image data ({_describe_bytes(data)})")
    if isinstance(obj, (str, Path)):
        p = Path(obj).expanduser()
        if p.is_dir():
            raise InputError(f"image path {str(p)!r} is a directory; pass the path of an image file inside it")
        if not p.is_file():
            raise InputError(f"image file not found: {str(p)!r}; check the path (relative to {str(Path.cwd())!r})")
        if p.stat().st_size == 0:
            raise InputError(f"image file {str(p)!r} is empty (0 bytes)")
        return _decode(p, repr(str(p)))
    if isinstance(obj, np.ndarray):
        return _array_to_pil(obj)
    raise InputError(
        f"image must be a PIL image, ndarray, tensor, path or PNG/JPEG bytes, got {type(obj).__name__}"
    )


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


def describe_model(
    model: Any,
    weights: Any = None,
    labels: Sequence[str] | None = None,
    transform: Transform | None = None,
) -> ModelIO:
    """Read a model's class names and preprocessing, with explicit arguments taking precedence.

    Parameters
    ----------
    model
        The classifier. A ``saliency_weights`` attribute (the bundled model) is read like ``weights``.
    weights
        A torchvision-style weights object (``.meta["categories"]``, ``.transforms()``).
    labels
        Class names; overrides what the weights say.
    transform
        PIL image -> ``(C, H, W)`` tensor; overrides the weights' ``transforms()``.

    Returns
    -------
    ModelIO
        Labels (None when unknown), the transform (default :func:`imagenet_transform`) and
        its normalisation constants.

    Raises
    ------
    InputError
        ``labels`` is not a sequence of names.
    """
    if labels is not None and (isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence)):
        raise InputError(
            f"labels must be a list of class names (one per class), got {type(labels).__name__} {labels!r:.60}"
        )
    src = weights if weights is not None else getattr(model, "saliency_weights", None)
    names = [str(s) for s in labels] if labels is not None else _labels_from(src)
    source = "weights" if src is not None else "default"
    if transform is None and src is not None and callable(getattr(src, "transforms", None)):
        transform = src.transforms()
    if transform is None:
        tf = imagenet_transform()
        return ModelIO(names, tf, IMAGENET_MEAN, IMAGENET_STD, "default")
    mean, std = _norm_from(src, transform)
    return ModelIO(names, transform, mean, std, source)


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


def to_model_input(image: Any, transform: Transform) -> torch.Tensor:
    """Turn one image of any accepted kind into the model's ``(C, H, W)`` float input.

    Parameters
    ----------
    image
        A float tensor ``(C, H, W)`` or ``(1, C, H, W)`` already preprocessed, a ``(C, H, W)``
        array (C of 1 or 3), or anything :func:`to_pil` accepts (then ``transform`` runs).
    transform
        PIL image -> ``(C, H, W)`` tensor (or ``(1, C, H, W)``).

    Returns
    -------
    torch.Tensor
        ``(C, H, W)`` float32, detached.

    Raises
    ------
    InputError
        A tensor that is not a float ``(C, H, W)`` input, an undecodable image, or a
        transform that returns something else than a ``(C, H, W)`` tensor.
    """
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3, 4):
        image = torch.from_numpy(np.ascontiguousarray(image)).float()  # a (C, H, W) array, not (H, W, C)
    if isinstance(image, torch.Tensor):
        x = image.detach()
        if x.dim() == 4 and x.shape[0] == 1:
            x = x[0]
        if x.dim() != 3 or not x.is_floating_point():
            raise InputError(f"an image tensor must be a float (C, H, W) model input, got {tuple(image.shape)} {image.dtype}")
        return x.float()
    x = transform(to_pil(image))
    if not isinstance(x, torch.Tensor):
        raise InputError(f"transform must return a tensor, got {type(x).__name__}")
    if x.dim() == 4 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 3:
        raise InputError(f"transform must return a (C, H, W) tensor, got shape {tuple(x.shape)}")
    return x.detach().float()
