"""``explore()``: the explorer with sensible defaults (the bundled model, a sample that fits it)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image

from ..data import load_sample, sample_images
from ..errors import InputError
from .explorer import Explorer

__all__ = ["explore"]


def _bundled_samples(shapes_model: bool) -> dict[str, Callable[[], Image.Image]]:
    """The bundled sample images that fit the model, as ``{name: loader}``.

    The bundled shapes model knows only its six shapes: it gets the shape scenes (a photo of a
    cat would be "explained" as a star). Any other model gets the photos.
    """
    names = [n for n in sample_images() if n.startswith("shapes") == shapes_model]
    return {name: functools.partial(load_sample, name) for name in names}


def explore(
    model: torch.nn.Module | str | None = None,
    image: Any = None,
    *,
    labels: Sequence[str] | None = None,
    transform: Callable[[Image.Image], torch.Tensor] | None = None,
    device: str | torch.device | None = None,
    weights: Any = None,
    processor: Any = None,
    index: Any = None,
    data: Any = None,
) -> Explorer:
    """Open the interactive saliency explorer.

    Parameters
    ----------
    model
        A classifier ``nn.Module`` returning logits, or a model spec such as
        ``"torchvision:resnet18"`` (see :func:`saliency_widget.models.load_model`). None: the
        bundled ``shapes_cnn`` (pretrained, offline).
    image
        PIL image, ndarray (H, W[, 3]), float tensor (C, H, W) already preprocessed, a
        file path, or PNG/JPEG bytes. None: the first bundled sample that fits the model (a
        shape scene for the bundled model, a photo for any other).
    labels
        Class names (length = number of classes). Default: what the model says
        (``weights.meta["categories"]``, the bundled model's, a Hugging Face
        ``config.id2label``), else ``"class i"``.
    transform
        PIL image -> (C, H, W) tensor. Default: ``processor``, ``weights.transforms()``, a timm
        model's ``pretrained_cfg``, else resize to 224 (a Hugging Face config's ``image_size``)
        and ImageNet normalisation. See :func:`saliency_widget.viz.modelio.describe_model`.
    device
        Device for the engine (the model is not moved; must match it if given).
    weights
        A weights object with ``.transforms()`` and ``.meta`` (torchvision style).
    processor
        A Hugging Face image processor (``AutoImageProcessor.from_pretrained(...)``).
    index
        A top-k index directory from ``saliency-widget mine`` (or a loaded
        :class:`~saliency_widget.analysis.MiningIndex`) of this model: the analyses panel shows the
        top-9 grid of the current layer and filter from it, without rescanning.
    data
        Images the analyses panel's top-9 scans: a folder path, a torch ``Dataset`` or
        ``DataLoader`` (of images or ``(images, ...)`` tuples, preprocessed for the model) or
        an ``(N, C, H, W)`` tensor. None: the bundled shape scenes for the bundled model; any
        other model scans nothing until data is chosen in the panel.

    Returns
    -------
    Explorer
        The widget; display it (last expression of a cell) to interact.

    Raises
    ------
    InputError
        Bad image, or labels whose length differs from the model's class count.
    ModelError
        The model cannot be explained (e.g. TorchScript, or not an ``nn.Module``), or ``index``
        was mined with another model.
    """
    from ..models import ShapesCNN, load_model

    model = load_model(model)
    samples = _bundled_samples(shapes_model=isinstance(model, ShapesCNN))
    if image is None:
        if not samples:
            raise InputError("no image given and no bundled sample image fits this model; pass image=...")
        image = next(iter(samples.values()))()
    mined = None
    if index is not None:  # checked before the explorer starts its worker: a wrong index costs nothing
        from ..analysis import MiningIndex, load_index

        mined = index if isinstance(index, MiningIndex) else load_index(index)
        mined.check_model(model)
    explorer = Explorer(
        model, image, labels=labels, transform=transform, device=device, weights=weights, processor=processor, samples=samples,
        data=data,
    )
    if mined is not None:
        from .analyses import attach_index

        attach_index(explorer, mined)
    return explorer
