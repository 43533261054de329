"""The one image decoder: anything a user passes (path, bytes, array, PIL image) to an RGB image, guarded.

Every path that reads an image file goes through here: the widget's uploads and its top-9
folder, ``saliency-widget render`` (files and ``--data``), ``mine`` over a folder and
:func:`saliency_widget.analysis.top_activations` on one. So one list of suffixes
(:data:`IMAGE_SUFFIXES`), one folder lister (:func:`list_images`) and one set of guards:

* :func:`to_pil` returns an RGB PIL image. JPEG/TIFF EXIF orientation is applied (a phone's
  portrait photo comes out upright), and 16-bit images (``I;16`` PNGs, ``uint16`` arrays) are
  scaled by their range 0..65535 to 8 bits.
* Decompression bombs: an image above ``PIL.Image.MAX_IMAGE_PIXELS`` is refused before its pixels
  are decoded (PIL itself only warns up to twice the limit).
* The aspect-ratio guard (:data:`MAX_ASPECT_RATIO`) bounds what any preprocessing can cost:
  a transform that resizes the shorter side to ``S`` makes ``S * S * ratio`` pixels, so a
  131-byte PNG of 10000 x 1 pixels would otherwise cost hundreds of MB. Such an image is
  refused (it is not silently cropped or squeezed, which would explain a picture the user did
  not pass).
* :func:`to_model_input` turns one image into the model's ``(C, H, W)`` input with its transform.

Every refusal is one :class:`~saliency_widget.errors.InputError` line naming the file or data.
Floor: ``data`` (imports ``errors`` only); pure, no Jupyter.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import InputError

__all__ = ["IMAGE_SUFFIXES", "MAX_ASPECT_RATIO", "list_images", "to_model_input", "to_pil"]

Transform = Callable[[Image.Image], torch.Tensor]

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm")
"""File suffixes (lower case) read as images in a folder, by every reader of folders."""

MAX_ASPECT_RATIO = 20.0
"""Largest accepted ratio of an image's longer side to its shorter side.

Bounds the cost of every preprocessing path (bundled, ImageNet default, torchvision weights,
timm, Hugging Face, user transforms): after a shorter-side resize to ``S`` an image holds at
most ``S * S * MAX_ASPECT_RATIO`` pixels (10 MB of RGB at ``S = 400``). Panoramas up to 20:1
pass; crop longer strips first.
"""

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def _describe_bytes(data: bytes) -> str:
    """A short, safe description of undecodable bytes for an error message."""
    return f"{len(data)} bytes starting {data[:16]!r}"


def _check_shape(w: int, h: int, what: str) -> None:
    """Refuse zero-sized images and aspect ratios above :data:`MAX_ASPECT_RATIO`."""
    if w == 0 or h == 0:
        raise InputError(f"{what} has zero size ({w}x{h}); use an image with at least one pixel")
    ratio = max(w, h) / min(w, h)
    if ratio > MAX_ASPECT_RATIO:
        raise InputError(
            f"{what} is {w}x{h} pixels, an aspect ratio of {ratio:.0f}:1; the limit is "
            f"{MAX_ASPECT_RATIO:.0f}:1 (saliency_widget.data.decode.MAX_ASPECT_RATIO), because resizing "
            "its shorter side for the model would make a huge image. Crop it to a less elongated region first"
        )


def _to_rgb(im: Image.Image) -> Image.Image:
    """RGB copy of ``im``, upright (EXIF orientation applied) and 16-bit modes scaled to 8 bits."""
    im = ImageOps.exif_transpose(im)  # a copy; a no-op for images without an orientation tag
    if im.mode in _SIXTEEN_BIT_MODES:
        # PIL's convert() clips 16-bit values at 255; scale by the format's range instead
        a = np.asarray(im).astype(np.float64) * (255.0 / 65535.0)
        return Image.fromarray(np.rint(a).astype(np.uint8)).convert("RGB")
    return im.convert("RGB")


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
                _check_shape(w, h, what)  # before decoding the pixels
                return _to_rgb(im)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        size = re.search(r"\d+x\d+ = \d+ pixels|\d+ pixels", str(exc))  # PIL's own text names its 2x limit: say ours
        raise InputError(
            f"{what} is too large to decode safely ({size.group(0) if size else exc}); the limit is "
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
    _check_shape(a.shape[1], a.shape[0], f"the image array (shape {a.shape})")
    if a.dtype == np.uint16:
        # 16-bit data (scientific cameras, 16-bit PNGs read with other libraries): scale 0..65535 to 0..255
        a = np.rint(a.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    elif a.dtype != np.uint8:
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
        A PIL image, an ndarray ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` (uint8; uint16,
        scaled from 0..65535; or floats in [0, 1] or [0, 255]), a file path, or PNG/JPEG/...
        bytes. 16-bit images (``I;16``) are scaled from 0..65535; EXIF orientation is applied.

    Returns
    -------
    PIL.Image.Image
        An RGB image.

    Raises
    ------
    InputError
        Empty, undecodable, vector (SVG), too large (decompression bomb), too elongated
        (longer side over :data:`MAX_ASPECT_RATIO` times the shorter) or zero-sized input, a
        directory or a missing file, or an unsupported type.
    """
    if isinstance(obj, Image.Image):
        _check_shape(obj.width, obj.height, "the image")
        return _to_rgb(obj)
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


def list_images(folder: str | Path, what: str = "data folder") -> list[Path]:
    """Every image file under ``folder`` (recursive; suffix in :data:`IMAGE_SUFFIXES`), sorted by relative path.

    Parameters
    ----------
    folder
        A folder: ImageFolder layout (``folder/class/x.jpg``), any nesting, or flat.
    what
        How the message names the folder (e.g. ``"--data"``).

    Returns
    -------
    list of Path
        The files, sorted by their ``/``-separated path relative to ``folder``.

    Raises
    ------
    InputError
        ``folder`` is not a folder, or holds no image file.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError(f"{what} {str(folder)!r} is not a folder; give a folder of images ({', '.join(IMAGE_SUFFIXES)}), nested or flat")
    files = sorted((p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                   key=lambda p: p.relative_to(root).as_posix())
    if not files:
        raise InputError(f"{what} {str(folder)!r} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files
