"""Grad-CAM and Guided Grad-CAM (Selvaraju et al. 2017) on the Explainer's recorded forward.

Grad-CAM at layer ``A`` (shape ``(N, K, h, w)``) for class ``c``::

    alpha_k = mean_{i,j} d y_c / d A_k[i, j]
    cam     = ReLU( sum_k alpha_k * A_k )            # the paper's ReLU: keep positive evidence
    map     = bilinear upsampling of cam to (H, W)

Guided Grad-CAM multiplies the guided-backprop map by that upsampled CAM. Both reuse the
cached forward: Grad-CAM costs one backward to ``A``, Guided Grad-CAM one more to the input.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LayerError, choices
from .keys import LayerKey
from .layouts import SPATIAL_LAYOUTS, to_nchw
from .methods import check_options
from .rules import GUIDED_BACKPROP

if TYPE_CHECKING:  # pragma: no cover
    from .capture import LayerInfo
    from .session import Explainer

__all__ = ["GradCAM", "GuidedGradCAM", "default_cam_layer", "gradcam_low_res"]

_POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Dropout, nn.Dropout2d)
_NORMS = (nn.LayerNorm, nn.GroupNorm)
# default layer per Explainer: the transformer search costs a few backward passes, once
_DEFAULTS: weakref.WeakKeyDictionary[Explainer, str] = weakref.WeakKeyDictionary()


def default_cam_layer(explainer: Explainer) -> str:
    """The last spatial layer before pooling to the classifier.

    Candidates are the recorded executions of leaf modules (not pooling or dropout) whose
    output has a spatial layout (NCHW, NHWC or tokens) with an ``h x w > 1`` grid. If the last
    candidate is NCHW (every CNN; torchvision Swin's final ``permute``, the same values as
    its ``norm``), it is the default. Otherwise (a transformer ending in NHWC or token
    layers) the default is the last candidate whose grid reaches the class score, a
    normalisation layer preferred: in a class-token ViT the patch tokens after the last
    attention never reach the score (the final norm, the last MLP and the last block's
    output give all-zero Grad-CAMs), so that is the last block's input norm (``norm1`` /
    ``ln_1`` / ``layernorm_before``), pytorch-grad-cam's documented choice; in a pooled
    model (Swin) it is the final norm. When the last candidate is a residual branch whose
    block adds the skip connection afterwards (ConvNeXt), the block's output is the default.
    Returns its key (``"name"`` or ``"name#call"``).
    """
    if explainer in _DEFAULTS:
        return _DEFAULTS[explainer]
    modules = dict(explainer.model.named_modules())
    candidates = []
    for info in explainer.layers:
        mod = modules[info.name]
        if info.layout not in SPATIAL_LAYOUTS or info.shape[1] * info.shape[2] <= 1:
            continue
        if any(True for _ in mod.children()) or isinstance(mod, _POOLING):
            continue
        candidates.append(info)
    if not candidates:
        raise LayerError(
            "no spatial layer (layout NCHW, NHWC or tokens with an h x w > 1 grid) found for Grad-CAM; pass layer=... "
            f"from: {choices([i.key for i in explainer.layers])}"
        )
    best = candidates[-1].key
    if candidates[-1].layout == "NCHW":
        best = _block_output_after(explainer, candidates[-1]) or best
    else:
        reach = _reaching(explainer, [i.key for i in candidates])
        norms = [i for i in candidates if isinstance(modules[i.name], _NORMS) or i.type.endswith("Norm")]
        # none reaching (e.g. a zero-initialised head): every Grad-CAM is zero; keep the last layer
        best = next((i.key for i in [*reversed(norms), *reversed(candidates)] if i.key in reach), best)
    _DEFAULTS[explainer] = best
    return best


def _block_output_after(explainer: Explainer, last: LayerInfo) -> str | None:
    """The output of the residual block that ends after ``last``, when it differs from ``last``'s.

    A block that ends in an addition (ConvNeXt: ``x + drop_path(branch)``) has no leaf module
    after its last one: the last leaf is the branch, before the skip connection joins it. The
    block's own output (the next recorded container execution on the same grid, holding a
    different tensor or the same one changed in place) is what reaches the classifier.
    """
    layers = explainer.layers
    after = layers[[i.key for i in layers].index(last.key) + 1 :]
    last_rec = explainer.record(last.key)
    for info in after:
        if info.layout != "NCHW" or info.shape != last.shape:
            return None  # a pooling or head: the branch's grid is the last one
        rec = explainer.record(info.key)
        if rec.tensor is not last_rec.tensor or rec.version != last_rec.version:
            return info.key
    return None


def _reaching(explainer: Explainer, keys: list[str]) -> set[str]:
    """The layers among ``keys`` whose grid gets a non-zero gradient of the predicted classes' scores.

    One partial backward pass for all of them.
    """
    grads = explainer.layer_gradients(keys, explainer.logits.argmax(1))
    return {k for k, g in zip(keys, grads) if g is not None and bool(to_nchw(g, explainer.layout(k)).any())}


def gradcam_low_res(explainer: Explainer, targets: torch.Tensor, layer: str | LayerKey | None = None) -> torch.Tensor:
    """Grad-CAM at the layer's own resolution, after the ReLU.

    NHWC and token layers are read through their layout (prefix tokens dropped, the grid
    reshaped: pytorch-grad-cam's documented ViT / Swin ``reshape_transform``).

    Parameters
    ----------
    explainer
        Holds the recorded forward pass.
    targets
        ``(N,)`` class indices.
    layer
        Module name, ``"name#call"`` key or :class:`LayerKey`; default :func:`default_cam_layer`.

    Returns
    -------
    torch.Tensor
        ``(N, 1, h, w)``, detached.
    """
    rec = explainer.record(layer if layer is not None else default_cam_layer(explainer))
    lay = explainer.layout(rec.layer_key)
    if not lay.spatial:
        raise LayerError(
            f"Grad-CAM needs a spatial layer (layout NCHW, NHWC or tokens); {rec.key!r} outputs "
            f"{tuple(rec.tensor.shape)} with layout {lay.kind!r}"
        )
    act = explainer.activation(rec.layer_key)  # (N, K, h, w) view
    grads = to_nchw(explainer.layer_gradient(rec.layer_key, targets), lay)  # plain gradients, same view
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    return torch.relu((alpha * act).sum(dim=1, keepdim=True)).detach()


def _upsample(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(cam, size=size, mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class GradCAM:
    """Grad-CAM, upsampled to the input size and repeated over its channels.

    Options
    -------
    layer
        Layer name or ``"name#call"`` key; default :func:`default_cam_layer`.
    """

    name: str = "gradcam"
    label: str = "Grad-CAM"
    description: str = (
        "Grad-CAM: a layer's activations weighted by their mean gradient, upsampled (Selvaraju et al. 2017)"
    )
    needs_relu_rules: bool = False
    needs_gradients: bool = True
    single_backward: bool = False  # its one backward stops at the layer and keeps the graph

    def compute(self, explainer: Explainer, targets: torch.Tensor, **options: Any) -> torch.Tensor:
        """The map of ``targets`` ``(N,)`` on the explainer's inputs, ``(N, C, H, W)``."""
        layer = check_options(self.name, options, {"layer": None})["layer"]
        cam = gradcam_low_res(explainer, targets, layer)
        x = explainer.inputs
        return _upsample(cam, (x.shape[-2], x.shape[-1])).expand(-1, x.shape[1], -1, -1).contiguous()


@dataclass(frozen=True)
class GuidedGradCAM:
    """Guided backprop map times the upsampled Grad-CAM, ``(N, C, H, W)``."""

    name: str = "guided_gradcam"
    label: str = "Guided Grad-CAM"
    description: str = "Guided Grad-CAM: the Guided Backprop map times the upsampled Grad-CAM (Selvaraju et al. 2017)"
    needs_relu_rules: bool = True
    needs_gradients: bool = True
    single_backward: bool = True  # the CAM backward only reaches the layer and keeps the graph

    def compute(self, explainer: Explainer, targets: torch.Tensor, **options: Any) -> torch.Tensor:
        """The map of ``targets`` ``(N,)`` on the explainer's inputs, ``(N, C, H, W)``."""
        layer = check_options(self.name, options, {"layer": None})["layer"]
        x = explainer.inputs
        cam = _upsample(gradcam_low_res(explainer, targets, layer), (x.shape[-2], x.shape[-1]))
        return explainer.backward_logits(targets, GUIDED_BACKPROP) * cam
