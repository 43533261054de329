"""The CAM family (Grad-CAM and its variants) and Guided Grad-CAM on the Explainer's recorded forward.

Grad-CAM (Selvaraju et al. 2017) at layer ``A`` (shape ``(N, K, h, w)``) for class ``c``::

    alpha_k = mean_{i,j} d y_c / d A_k[i, j]
    cam     = ReLU( sum_k alpha_k * A_k )            # the paper's ReLU: keep positive evidence
    map     = bilinear upsampling of cam to (H, W)

Grad-CAM++, XGrad-CAM, LayerCAM, Eigen-CAM and Score-CAM change only ``alpha`` (a weight rule
in :mod:`.camrules`); :func:`cam_low_res` is the one core that reads the layer (NCHW, NHWC or
tokens), applies a rule and the ReLU, and :class:`CAMMethod` upsamples. Every CAM takes
``layer=``.

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
from .camrules import CAM_RULES, CAMInputs, CAMRule
from .keys import LayerKey
from .layouts import SPATIAL_LAYOUTS, to_nchw
from .methods import check_options
from .rules import GUIDED_BACKPROP

if TYPE_CHECKING:  # pragma: no cover
    from .capture import LayerInfo
    from .session import Explainer

__all__ = ["CAM_METHODS", "CAMMethod", "GuidedGradCAM", "cam_low_res", "default_cam_layer", "gradcam_low_res"]

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


def cam_low_res(
    explainer: Explainer,
    targets: torch.Tensor,
    layer: str | LayerKey | None = None,
    rule: CAMRule = CAM_RULES[0],
    **options: Any,
) -> torch.Tensor:
    """The CAM of ``rule`` at the layer's own resolution, after the ReLU: the one CAM core.

    ``cam = ReLU( sum_k w_k * A_k )`` with ``w = rule.weigh(...)`` (see :mod:`.camrules`).
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
    rule
        The weight rule; default Grad-CAM's.
    **options
        The rule's own options (``rule.options``), already checked.

    Returns
    -------
    torch.Tensor
        ``(N, 1, h, w)``, detached.
    """
    rec = explainer.record(layer if layer is not None else default_cam_layer(explainer))
    lay = explainer.layout(rec.layer_key)
    if not lay.spatial:
        raise LayerError(
            f"{rule.label} needs a spatial layer (layout NCHW, NHWC or tokens); {rec.key!r} outputs "
            f"{tuple(rec.tensor.shape)} with layout {lay.kind!r}"
        )
    act = explainer.activation(rec.layer_key)  # (N, K, h, w) view
    # plain gradients, same view
    grads = to_nchw(explainer.layer_gradient(rec.layer_key, targets), lay) if rule.needs_gradients else None
    if rule.centred:
        act = act - act.mean(dim=(2, 3), keepdim=True)
    weights = rule.weigh(CAMInputs(explainer, targets, act, grads, {**rule.options, **options}))
    return torch.relu((weights * act).sum(dim=1, keepdim=True)).detach()


def gradcam_low_res(explainer: Explainer, targets: torch.Tensor, layer: str | LayerKey | None = None) -> torch.Tensor:
    """Grad-CAM at the layer's own resolution, after the ReLU, ``(N, 1, h, w)``: :func:`cam_low_res` with Grad-CAM's rule."""
    return cam_low_res(explainer, targets, layer, CAM_RULES[0])


def _upsample(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(cam, size=size, mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class CAMMethod:
    """A CAM method (one :class:`~.camrules.CAMRule`), upsampled to the input size and repeated over its channels.

    Options
    -------
    layer
        Layer name or ``"name#call"`` key; default :func:`default_cam_layer`.
    batch_size
        Score-CAM only: masked copies per forward pass.
    """

    rule: CAMRule
    needs_relu_rules: bool = False
    single_backward: bool = False  # its one backward (if any) stops at the layer and keeps the graph

    @property
    def name(self) -> str:
        """The rule's name, which is the method's."""
        return self.rule.name

    @property
    def label(self) -> str:
        """The rule's button label."""
        return self.rule.label

    @property
    def description(self) -> str:
        """The rule's one-line tooltip."""
        return self.rule.description

    @property
    def needs_gradients(self) -> bool:
        """False for Eigen-CAM and Score-CAM (forwards only)."""
        return self.rule.needs_gradients

    def compute(self, explainer: Explainer, targets: torch.Tensor, **options: Any) -> torch.Tensor:
        """The map of ``targets`` ``(N,)`` on the explainer's inputs, ``(N, C, H, W)``."""
        opts = check_options(self.name, options, {"layer": None, **self.rule.options})
        layer = opts.pop("layer")
        cam = cam_low_res(explainer, targets, layer, self.rule, **opts)
        x = explainer.inputs
        return _upsample(cam, (x.shape[-2], x.shape[-1])).expand(-1, x.shape[1], -1, -1).contiguous()


#: The CAM methods, in the order the registry lists them.
CAM_METHODS: tuple[CAMMethod, ...] = tuple(CAMMethod(r) for r in CAM_RULES)


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
