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

Coarse to fine: the positions are evaluated in refinement order (:func:`refinement_levels`):
a sparse grid first (every 8th position or so, in a first small batch), then the grid halved,
and so on down to every position. A caller watching with
:func:`~saliency_widget.engine.progress.previewing` gets after each batch the map of the scores
measured so far (each missing position takes the score of the nearest measured one), so a
coarse map shows after a few forward passes and refines in place. The order is the same
whether or not anyone watches, so the final map is the one-shot map, bit for bit.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
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
from .progress import Partial, previewer, report

if TYPE_CHECKING:  # pragma: no cover
    from .session import Explainer

__all__ = ["Occlusion", "default_batch_size", "occlusion_map", "occlusion_scores", "refinement_levels"]

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


def _axis_levels(n: int) -> list[int]:
    """Refinement level of each of ``n`` positions along one axis (0: the coarsest grid).

    Level 0 holds every ``S``-th index and the last one (``S`` the largest power of two with
    about three level-0 positions per axis); level ``l`` adds the indices on the grid of step
    ``S / 2**l``.
    """
    step = 1
    while 3 * step <= n - 1:  # the largest power of two <= (n - 1) / 1.5: about 3 positions at level 0
        step *= 2
    levels = []
    for i in range(n):
        lv, s = 0, step
        while i % s and i != n - 1:
            s //= 2
            lv += 1
        levels.append(lv)
    return levels


def refinement_levels(ny: int, nx: int) -> list[list[int]]:
    """Flat position indices (``i * nx + j``) of an ``ny`` x ``nx`` grid, coarse to fine.

    Level 0 is a sparse grid (e.g. 3 x 3 of 27 x 27 positions), each next level fills the grid
    of half the step; together they hold every position once. Occlusion scores the positions
    in this order, so its first batch already gives a coarse map.

    Examples
    --------
    >>> [len(level) for level in refinement_levels(27, 27)]
    [9, 16, 39, 132, 533]
    """
    ly, lx = _axis_levels(ny), _axis_levels(nx)
    out: list[list[int]] = [[] for _ in range(max(ly + lx) + 1)]
    for i in range(ny):
        for j in range(nx):
            out[max(ly[i], lx[j])].append(i * nx + j)
    return [level for level in out if level]


