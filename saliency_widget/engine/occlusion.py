"""Occlusion sensitivity (Zeiler & Fergus 2014, section 4.2).

A patch (grey by default: 0 in the model's normalised input space, i.e. the dataset mean)
slides over the image with a given window and stride. For every position the model is
re-run and a score recorded: the target class probability (default), its logit, or the
strongest activation of one filter of one layer (their figure 7b). All positions of all
images are evaluated in batches (large on a GPU, cache-sized on a CPU: see
:func:`default_batch_size`).

The attribution map is the score drop ``score(x) - score(occluded)`` averaged over every
patch that covers a pixel (so positive = the region supports the target). Patches start at
``0, stride, 2 * stride, ...`` and, when the stride does not divide ``size - window``, at
``size - window`` too (one last full patch flush with the border), so every pixel is measured. The raw grid of
scores per patch position, as drawn in the paper, is :func:`occlusion_scores`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..errors import InputError, LayerError
from .capture import forward_to
from .checks import check_layer_name, eval_mode
from .incremental import batch_statistics
from .layouts import Layout, to_nchw
from .methods import check_options
from .outputs import logits_of
from .plancache import cached_plan
from .progress import report

if TYPE_CHECKING:  # pragma: no cover
    from .session import Explainer

__all__ = ["Occlusion", "default_batch_size", "occlusion_map", "occlusion_scores"]

_log = logging.getLogger(__name__)


def _pair(name: str, v: Any) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int) and not isinstance(v, bool) else tuple(v) if isinstance(v, (tuple, list)) else None
    if t is None or len(t) != 2 or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 1 for i in t):
        raise InputError(f"{name} must be a positive int or a pair of positive ints, got {v!r}")
    return t  # type: ignore[return-value]


def _positions(size: int, window: int, stride: int) -> list[int]:
    """Patch starts along one axis: ``0, stride, 2*stride, ...`` plus ``size - window``.

    The last patch is added flush with the border when the stride does not divide
    ``size - window``, so that every pixel is covered by at least one patch (Captum instead
    cuts the last patch off at the border; a full-size patch keeps every score comparable).
    """
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def default_batch_size(x: torch.Tensor) -> int:
    """Occluded copies per forward pass for inputs like ``x`` ``(N, C, H, W)``.

    A GPU wants large batches (256). On a CPU the cost *per image* grows with the batch once
    the activations fall out of cache (measured on 2 cores: resnet50 at 224², 63 ms per image
    at batch 1-4 and 117 ms at 64; the bundled model at 128², 1.7-2.0 ms at batch 8 and 3.5 at
    64), so CPU batches hold about 2 MB of fp32 input: 3 images at 224², 10 at 128².
    """
    if x.device.type != "cpu":
        return 256
    return max(1, min(64, (1 << 19) // max(1, x[0].numel())))


def _score(
    explainer: Explainer,
    batch: torch.Tensor,
    targets: torch.Tensor,
    output: str,
    layer: str | None,
    channel: int | None,
    layout: Layout | None = None,
) -> torch.Tensor:
    """Scores ``(M,)`` of a batch ``(M, C, H, W)`` (no grad, eval mode); ``layout``: the layer's."""
    model = explainer.model
    if output == "activation":
        act = forward_to(model, batch, str(layer), 0)
        if layout is not None and layout.kind in ("NHWC", "tokens"):
            act = to_nchw(act, layout)  # the channel axis through the layout
        return act[:, channel].flatten(1).amax(1)
    return _pick(model(batch), targets, output)


def _pick(result: Any, targets: torch.Tensor, output: str) -> torch.Tensor:
    """Score ``(M,)`` of ``targets`` ``(M,)`` in a model's output: its logit or its probability."""
    out = logits_of(result)  # a tensor, .logits, {'logits'} or (logits, ...)
    if output == "probability":
        out = torch.softmax(out.double(), dim=1).to(out.dtype)
    return out.gather(1, targets.view(-1, 1)).squeeze(1)


