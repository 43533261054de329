"""Build a torchvision classification model by name, with a clear error when its weights are offline.

torchvision downloads pretrained weights on first use into the torch hub cache
(``~/.cache/torch/hub/checkpoints/`` unless ``TORCH_HOME`` / ``torch.hub.set_dir`` say
otherwise). Without network access and without that file, torchvision fails with a
low-level URL error; :func:`torchvision_model` turns that into an :class:`InputError`
that says which file to put where, or what to use instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from ..errors import InputError, choices

__all__ = ["torchvision_model", "weights_cache_path"]


def weights_cache_path(weights: WeightsEnum) -> Path:
    """Where ``torch.hub`` caches (and looks for) the file of ``weights``.

    Parameters
    ----------
    weights
        A torchvision weights enum member, e.g. ``ResNet18_Weights.IMAGENET1K_V1``.

    Returns
    -------
    pathlib.Path
        ``<torch hub dir>/checkpoints/<file name of weights.url>``.
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def _resolve_weights(name: str, weights: WeightsEnum | str) -> WeightsEnum:
    enum = torchvision.models.get_model_weights(name)
    valid = ["DEFAULT", *(m.name for m in enum)]
    if isinstance(weights, WeightsEnum):
        if not isinstance(weights, enum):
            raise InputError(
                f"weights={weights!r} belong to another model: {name!r} takes {enum.__name__}.{{{', '.join(valid)}}}."
            )
        return weights
    if isinstance(weights, str):
        key = weights.split(".")[-1]  # accept "IMAGENET1K_V1" and "ResNet18_Weights.IMAGENET1K_V1"
        if key in valid and (key == weights or weights.split(".")[0] == enum.__name__):
            return enum[key]
    raise InputError(
        f"weights={weights!r} is not valid for torchvision model {name!r}: expected None, a {enum.__name__} "
        f"member or one of {choices(valid)}."
    )


def torchvision_model(name: str, weights: WeightsEnum | str | None = "DEFAULT", *, download: bool = True) -> nn.Module:
    """A torchvision classification model, by name, in eval mode.

    Parameters
    ----------
    name
        A name from ``torchvision.models.list_models(module=torchvision.models)``, e.g.
        ``"resnet18"``, ``"vgg16"``, ``"alexnet"``.
    weights
        ``"DEFAULT"`` (the best available), another member name of the model's weights enum
        (``"IMAGENET1K_V1"``), an enum member, or None for random initialisation.
    download
        Allow torchvision to download the weights when they are not in the torch hub
        cache. With False, a missing file fails at once instead of trying the network.

    Returns
    -------
    torch.nn.Module
        The model (input ``(N, 3, H, W)`` normalised as ``weights.transforms()`` does,
        output ``(N, num_classes)`` logits). With weights, its ``saliency_weights``
        attribute is the weights enum member, which carries ``.meta["categories"]`` and
        ``.transforms()`` for the widget.

    Raises
    ------
    InputError
        Unknown model name or weights, or weights that are neither cached nor downloadable
        (the message says where to put the file, or to use ``weights=None`` or the bundled
        :func:`~saliency_widget.models.shapes_cnn`).
    """
    names = torchvision.models.list_models(module=torchvision.models)
    if not isinstance(name, str) or name not in names:
        raise InputError(f"{name!r} is not a torchvision classification model: expected one of {choices(names)}.")
    if weights is None:
        return torchvision.models.get_model(name, weights=None).eval()
    w = _resolve_weights(name, weights)
    cached = weights_cache_path(w)
    how = (
        f"To proceed offline, download {w.url} on a machine with internet access and copy it to {cached} "
        f"(the torch hub cache; set TORCH_HOME to move it), or call torchvision_model({name!r}, weights=None) "
        "for random weights, or use the bundled offline model saliency_widget.models.shapes_cnn()."
    )
    if not cached.exists() and not download:
        raise InputError(
            f"The {w!r} weights of {name!r} are not in the torch hub cache ({cached}) and download=False. {how}"
        )
    try:
        model = torchvision.models.get_model(name, weights=w)
    except Exception as exc:  # URLError / HTTPError / hash or unpickling errors: all mean "no usable file"
        where = "could not be downloaded" if not cached.exists() else f"could not be read from {cached}"
        raise InputError(f"The {w!r} weights of {name!r} {where} ({type(exc).__name__}: {exc}). {how}") from exc
    model.saliency_weights = w
    return model.eval()
