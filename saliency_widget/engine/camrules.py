"""The weight rules of the CAM family: how each method weighs a layer's activation maps.

Every CAM here is ``cam = ReLU( sum_k w_k * A_k )`` on a layer's activations ``A``
``(N, K, h, w)`` (NHWC and token layers viewed through their layout), upsampled bilinearly
to the input. The methods differ only in the weights ``w``, computed from ``A`` and the
gradient ``G = d y_c / d A`` of the target's logit ``y_c``:

==============  ==========================================================================  ================
method          weights ``w`` (sums over the ``h x w`` positions ``i, j``)                   shape
==============  ==========================================================================  ================
``gradcam``     ``mean_ij G_k[i, j]`` (Selvaraju et al. 2017)                                ``(N, K, 1, 1)``
``gradcampp``   ``sum_ij relu(G) * a``, ``a = G^2 / (2 G^2 + sum_ab A_k[a, b] * G^3)``       ``(N, K, 1, 1)``
                (0 where ``G = 0``); eq. 19 of Chattopadhay et al. 2018, which takes the
                score as ``exp(y_c)`` so that higher derivatives are powers of ``G``
``xgradcam``    ``sum_ij G * A / sum_ab A_k[a, b]`` (0 where that sum is 0; Fu et al. 2020)   ``(N, K, 1, 1)``
``layercam``    ``relu(G)``, element-wise (Jiang et al. 2021)                                ``(N, K, h, w)``
``eigencam``    the first right singular vector of the position-centred ``A`` (as an         ``(N, K, 1, 1)``
                ``(hw, K)`` matrix), applied to the centred ``A``: its first principal
                component (Muhammad & Yeasin 2020). No gradient, no class. The SVD's sign
                is arbitrary: it is flipped so that the projection's largest magnitude is
                positive (pytorch-grad-cam's ``get_2d_projection_with_sign_correction``)
``scorecam``    ``softmax_k`` of the target logit of the input masked by each map, the map   ``(N, K, 1, 1)``
                upsampled (``align_corners=True``) and min-max normalised to [0, 1] (Wang et
                al. 2020; pytorch-grad-cam's convention; the authors' code weighs by the
                softmax probability instead). ``K`` forwards, batched, no gradient
==============  ==========================================================================  ================

The rules are pure functions of tensors (Score-CAM's runs the model too); the one CAM core
that reads the layer, applies the ReLU and upsamples is :func:`saliency_widget.engine.cam.cam_low_res`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ..errors import InputError
from .checks import eval_mode
from .incremental import batch_statistics
from .occlusion import default_batch_size
from .outputs import logits_of
from .progress import report

if TYPE_CHECKING:  # pragma: no cover
    from .session import Explainer

__all__ = [
    "CAM_RULES",
    "CAMInputs",
    "CAMRule",
    "eigencam_weights",
    "gradcam_weights",
    "gradcampp_weights",
    "layercam_weights",
    "scorecam_weights",
    "xgradcam_weights",
]


@dataclass(frozen=True)
class CAMInputs:
    """What a weight rule may read.

    Attributes
    ----------
    explainer
        The session (model, inputs ``(N, C, H, W)``); only Score-CAM runs the model.
    targets
        ``(N,)`` class indices.
    act
        ``(N, K, h, w)`` activations of the layer, detached.
    grads
        ``(N, K, h, w)`` gradient of the target logits, or None for rules without gradients.
    options
        The rule's own options (e.g. Score-CAM's ``batch_size``), defaults filled in.
    """

    explainer: Explainer
    targets: torch.Tensor
    act: torch.Tensor
    grads: torch.Tensor | None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CAMRule:
    """One CAM method as a weight rule.

    Attributes
    ----------
    name, label, description
        The method's registry name, button label and one-line tooltip.
    weigh
        ``weigh(inputs) -> w``, broadcastable to ``inputs.act`` ``(N, K, h, w)``.
    needs_gradients
        Whether ``inputs.grads`` is needed (one backward from the logits to the layer).
    centred
        Weigh the activations minus their mean over the positions (Eigen-CAM's projection).
    options
        The rule's own option names and defaults (``layer`` is everyone's).
    """

    name: str
    label: str
    description: str
    weigh: Callable[[CAMInputs], torch.Tensor]
    needs_gradients: bool = True
    centred: bool = False
    options: dict[str, Any] = field(default_factory=dict)


def _grads(inp: CAMInputs) -> torch.Tensor:
    if inp.grads is None:  # pragma: no cover - the core passes them to rules that declare needs_gradients
        raise InputError("this CAM rule needs the layer's gradient")
    return inp.grads


def gradcam_weights(act: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM: the mean gradient per channel, ``(N, K, 1, 1)``."""
    return grads.mean(dim=(2, 3), keepdim=True)


