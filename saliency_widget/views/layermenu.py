"""Which layers the explorer offers, how they are labelled, and which one it opens on."""

from __future__ import annotations

from collections.abc import Sequence

from ..engine import LayerInfo
from ..engine.layouts import SPATIAL_LAYOUTS
from ..errors import ModelError, choices

__all__ = ["default_layer", "layer_choices"]


def layer_choices(layers: Sequence[LayerInfo]) -> list[tuple[str, str]]:
    """``(label, key)`` of every layer with a spatial layout, in forward order, for the layer menu.

    NCHW layers as they are; channels-last (NHWC) and token layers through their ``(C, H, W)``
    view, labelled with their layout (and prefix tokens); ambiguous layers are left out.

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
    return [(f"{i.key}  ({i.type}, {'x'.join(str(s) for s in i.shape)}{_layout_note(i)})", i.key) for i in spatial]


def _layout_note(info: LayerInfo) -> str:
    if info.layout == "NHWC":
        return ", channels-last"
    if info.layout == "tokens":
        return f", tokens: {info.prefix_tokens} prefix + grid" if info.prefix_tokens else ", tokens"
    return ""


def default_layer(layers: Sequence[LayerInfo]) -> str:
    """The layer the explorer opens on: the last post-ReLU layer with a real spatial map.

    Filters are most semantic there, and post-ReLU maps are what Zeiler & Fergus project; a
    1x1 global pool is skipped.
    """
    maps = [i for i in layers if i.layout in SPATIAL_LAYOUTS]
    spatial = [i for i in maps if i.shape[1] * i.shape[2] > 1] or maps
    relus = [i for i in spatial if "relu" in i.type.lower()]
    return (relus or spatial)[-1].key
