"""Which layers the explorer offers, how they are labelled, and which one it opens on.

Layers that cannot change a feature map (``nn.Identity``; dropout and drop-path in eval mode)
are listed only behind the menu's "all layers" toggle: a timm ViT has 236 inspectable layers,
112 of them such no-ops, each showing the same map as the layer before it.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..engine import LayerInfo
from ..engine.layouts import SPATIAL_LAYOUTS
from ..errors import ModelError, choices

__all__ = ["NOOP_TYPES", "default_layer", "is_noop", "layer_choices", "noop_layers"]

#: Module types that pass their input through unchanged (dropout and drop-path: in eval mode).
NOOP_TYPES: frozenset[str] = frozenset({"Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
                                        "FeatureAlphaDropout", "DropPath", "DropBlock2d", "StochasticDepth"})
_ALWAYS = frozenset({"Identity"})  # no-ops whatever the training flag


def is_noop(info: LayerInfo, model: nn.Module | None = None) -> bool:
    """True when ``info``'s module returns its input unchanged in the forward the explorer records.

    ``Identity`` always; the dropout family only while its module is in eval mode (looked up in
    ``model``; without a model, eval mode is assumed).
    """
    if info.type not in NOOP_TYPES:
        return False
    if info.type in _ALWAYS or model is None:
        return True
    try:
        return not model.get_submodule(info.name).training
    except AttributeError:  # a name the model does not resolve (e.g. a wrapped module): trust the type
        return True


def noop_layers(layers: Sequence[LayerInfo], model: nn.Module | None = None) -> set[str]:
    """The keys of the layers :func:`is_noop` calls pass-through (hidden unless "all layers" is on)."""
    return {i.key for i in layers if is_noop(i, model)}


def layer_choices(layers: Sequence[LayerInfo], hide: set[str] | frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """``(label, key)`` of every layer with a spatial layout, in forward order, for the layer menu.

    NCHW layers as they are; channels-last (NHWC) and token layers through their ``(C, H, W)``
    view, labelled with their layout (and prefix tokens); ambiguous layers are left out, and so
    are the keys in ``hide`` (e.g. :func:`noop_layers`).

    Raises
    ------
    ModelError
        No layer has a ``(C, H, W)`` output.
    """
    spatial = [i for i in layers if i.layout in SPATIAL_LAYOUTS]
    if not spatial:
        raise ModelError(
            "the model has no layer with a (C, H, W) output to inspect (layout NCHW, NHWC or tokens); "
            f"its layers: {choices([f'{i.key} {i.layout}' for i in layers])}"
        )
    shown = [i for i in spatial if i.key not in hide] or spatial
    return [(f"{i.key}  ({i.type}, {'x'.join(str(s) for s in i.shape)}{_layout_note(i)})", i.key) for i in shown]


def _layout_note(info: LayerInfo) -> str:
    if info.layout == "NHWC":
        return ", channels-last"
    if info.layout == "tokens":
        return f", tokens: {info.prefix_tokens} prefix + grid" if info.prefix_tokens else ", tokens"
    return ""


def default_layer(layers: Sequence[LayerInfo], model: nn.Module | None = None) -> str:
    """The layer the explorer opens on: the last post-ReLU layer with a real spatial map.

    Filters are most semantic there, and post-ReLU maps are what Zeiler & Fergus project; a
    1x1 global pool and pass-through layers (:func:`is_noop`) are skipped.
    """
    maps = [i for i in layers if i.layout in SPATIAL_LAYOUTS]
    maps = [i for i in maps if not is_noop(i, model)] or maps
    spatial = [i for i in maps if i.shape[1] * i.shape[2] > 1] or maps
    relus = [i for i in spatial if "relu" in i.type.lower()]
    return (relus or spatial)[-1].key