def gradcampp_weights(act: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ (eq. 19 with the exponential score): ``sum_ij relu(G) * alpha``, ``(N, K, 1, 1)``.

    ``alpha = G^2 / (2 G^2 + sum_ab A[a, b] * G^3)``, set to 0 where ``G = 0`` (no evidence)
    or where the denominator vanishes (pytorch-grad-cam instead adds ``1e-6`` to it).
    """
    g2 = grads * grads
    denom = 2 * g2 + act.sum(dim=(2, 3), keepdim=True) * g2 * grads
    ok = (grads != 0) & (denom != 0)
    alpha = torch.where(ok, g2 / torch.where(ok, denom, torch.ones_like(denom)), torch.zeros_like(g2))
    return (torch.relu(grads) * alpha).sum(dim=(2, 3), keepdim=True)


def xgradcam_weights(act: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """XGrad-CAM: the activation-weighted mean gradient ``sum_ij G * A / sum_ab A``, ``(N, K, 1, 1)``.

    A channel whose activations sum to 0 gets weight 0 (pytorch-grad-cam adds ``1e-7`` to the sum).
    """
    total = act.sum(dim=(2, 3), keepdim=True)
    num = (grads * act).sum(dim=(2, 3), keepdim=True)
    return torch.where(total != 0, num / torch.where(total != 0, total, torch.ones_like(total)), torch.zeros_like(num))


def layercam_weights(act: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """LayerCAM: the positive gradient at every position, ``(N, K, h, w)``."""
    return torch.relu(grads)


def eigencam_weights(centred: torch.Tensor) -> torch.Tensor:
    """Eigen-CAM: the first principal direction of the channel vectors, ``(N, K, 1, 1)``.

    Parameters
    ----------
    centred
        ``(N, K, h, w)`` activations minus their mean over the ``h x w`` positions.

    Returns
    -------
    torch.Tensor
        ``v`` such that ``sum_k v_k * centred_k`` is the projection on the first principal
        component, its sign chosen so that the projection's largest magnitude is positive.
    """
    n, k = centred.shape[:2]
    mat = centred.flatten(2).transpose(1, 2)  # (N, hw, K): one row per position
    # float64 SVD: the direction of a nearly degenerate first component is unstable in float32
    _, _, vh = torch.linalg.svd(torch.nan_to_num(mat.double()), full_matrices=False)
    v = vh[:, 0, :]  # (N, K)
    proj = mat.double() @ v.unsqueeze(-1)  # (N, hw, 1)
    sign = torch.where(proj.amax(dim=(1, 2)) >= -proj.amin(dim=(1, 2)), 1.0, -1.0).to(v)
    return (v * sign.view(n, 1)).to(centred.dtype).view(n, k, 1, 1)


def scorecam_weights(explainer: Explainer, targets: torch.Tensor, act: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """Score-CAM: softmax over channels of the target logit on the input masked by each map, ``(N, K, 1, 1)``.

    Each map ``A_k`` is upsampled bilinearly (``align_corners=True``: pytorch-grad-cam's
    ``UpsamplingBilinear2d``; the authors' code uses ``False``) to ``(H, W)`` and min-max normalised to [0, 1]
    (a constant map gives an all-zero mask); the model scores ``x * mask_k``. All ``N * K``
    masked copies run in batches of ``batch_size`` (default
    :func:`~saliency_widget.engine.occlusion.default_batch_size`), in eval mode without
    gradients; between batches :func:`~saliency_widget.engine.progress.report` lets a caller
    watch or cancel. A model that normalises with batch statistics scores each copy alone.
    """
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
    x = explainer.inputs
    n, k = act.shape[:2]
    model = explainer.model
    size = (x.shape[-2], x.shape[-1])
    if batch_statistics(model):
        batch_size = 1  # a copy's score must not depend on the copies batched with it
    bs = batch_size or default_batch_size(x)
    flat = act.reshape(n * k, 1, *act.shape[2:])
    img = torch.arange(n, device=x.device).repeat_interleave(k)
    tgt = targets.to(x.device)[img]
    scores = torch.empty(n * k, dtype=torch.float64, device=x.device)
    with torch.no_grad(), eval_mode(model):
        for start in range(0, n * k, bs):
            report(start, n * k)  # between batches: the caller may watch, or stop the work (Cancelled)
            end = min(start + bs, n * k)
            # align_corners=True, as pytorch-grad-cam's masks (UpsamplingBilinear2d); the CAM itself is
            # upsampled with align_corners=False like every CAM here (measured: False here gives corr 0.54-0.92
            # with pytorch-grad-cam's ScoreCAM on a 4 x 4 token grid, True gives 1.0000)
            up = F.interpolate(flat[start:end].to(x.dtype), size=size, mode="bilinear", align_corners=True)
            lo = up.amin(dim=(2, 3), keepdim=True)
            hi = up.amax(dim=(2, 3), keepdim=True)
            span = hi - lo
            mask = torch.where(span > 0, (up - lo) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(up))
            out = logits_of(model(x[img[start:end]] * mask))
            scores[start:end] = out.gather(1, tgt[start:end].view(-1, 1)).squeeze(1).double()
        report(n * k, n * k)
    return torch.softmax(scores.view(n, k), dim=1).to(act.dtype).view(n, k, 1, 1)


def _scorecam(inp: CAMInputs) -> torch.Tensor:
    return scorecam_weights(inp.explainer, inp.targets, inp.act, inp.options.get("batch_size"))


#: The CAM methods, in the order the widget lists them.
CAM_RULES: tuple[CAMRule, ...] = (
    CAMRule(
        "gradcam",
        "Grad-CAM",
        "Grad-CAM: a layer's activations weighted by their mean gradient, upsampled (Selvaraju et al. 2017)",
        lambda i: gradcam_weights(i.act, _grads(i)),
    ),
    CAMRule(
        "gradcampp",
        "Grad-CAM++",
        "Grad-CAM++: activations weighted by positive gradients with per-position coefficients, sharper on "
        "several objects (Chattopadhay et al. 2018)",
        lambda i: gradcampp_weights(i.act, _grads(i)),
    ),
    CAMRule(
        "xgradcam",
        "XGrad-CAM",
        "XGrad-CAM: activations weighted by their activation-weighted mean gradient (Fu et al. 2020)",
        lambda i: xgradcam_weights(i.act, _grads(i)),
    ),
    CAMRule(
        "layercam",
        "LayerCAM",
        "LayerCAM: each position's activations weighted by its own positive gradient, fine at shallow layers "
        "(Jiang et al. 2021)",
        lambda i: layercam_weights(i.act, _grads(i)),
    ),
    CAMRule(
        "eigencam",
        "Eigen-CAM",
        "Eigen-CAM: the first principal component of a layer's activations, class-agnostic, no gradient "
        "(Muhammad & Yeasin 2020)",
        lambda i: eigencam_weights(i.act),
        needs_gradients=False,
        centred=True,
    ),
    CAMRule(
        "scorecam",
        "Score-CAM",
        "Score-CAM: activation maps weighted by the class score of the image masked by each one, no gradient "
        "(Wang et al. 2020)",
        _scorecam,
        needs_gradients=False,
        options={"batch_size": None},
    ),
)