def _batches(ends: Sequence[int], total: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each batch: cut at the ends of the small coarse levels, then every ``batch_size``."""
    cuts = sorted({e for e in ends if e < 2 * batch_size} | {total})
    out, start = [], 0
    for cut in cuts:
        while start < cut:
            stop = min(cut, start + batch_size)
            out.append((start, stop))
            start = stop
    return out


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


_HEAD = 16  # at most this many coarsest positions are scored by whole forwards before the plan is traced


def _full_scorer(
    explainer: Explainer,
    targets: torch.Tensor,
    window: tuple[int, int],
    fill: torch.Tensor,
    output: str,
    layer: str | None,
    channel: int | None,
    layout: Layout | None,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``score(img, corners)``: scores ``(B,)`` of whole forwards of images ``img`` ``(B,)`` occluded at ``corners`` ``(B, 2)``."""
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

    return full


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
    full = _full_scorer(explainer, targets, window, fill, output, layer, channel, layout)
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
    partial: Callable[[float, torch.Tensor, torch.Tensor], None] | None = None,
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
    partial
        Called after each batch but the last as ``partial(fraction, base, grid)``: ``grid``
        ``(N, len(ys), len(xs))`` holds the scores measured so far, each other position the
        score of the nearest measured one (positions are scored coarse to fine, see
        :func:`refinement_levels`).

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
        # coarse to fine (every image's level 0, then every image's level 1, ...): the same order
        # and the same scorer per position whether or not a preview is watched, so the final grid
        # is the one-shot grid
        levels = refinement_levels(len(ys), len(xs))
        order = torch.tensor([i * P + p for level in levels for i in range(N) for p in level], device=x.device)
        ends = list(itertools.accumulate(N * len(level) for level in levels))
        done = torch.zeros(N * P, dtype=torch.bool, device=x.device)

        def run(start: int, stop: int, score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
            report(start, N * P)  # between batches: the caller may watch, or stop the work (Cancelled)
            idx = order[start:stop]
            scores[idx] = score(flat_img[idx], corners[flat_pos[idx]]).to(scores.dtype)  # bf16 under autocast
            if partial is not None and stop < N * P:
                done[idx] = True
                partial(stop / (N * P), base, _nearest_filled(scores.view(N, P), done.view(N, P), base, len(ys), len(xs)))

        # The few positions of the coarsest level go through whole forwards in one batch, before
        # the incremental plan is traced: the first coarse map shows after ~10 forward passes.
        head = ends[0] if not mixing and ends[0] < N * P and ends[0] <= min(batch_size or _HEAD, _HEAD) else 0
        if head:
            run(0, head, _full_scorer(explainer, t, (wy, wx), fill_t, output, layer, channel, lay))
        score_batch, preferred = _batch_scorer(explainer, t, (wy, wx), fill_t, output, layer, channel, lay, incremental, base, approximate,
                                               (sy, sx))
        batch_size = batch_size or preferred
        for start, stop in _batches([e - head for e in ends if e > head], N * P - head, batch_size):
            run(head + start, head + stop, score_batch)
    return base, scores.view(N, len(ys), len(xs)), ys, xs


def _nearest_filled(scores: torch.Tensor, done: torch.Tensor, base: torch.Tensor, ny: int, nx: int) -> torch.Tensor:
    """``(N, ny, nx)`` grid of ``scores`` ``(N, P)``: each position not ``done`` takes the score of the nearest done one.

    Distances count grid steps. An image without any done position yet gets its unoccluded
    score ``base`` ``(N,)`` everywhere (no drop: an empty map).
    """
    P = ny * nx
    pos = torch.stack(torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij"), -1).view(P, 2).double()
    dist = torch.cdist(pos, pos).to(scores.device)  # (P, P), ties to the lower flat index (row-major)
    out = base.view(-1, 1).expand_as(scores).clone()
    for i in range(scores.shape[0]):
        if bool(done[i].any()):
            d = dist.masked_fill(~done[i].view(1, P), float("inf"))
            out[i] = scores[i, d.argmin(dim=1)]
    return out.view(-1, ny, nx)


def occlusion_map(
    explainer: Explainer,
    targets: torch.Tensor,
    window: int | tuple[int, int] = 16,
    stride: int | tuple[int, int] = 8,
    partial: Partial | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """Score drop averaged over the patches covering each pixel, ``(N, 1, H, W)``.

    Every pixel is covered: patches start at ``0, stride, ...`` and, when the stride does not
    divide ``size - window``, one more patch lies flush with the right / bottom border.
    ``partial(fraction, maps)``, if given, gets the ``(N, 1, H, W)`` map of the positions scored
    so far after each batch but the last (see :func:`occlusion_scores`); the other options are
    those of :func:`occlusion_scores`.
    """
    wy, wx = _pair("window", window)
    x = explainer.inputs
    on_scores = None
    if partial is not None:
        cb = partial

        def on_scores(fraction: float, base: torch.Tensor, grid: torch.Tensor) -> None:
            sy, sx = _pair("stride", stride)  # valid: occlusion_scores checked them before its first batch
            cb(fraction, _drop_map(x, base, grid, _positions(x.shape[-2], wy, sy), _positions(x.shape[-1], wx, sx), wy, wx))

    base, grid, ys, xs = occlusion_scores(explainer, targets, window, stride, partial=on_scores, **kwargs)
    return _drop_map(x, base, grid, ys, xs, wy, wx)


def _drop_map(
    x: torch.Tensor, base: torch.Tensor, grid: torch.Tensor, ys: list[int], xs: list[int], wy: int, wx: int
) -> torch.Tensor:
    """Score drop ``base - grid`` averaged over the patches covering each pixel, ``(N, 1, H, W)`` like ``x`` ``(N, C, H, W)``."""
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
        C = explainer.inputs.shape[1]
        watch = previewer()
        partial: Partial | None = None
        if watch is not None:
            cb = watch

            def partial(fraction: float, maps: torch.Tensor) -> None:
                cb(fraction, maps.expand(-1, C, -1, -1))

        m = occlusion_map(explainer, targets, partial=partial, **options)
        return m.expand(-1, C, -1, -1).contiguous()
