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

_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_POOLING = (*_POOLS, nn.Dropout, nn.Dropout2d)
_NORMS = (nn.LayerNorm, nn.GroupNorm)
# default layer per Explainer: the transformer search costs a few backward passes, once
_DEFAULTS: weakref.WeakKeyDictionary[Explainer, str] = weakref.WeakKeyDictionary()


def default_cam_layer(explainer: Explainer) -> str:
    """The default Grad-CAM layer: the last layer whose output feeds the classifier's global pooling.

    Read from the recorded forward, in execution order, modules and blocks alike (a block's
    output is recorded after its layers'): the candidates are the outputs with a spatial layout
    (NCHW, NHWC or tokens) on an ``h x w > 1`` grid that are not the output of a pooling or
    dropout module. The last candidate is the tensor the model pools (averages over the grid)
    for its head. The default is the first layer that output that very tensor: the leaf when
    the block ends in it (ResNet ``layer4.1.relu#1``, EfficientNet ``features.8.2``), the block
    when the block builds it after its last layer: a concatenation (Inception-v3 ``Mixed_7c``,
    not one branch of it), a residual addition (ConvNeXt ``features.7.2``, LeViT
    ``stages.2.blocks.3``), a window departition (MaxViT, the last block's output).

    An NCHW last candidate is taken as it is (no backward pass: Eigen-CAM and Score-CAM need
    none). A channels-last or token one is checked with one partial backward: in a class-token
    ViT the patch tokens after the last attention never reach the score (every Grad-CAM there
    is zero), so the default is then, as pytorch-grad-cam documents, the last leaf layer whose
    grid does reach the score, a normalisation layer preferred: the last block's input norm
    (``norm1`` / ``ln_1`` / ``layernorm_before``). Returns its key (``"name"`` or ``"name#call"``).

    Parameters
    ----------
    explainer
        Holds the recorded forward pass.

    Raises
    ------
    LayerError
        No layer has a spatial output on a grid of more than one position.
    """
    if explainer in _DEFAULTS:
        return _DEFAULTS[explainer]
    modules = dict(explainer.model.named_modules())
    pooled = set()  # a pooling's output, also when a block ends in it (VGG's ``features``)
    for info in explainer.layers:
        if isinstance(modules[info.name], _POOLS):
            rec = explainer.record(info.key)
            pooled.add((id(rec.tensor), rec.version))
    candidates = []
    for info in explainer.layers:
        rec = explainer.record(info.key)
        if info.layout not in SPATIAL_LAYOUTS or info.shape[1] * info.shape[2] <= 1 or isinstance(modules[info.name], _POOLING):
            continue
        if (id(rec.tensor), rec.version) in pooled:
            continue
        candidates.append(info)
    if not candidates:
        raise LayerError(
            "no spatial layer (layout NCHW, NHWC or tokens with an h x w > 1 grid) found for Grad-CAM; pass layer=... "
            f"from: {choices([i.key for i in explainer.layers])}"
        )
    last = candidates[-1]
    if last.layout == "NCHW" or _reaching(explainer, [last.key]):
        best = _first_holder(explainer, candidates, last)
    else:
        leaves = [i for i in candidates if not any(True for _ in modules[i.name].children())]
        reach = _reaching(explainer, [i.key for i in leaves])
        norms = [i for i in leaves if isinstance(modules[i.name], _NORMS) or i.type.endswith("Norm")]
        # none reaching (e.g. a zero-initialised head): every Grad-CAM is zero; keep the last layer
        best = next((i.key for i in [*reversed(norms), *reversed(leaves)] if i.key in reach), last.key)
    _DEFAULTS[explainer] = best
    return best


def _first_holder(explainer: Explainer, candidates: list[LayerInfo], last: LayerInfo) -> str:
    """The first of ``candidates`` whose output is ``last``'s output tensor, unchanged since (same version)."""
    target = explainer.record(last.key)
    for info in candidates:
        rec = explainer.record(info.key)
        if rec.tensor is target.tensor and rec.version == target.version:
            return info.key
    return last.key


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
