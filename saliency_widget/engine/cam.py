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
from .layouts import SPATIAL_LAYOUTS, to_nchw  # [models]
from .methods import check_options, register_method
from .rules import GRADIENT, GUIDED_BACKPROP

if TYPE_CHECKING:  # pragma: no cover
    from .session import Explainer

__all__ = ["GradCAM", "GuidedGradCAM", "default_cam_layer", "gradcam_low_res"]

_POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Dropout, nn.Dropout2d)
_NORMS = (nn.LayerNorm, nn.GroupNorm)
# default layer per Explainer: the transformer search costs a few backward passes, once
_DEFAULTS: "weakref.WeakKeyDictionary[Explainer, str]" = weakref.WeakKeyDictionary()


def default_cam_layer(explainer: "Explainer") -> str:
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
    model (Swin) it is the final norm. Returns its key (``"name"`` or ``"name#call"``).
    """
    # [models] layout-aware candidates and the transformer rule (this function and _reaching)
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
    if candidates[-1].layout != "NCHW":
        reach = _reaching(explainer, [i.key for i in candidates])
        norms = [i for i in candidates if isinstance(modules[i.name], _NORMS) or i.type.endswith("Norm")]
        # none reaching (e.g. a zero-initialised head): every Grad-CAM is zero; keep the last layer
        best = next((i.key for i in [*reversed(norms), *reversed(candidates)] if i.key in reach), best)
    _DEFAULTS[explainer] = best
    return best


def _reaching(explainer: "Explainer", keys: list[str]) -> set[str]:
    """The layers among ``keys`` whose grid gets a non-zero gradient of the predicted classes' scores.

    One backward pass for all of them.
    """
    recs = [(k, explainer._record(k)) for k in keys]
    recs = [(k, r) for k, r in recs if r.edge is not None]
    if not recs:
        return set()
    seed = torch.zeros_like(explainer._logits)
    seed.scatter_(1, explainer._logits.detach().argmax(1, keepdim=True), 1.0)
    with explainer._lock:
        explainer._box.rule = GRADIENT
        grads = torch.autograd.grad(explainer._logits, [r.edge for _, r in recs], seed, retain_graph=True, allow_unused=True)
    return {k for (k, _), g in zip(recs, grads) if g is not None and bool(to_nchw(g, explainer.layout(k)).any())}


def gradcam_low_res(explainer: "Explainer", targets: torch.Tensor, layer: str | None = None) -> torch.Tensor:
    """Grad-CAM at the layer's own resolution, ``(N, 1, h, w)``, after the ReLU."""
    key = layer if layer is not None else default_cam_layer(explainer)
    rec = explainer._record(key)
    lay = explainer.layout(key)  # [models] NHWC and token layers are read through their layout
    if not lay.spatial:
        raise LayerError(
            f"Grad-CAM needs a spatial layer (layout NCHW, NHWC or tokens); {key!r} outputs "
            f"{tuple(rec.tensor.shape)} with layout {lay.kind!r}"
        )
    act = explainer.activation(key)
    if rec.edge is None:
        raise LayerError(f"layer {key!r} does not depend on the input through autograd; choose another layer")
    seed = torch.zeros_like(explainer._logits)
    seed.scatter_(1, targets.view(-1, 1).to(seed.device), 1.0)
    with explainer._lock:
        explainer._box.rule = GRADIENT  # Grad-CAM's gradients are plain gradients
        (grads,) = torch.autograd.grad(explainer._logits, rec.edge, seed, retain_graph=True)
    grads = to_nchw(grads, lay)  # [models]
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
    needs_relu_rules: bool = False

    def compute(self, explainer: "Explainer", targets: torch.Tensor, **options: Any) -> torch.Tensor:
        layer = check_options(self.name, options, {"layer": None})["layer"]
        cam = gradcam_low_res(explainer, targets, layer)
        x = explainer._x
        return _upsample(cam, tuple(x.shape[-2:])).expand(-1, x.shape[1], -1, -1).contiguous()


@dataclass(frozen=True)
class GuidedGradCAM:
    """Guided backprop map times the upsampled Grad-CAM, ``(N, C, H, W)``."""

    name: str = "guided_gradcam"
    label: str = "Guided Grad-CAM"
    needs_relu_rules: bool = True
    single_backward: bool = True  # the CAM backward only reaches the layer and keeps the graph

    def compute(self, explainer: "Explainer", targets: torch.Tensor, **options: Any) -> torch.Tensor:
        layer = check_options(self.name, options, {"layer": None})["layer"]
        cam = _upsample(gradcam_low_res(explainer, targets, layer), tuple(explainer._x.shape[-2:]))
        return explainer.backward_logits(targets, GUIDED_BACKPROP) * cam


register_method(GradCAM())
register_method(GuidedGradCAM())