def _batch_scorer(
    explainer: Explainer,
    targets: torch.Tensor,
    window: tuple[int, int],
    fill: torch.Tensor,
    output: str,
    layer: str | None,
    channel: int | None,
    layout: Layout | None,
    incremental: bool,
    base: torch.Tensor,
    approximate: float | None = None,
    stride: tuple[int, int] | None = None,
) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], int]:
    """``(score, batch_size)``: ``score(img, corners)``: scores ``(B,)`` of images ``img`` ``(B,)`` occluded at ``corners`` ``(B, 2)``.

    ``base`` ``(N,)``: the unoccluded scores, which an incremental plan must reproduce;
    ``approximate``: Krypton's projective-field threshold (None: exact).

    With ``incremental`` (and a model :func:`~.incremental.build_plan` accepts, and a class
    score as ``output``) only the rectangles a patch changes are recomputed; otherwise every
    occluded copy runs through the whole model. The reason for a fallback is logged at debug
    level (and :func:`~.incremental.explain_plan` prints it). Call it under ``torch.no_grad()``
    and eval mode.
    """
    x = explainer.inputs
    H, W = x.shape[-2:]
    yy = torch.arange(H, device=x.device).view(1, H, 1)
    xx_ = torch.arange(W, device=x.device).view(1, 1, W)
    wy, wx = window

    def full(img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # mask[p] is 1 inside patch p: occluded = x * (1 - mask) + fill * mask
        inside = (
            (yy >= c[:, 0].view(-1, 1, 1)) & (yy < c[:, 0].view(-1, 1, 1) + wy)
            & (xx_ >= c[:, 1].view(-1, 1, 1)) & (xx_ < c[:, 1].view(-1, 1, 1) + wx)
        ).unsqueeze(1)
        return _score(explainer, torch.where(inside, fill, x[img]), targets[img], output, layer, channel, layout)

    if incremental:
        def agrees(out: Any) -> bool:  # the traced forward gives the model's unoccluded scores
            got = _pick(out, targets, output)
            return got.shape == base.shape and bool(torch.allclose(got, base, rtol=1e-4, atol=1e-6))

        # kept between calls while the model, its hooks and the inputs stay the same (plancache.py)
        plan = (cached_plan(explainer.model, x, agrees, (window, stride, approximate)) if output != "activation"
                else "output='activation' reads a layer")
        if not isinstance(plan, str):
            plan.tau = approximate
            failed: list[str] = []

            def changed(img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
                if not failed:
                    try:
                        return _pick(plan.run(img, c, window, fill), targets[img], output)
                    except RuntimeError as err:  # a layer the plan mishandles: the full path is exact
                        failed.append(f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}")
                        _log.debug("occlusion on %s: full recompute: the incremental plan fails: %s",
                                   type(explainer.model).__name__, failed[0])
                return full(img, c)

            # rectangles are small: many patches per batch (on 2 CPU cores, vgg16 at 224²: 1.3 s
            # per patch at batch 3, 0.21 s at 48, against 1.8 s for the full recompute)
            return changed, max(64, default_batch_size(x))
        _log.debug("occlusion on %s: full recompute: %s", type(explainer.model).__name__, plan)
    return full, default_batch_size(x)


def occlusion_scores(
    explainer: Explainer,
    targets: torch.Tensor,
    window: int | tuple[int, int] = 16,
    stride: int | tuple[int, int] = 8,
    fill: float | torch.Tensor = 0.0,
    output: str = "probability",
    layer: str | None = None,
    channel: int | None = None,
    batch_size: int | None = None,
    incremental: bool = True,
    approximate: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[int], list[int]]:
    """Score of every occluded copy.

    Parameters
    ----------
    explainer
        Holds the model and the inputs ``(N, C, H, W)``.
    targets
        ``(N,)`` class indices (ignored for ``output="activation"``).
    window, stride
        Patch size and step in pixels (an int or a ``(y, x)`` pair).
    fill
        Value of the occluding patch in the model's input space (a scalar or ``(C, 1, 1)``).
    output
        ``"probability"``, ``"logit"`` or ``"activation"`` (with ``layer`` and ``channel``).
    batch_size
        Occluded copies per forward pass; default :func:`default_batch_size` (at least 64 when
        incremental: the changed rectangles are small). A model that normalises with batch
        statistics (:func:`batch_statistics`) scores every copy, and every unoccluded image, alone
        (batches of one), so the map does not depend on the batch size.
    incremental
        Recompute only the rectangle of each feature map that a patch changes (exact; see
        :mod:`.incremental`). Models it cannot handle, and ``output="activation"``, fall back
        to running every occluded copy through the whole model (the reason is logged at
        debug level; :func:`~.incremental.explain_plan` prints it).
    approximate
        Off (None) by default. A fraction ``tau`` in (0, 1]: incremental occlusion keeps each
        changed rectangle at most ``tau`` of its map's side, centred (Krypton's projective-field
        thresholding): faster, no longer exact (errors measured in docs/benchmarks.md).

    Returns
    -------
    base, grid, ys, xs
        ``base`` ``(N,)`` the unoccluded score; ``grid`` ``(N, len(ys), len(xs))`` the score
        with the patch's top-left corner at ``(ys[i], xs[j])``.
    """
    if output not in ("probability", "logit", "activation"):
        raise InputError(f"output must be 'probability', 'logit' or 'activation', got {output!r}")
    if output == "activation":
        if layer is None or channel is None:
            raise InputError("output='activation' needs layer=... and channel=...")
        check_layer_name(explainer.model, layer)
    # the layer's layout, as the Explainer recorded it: NHWC / token channels are read through it
    lay = explainer.layout(str(layer)) if output == "activation" else None
    if lay is not None and lay.kind == "ambiguous":
        raise LayerError(
            f"layer {layer!r} has an ambiguous layout (its channel axis is not known); choose a layer with "
            "layout NCHW, NHWC or tokens (see layers())"
        )
    wy, wx = _pair("window", window)
    sy, sx = _pair("stride", stride)
    x = explainer.inputs
    N, C, H, W = x.shape
    if wy > H or wx > W:
        raise InputError(f"window {(wy, wx)} is larger than the image {(H, W)}")
    ys, xs = _positions(H, wy, sy), _positions(W, wx, sx)
    P = len(ys) * len(xs)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(incremental, bool):
        raise InputError(f"incremental must be True or False, got {incremental!r}")
    if approximate is not None and (isinstance(approximate, bool) or not isinstance(approximate, (int, float))
                                    or not 0 < approximate <= 1):
        raise InputError(f"approximate must be None or a fraction in (0, 1], got {approximate!r}")
    fill_t = torch.as_tensor(fill, dtype=x.dtype, device=x.device)
    corners = torch.tensor([(y, xx) for y in ys for xx in xs], device=x.device)
    scores = torch.empty(N * P, dtype=x.dtype, device=x.device)
    flat_img = torch.arange(N, device=x.device).repeat_interleave(P)
    flat_pos = torch.arange(P, device=x.device).repeat(N)
    mixing = batch_statistics(explainer.model)
    if mixing:
        # a copy's score must not depend on the copies batched with it: score each one alone
        _log.debug("occlusion on %s: batches of one: %s", type(explainer.model).__name__, mixing[0])
        batch_size = 1
    with torch.no_grad(), eval_mode(explainer.model):
        t = targets.to(x.device)
        if mixing:
            base = torch.cat([_score(explainer, x[i : i + 1].clone(), t[i : i + 1], output, layer, channel, lay) for i in range(N)])
        else:
            base = _score(explainer, x.clone(), t, output, layer, channel, lay)  # the model may modify its input in place
        score_batch, preferred = _batch_scorer(explainer, targets.to(x.device), (wy, wx), fill_t, output, layer, channel, lay, incremental, base, approximate,
                                                    (sy, sx))
        batch_size = batch_size or preferred
        for start in range(0, N * P, batch_size):
            report(start, N * P)  # between batches: the caller may watch, or stop the work (Cancelled)
            img = flat_img[start : start + batch_size]
            scores[start : start + batch_size] = score_batch(img, corners[flat_pos[start : start + batch_size]])
    return base, scores.view(N, len(ys), len(xs)), ys, xs


def occlusion_map(
    explainer: Explainer,
    targets: torch.Tensor,
    window: int | tuple[int, int] = 16,
    stride: int | tuple[int, int] = 8,
    **kwargs: Any,
) -> torch.Tensor:
    """Score drop averaged over the patches covering each pixel, ``(N, 1, H, W)``.

    Every pixel is covered: patches start at ``0, stride, ...`` and, when the stride does not
    divide ``size - window``, one more patch lies flush with the right / bottom border.
    """
    base, grid, ys, xs = occlusion_scores(explainer, targets, window, stride, **kwargs)
    wy, wx = _pair("window", window)
    x = explainer.inputs
    N, _, H, W = x.shape
    total = torch.zeros((N, 1, H, W), dtype=x.dtype, device=x.device)
    count = torch.zeros((1, 1, H, W), dtype=x.dtype, device=x.device)
    drop = base.view(N, 1, 1) - grid
    for i, y in enumerate(ys):
        for j, xx in enumerate(xs):
            total[:, 0, y : y + wy, xx : xx + wx] += drop[:, i, j].view(N, 1, 1)
            count[:, 0, y : y + wy, xx : xx + wx] += 1
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))


@dataclass(frozen=True)
class Occlusion:
    """Occlusion sensitivity; options as in :func:`occlusion_scores` (window, stride, fill, output, layer, channel, batch_size, incremental, approximate)."""

    name: str = "occlusion"
    label: str = "Occlusion"
    description: str = (
        "Occlusion: how much the class probability drops when a grey patch covers each region (Zeiler & Fergus 2014)"
    )
    needs_relu_rules: bool = False
    single_backward: bool = False  # no backward at all: only forward passes on occluded copies
    needs_gradients: bool = False  # runs on models whose forward disables gradients (see Explainer.unavailable)

    def compute(self, explainer: Explainer, targets: torch.Tensor, **options: Any) -> torch.Tensor:
        """The map of ``targets`` ``(N,)`` on the explainer's inputs, ``(N, C, H, W)``."""
        check_options(self.name, options, {k: None for k in ("window", "stride", "fill", "output", "layer", "channel", "batch_size", "incremental", "approximate")})
        m = occlusion_map(explainer, targets, **options)
        return m.expand(-1, explainer.inputs.shape[1], -1, -1).contiguous()
