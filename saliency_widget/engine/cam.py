"""Grad-CAM and Guided Grad-CAM (Selvaraju et al. 2017) on the Explainer's recorded forward.

Grad-CAM at layer ``A`` (shape ``(N, K, h, w)``) for class ``c``::

    alpha_k = mean_{i,j} d y_c / d A_k[i, j]
    cam     = ReLU( sum_k alpha_k * A_k )            # the paper's ReLU: keep positive evidence
    map     = bilinear upsampling of cam to (H, W)

Guided Grad-CAM multiplies the guided-backprop map by that upsampled CAM. Both reuse the
cached forward: Grad-CAM costs one backward to ``A``, Guided Grad-CAM one more to the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LayerError, choices
from .keys import LayerKey
from .methods import check_options
from .rules import GUIDED_BACKPROP

if TYPE_CHECKING:  # pragma: no cover
    from .session import Explainer

__all__ = ["GradCAM", "GuidedGradCAM", "default_cam_layer", "gradcam_low_res"]

_POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Dropout, nn.Dropout2d)


def default_cam_layer(explainer: Explainer) -> str:
    """The last spatial layer before pooling to the classifier.

    That is the last recorded execution of a leaf module (not a pooling or dropout module)
    whose output is ``(N, K, h, w)`` with ``h * w > 1``. Returns its key (``"name"`` or ``"name#call"``).
    """
    modules = dict(explainer.model.named_modules())
    best = None
    for info in explainer.layers:
        mod = modules[info.name]
        if len(info.shape) != 3 or info.shape[1] * info.shape[2] <= 1:
            continue
        if any(True for _ in mod.children()) or isinstance(mod, _POOLING):
            continue
        best = info.key
    if best is None:
        raise LayerError(
            "no spatial layer (output (N, K, h, w) with h*w > 1) found for Grad-CAM; pass layer=... "
            f"from: {choices([i.key for i in explainer.layers])}"
        )
    return best


def gradcam_low_res(explainer: Explainer, targets: torch.Tensor, layer: str | LayerKey | None = None) -> torch.Tensor:
    """Grad-CAM at the layer's own resolution, after the ReLU.

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
    act = explainer.activation(rec.layer_key)
    if act.dim() != 4:
        raise LayerError(f"Grad-CAM needs a spatial layer with output (N, K, h, w); {rec.key!r} outputs {tuple(act.shape)}")
    grads = explainer.layer_gradient(rec.layer_key, targets)  # plain gradients, (N, K, h, w)
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
    single_backward: bool = True  # the CAM backward only reaches the layer and keeps the graph

    def compute(self, explainer: Explainer, targets: torch.Tensor, **options: Any) -> torch.Tensor:
        """The map of ``targets`` ``(N,)`` on the explainer's inputs, ``(N, C, H, W)``."""
        layer = check_options(self.name, options, {"layer": None})["layer"]
        x = explainer.inputs
        cam = _upsample(gradcam_low_res(explainer, targets, layer), (x.shape[-2], x.shape[-1]))
        return explainer.backward_logits(targets, GUIDED_BACKPROP) * cam
