"""Deletion and insertion curves (Petsiuk et al. 2018, RISE): is a map faithful for this image.

Pixels are removed from the image (deletion) or inserted into a baseline (insertion) in the
order a map ranks them, ``steps`` equal chunks at a time, and the probability of the class
is tracked. A faithful map makes the probability fall fast under deletion (low area under
the curve) and rise fast under insertion (high area). A random pixel order, seeded, gives
the reference curve every method should beat.

Every perturbed copy goes through the model in batches under ``torch.no_grad()`` and eval
mode; the user's model is never modified.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.api import saliency
from ..engine.checks import check_model, eval_mode, prepare_inputs, resolve_targets
from ..engine.occlusion import default_batch_size
from ..engine.outputs import logits_of
from ..engine.progress import Progress, callback, report, reporting
from ..engine.registry import get_method
from ..errors import InputError, choices
from .faithresult import KINDS, RANDOM, FaithfulnessResult, merge_results

__all__ = [
    "KINDS", "RANDOM", "FaithfulnessResult", "blurred", "deletion_insertion", "merge_results",
    "pixel_ranking",
]

_BASELINES = ("zeros", "blur")
_CHANNELS_LAST = torch.channels_last
_ORDERS = ("morf", "lerf")


def blurred(x: torch.Tensor, kernel: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """Gaussian blur of each channel, RISE's insertion start (kernel 11, sigma 5).

    Parameters
    ----------
    x
        Images ``(N, C, H, W)``.
    kernel, sigma
        Size (odd) and standard deviation of the Gaussian kernel.

    Returns
    -------
    torch.Tensor
        ``(N, C, H, W)``, same dtype and device; borders are replicated (not zero-padded,
        which would darken the edges).
    """
    r = kernel // 2
    t = torch.arange(kernel, dtype=x.dtype, device=x.device) - r
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    c = x.shape[1]
    # separable: a row then a column pass, one group per channel
    y = F.pad(x, (r, r, r, r), mode="replicate")
    y = F.conv2d(y, g.view(1, 1, 1, kernel).expand(c, 1, 1, kernel), groups=c)
    return F.conv2d(y, g.view(1, 1, kernel, 1).expand(c, 1, kernel, 1), groups=c)


def pixel_ranking(saliency_map: torch.Tensor, order: str = "morf") -> torch.Tensor:
    """The order in which pixels are removed / inserted: ranks from a map.

    A pixel's relevance is the channel sum of the map's absolute values,
    ``|map|.sum(dim=1)``; ``"morf"`` (most relevant first) takes the largest first,
    ``"lerf"`` (least relevant first) the smallest first. Ties are broken stably: the pixel
    with the smaller flat index ``h * W + w`` comes first in both orders.

    Parameters
    ----------
    saliency_map
        ``(N, C, H, W)`` (any channel count) or ``(N, H, W)``.
    order
        ``"morf"`` or ``"lerf"``.

    Returns
    -------
    torch.Tensor
        Long ``(N, H * W)``: entry ``p`` is the position of pixel ``p`` in the order
        (0 = first perturbed).
    """
    if order not in _ORDERS:
        raise InputError(f"order must be one of {choices(_ORDERS)}, got {order!r}")
    if not isinstance(saliency_map, torch.Tensor) or saliency_map.dim() not in (3, 4):
        what = tuple(saliency_map.shape) if isinstance(saliency_map, torch.Tensor) else type(saliency_map).__name__
        raise InputError(f"saliency_map must be a (N, C, H, W) or (N, H, W) tensor, got {what}")
    m = _as_real_map("saliency_map", saliency_map.detach())
    score = (m.abs().sum(dim=1) if m.dim() == 4 else m.abs()).flatten(1).float()
    perm = torch.sort(-score if order == "morf" else score, dim=1, stable=True).indices
    return _ranks_of(perm)


def _ranks_of(perm: torch.Tensor) -> torch.Tensor:
    """Inverse permutation per row: ``perm[i, r] = p`` becomes ``ranks[i, p] = r``."""
    ranks = torch.empty_like(perm)
    ranks.scatter_(1, perm, torch.arange(perm.shape[1], device=perm.device).expand_as(perm).contiguous())
    return ranks


def _baseline_tensor(spec: Any, x: torch.Tensor, kind: str) -> tuple[torch.Tensor, str]:
    """The fully-perturbed image ``(N, C, H, W)`` for one kind, and its description."""
    if spec is None:  # RISE: deletion to black (zeros), insertion from the blurred image
        spec = "zeros" if kind == "deletion" else "blur"
    if isinstance(spec, str):
        if spec == "zeros":
            return torch.zeros_like(x), "zeros"
        if spec == "blur":
            return blurred(x), "blur"
        raise InputError(f"baseline must be one of {choices(_BASELINES)}, a tensor or None, got {spec!r}")
    if isinstance(spec, torch.Tensor):
        if not spec.is_floating_point():
            raise InputError(f"baseline tensor must be floating point, got dtype {spec.dtype}")
        try:
            b = torch.broadcast_to(spec.to(device=x.device, dtype=x.dtype), x.shape)
        except RuntimeError:
            raise InputError(
                f"baseline tensor of shape {tuple(spec.shape)} cannot be broadcast to the inputs' shape "
                f"{tuple(x.shape)}; give (C, H, W), (1, C, H, W) or (N, C, H, W)"
            ) from None
        if not bool(torch.isfinite(b).all()):
            raise InputError("baseline tensor contains NaN or Inf values")
        return b.clone(), f"tensor {tuple(spec.shape)}"
    raise InputError(f"baseline must be one of {choices(_BASELINES)}, a tensor or None, got {type(spec).__name__}")


def _as_real_map(name: str, m: torch.Tensor) -> torch.Tensor:
    """A map as real numbers: a boolean mask (True = relevant) or integer map is cast, complex is refused."""
    if m.is_complex():
        raise InputError(f"map {name!r} has complex dtype {m.dtype}; give real values (a float map or a boolean mask)")
    return m if m.is_floating_point() else m.to(torch.float32)


def _check_maps(maps: Any, x: torch.Tensor) -> dict[str, torch.Tensor]:
    if not isinstance(maps, Mapping):
        raise InputError(f"maps must be a dict of method name -> (N, C, H, W) tensor, got {type(maps).__name__}")
    n, _, h, w = x.shape
    out: dict[str, torch.Tensor] = {}
    for name, m in maps.items():
        if not isinstance(name, str) or name == RANDOM:
            raise InputError(f"map names must be strings other than {RANDOM!r}, got {name!r}")
        if not isinstance(m, torch.Tensor):
            raise InputError(f"map {name!r} must be a torch.Tensor, got {type(m).__name__}")
        if m.device.type == "meta":
            raise InputError(f"map {name!r} is on the 'meta' device (a shape, no values); pass a real tensor")
        if m.dim() not in (3, 4) or m.shape[0] != n or tuple(m.shape[-2:]) != (h, w):
            raise InputError(
                f"map {name!r} has shape {tuple(m.shape)}; expected (N, C, H, W) or (N, H, W) with "
                f"N={n}, H={h}, W={w} like the inputs"
            )
        m = _as_real_map(name, m.detach())
        if not bool(torch.isfinite(m).all()):
            raise InputError(f"map {name!r} contains NaN or Inf values")
        out[name] = m.to(x.device)
    return out


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise InputError(f"{name} must be an int in {bound}, got {value!r}")
    return value


def deletion_insertion(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: Mapping[str, torch.Tensor] | None = None,
    methods: Sequence[str] | None = None,
    target: Any = None,
    *,
    steps: int = 20,
    baseline: str | torch.Tensor | None = None,
    order: str = "morf",
    batch_size: int | None = None,
    seed: int = 0,
    kinds: Sequence[str] = KINDS,
    reference: bool = True,
    progress: Progress | None = None,
) -> FaithfulnessResult:
    """Deletion and insertion curves of each map, with a seeded random-order reference.

    Pixels are ranked by :func:`pixel_ranking` (channel-summed ``|map|``, ties by pixel
    index). After step ``k`` of ``steps`` the first ``floor(k * H * W / steps)`` pixels in
    that order (all channels of each) are perturbed: under deletion they take the baseline's
    values, under insertion they take the image's values and the rest keep the baseline's.
    The curve is the softmax probability of the target class at each of the ``steps + 1``
    points, so deletion runs from ``p(image)`` to ``p(baseline)`` and insertion back.

    Parameters
    ----------
    model
        Classifier returning logits ``(N, K)`` (read through
        :func:`saliency_widget.engine.outputs.logits_of`); run in eval mode, never modified.
    inputs
        ``(N, C, H, W)``, preprocessed for the model.
    maps
        ``{name: (N, C', H, W) or (N, H, W)}`` maps to evaluate, e.g. from
        :func:`saliency_widget.saliency`; ``{}`` with no methods computes only the
        random-order reference. A boolean mask (True = relevant) or an integer map is
        cast to float32; a complex map is refused.
    methods
        Registered methods whose maps are computed here for ``target`` (added after ``maps``).
    target
        None (each image's predicted class), an int, or N ints.
    steps
        Number of chunks, 1 to ``H * W``.
    baseline
        The fully perturbed image: ``"zeros"``, ``"blur"`` (Gaussian, kernel 11, sigma 5), a
        tensor broadcastable to ``(N, C, H, W)``, or None for RISE's convention: zeros for
        deletion, the blurred image for insertion.
    order
        ``"morf"`` (most relevant first) or ``"lerf"`` (least relevant first).
    batch_size
        Perturbed copies per forward pass; default
        :func:`saliency_widget.engine.occlusion.default_batch_size`. The curves do not
        depend on it.
    seed
        Seed of the random pixel order of the reference curve.
    kinds
        Which curves to compute: ``("deletion", "insertion")`` (default) or one of them.
    reference
        Also compute the random-order reference curves (stored under :data:`RANDOM`).
    progress
        Called after every batch of perturbed copies with ``(done, total)`` forward passes
        (the protocol of :mod:`saliency_widget.engine.progress`): raising
        :class:`~saliency_widget.errors.Cancelled`, or returning False, stops the computation
        before the next batch, also inside the maps it computes. None: report to the callback
        of an enclosing :func:`~saliency_widget.engine.progress.reporting`, if any.

    Returns
    -------
    FaithfulnessResult

    Raises
    ------
    InputError
        Neither maps nor methods, maps of the wrong shape, bad ``steps``, ``baseline``,
        ``order`` or ``batch_size``.
    MethodError
        An unknown method in ``methods``.
    Cancelled
        ``progress`` returned False or raised it.

    Notes
    -----
    Quantus ``PixelFlipping`` with ``features_in_step = H * W / steps`` on one-channel
    inputs, ``abs=False, normalise=False`` and a non-negative map gives the same curve
    without its first point (Quantus does not evaluate the unperturbed image), provided the
    map has no ties (NumPy's ``argsort`` is not stable) and with ``perturb_baseline`` a
    constant equal to the baseline tensor (``0.0`` for ``"zeros"``); Quantus ranks the signed
    map where this function ranks ``|map|``, hence the non-negative map. On ``C`` channels
    Quantus ranks the ``C * H * W`` values separately (a ``(N, 1, H, W)`` map is broadcast),
    where this function perturbs whole pixels, so its curves have ``C`` times the points.
    Quantus's AUC is ``np.trapz`` with ``dx=1`` over its ``steps`` points; here it is over
    the perturbed fraction in [0, 1] with ``steps + 1`` points. Quantus has no insertion
    curve and no random-order reference.
    """
    model = check_model(model)
    x, _, _ = prepare_inputs(inputs, model)
    x = x.detach()
    n, c, h, w = x.shape
    npix = h * w
    steps = _check_int("steps", steps, 1, npix)
    if batch_size is not None:
        batch_size = _check_int("batch_size", batch_size, 1)
    seed = _check_int("seed", seed, 0)
    if progress is not None and not callable(progress):
        raise InputError(f"progress must be None or a callable (done, total) -> bool | None, got {type(progress).__name__}")
    if order not in _ORDERS:
        raise InputError(f"order must be one of {choices(_ORDERS)}, got {order!r}")
    if maps is None and not methods:
        raise InputError("give maps (a dict of name -> map) or methods (registered method names), or both")
    if not maps and not methods and not reference:
        raise InputError("nothing to compute: no maps, no methods and reference=False")
    if isinstance(methods, str):
        raise InputError(f"methods must be a sequence of method names, got the string {methods!r}; use [{methods!r}]")
    given = _check_maps(maps, x) if maps is not None else {}
    todo = list(methods or [])
    for m in todo:
        if m in given:
            raise InputError(f"method {m!r} is both in maps and in methods; give it once")
        get_method(m)  # MethodError naming the valid choices

    if isinstance(kinds, str) or not kinds or any(k not in KINDS for k in kinds) or len(set(kinds)) != len(kinds):
        raise InputError(f"kinds must be a non-empty sequence of distinct values from {choices(KINDS)}, got {kinds!r}")
    kinds = [k for k in KINDS if k in kinds]
    bases = {k: _baseline_tensor(baseline, x, k) for k in kinds}
    bs = batch_size or default_batch_size(x)

    with torch.no_grad(), eval_mode(model):
        logits = logits_of(model(x))
    bad = (~torch.isfinite(logits)).nonzero()
    if bad.numel():  # every probability of that image would be NaN: curves of NaN are no measurement
        i, c = (int(v) for v in bad[0])
        raise InputError(f"the model's score (logit) of image {i}, class {c} is {float(logits[i, c])}; deletion/insertion "
                         "curves need finite scores: check the model and the inputs' preprocessing")
    tgt = resolve_targets(target, logits)

    # one progress protocol (engine.progress): the explicit callback, else the caller's reporting()
    outer = progress if progress is not None else callback()
    all_maps = dict(given)
    for m in todo:
        # a map's own batches (occlusion, SmoothGrad, IG) may be stopped too; they count as no forward pass here
        with reporting(None if outer is None else (lambda _d, _t: outer(0, 0))):
            all_maps[m] = saliency(model, x, tgt, m).detach()
    names = list(all_maps)

    # ranks (J, P) for J = (methods + random) x N orderings; image of each ordering
    gen = torch.Generator().manual_seed(seed)
    rand_perm = torch.stack([torch.randperm(npix, generator=gen) for _ in range(n)]).to(x.device)
    orderings = [pixel_ranking(all_maps[m], order) for m in names] + ([_ranks_of(rand_perm)] if reference else [])
    ranks = torch.cat(orderings)
    img = torch.arange(n, device=x.device).repeat(len(orderings))
    counts = torch.tensor([(k * npix) // steps for k in range(steps + 1)], device=x.device)
    fractions = counts.double().cpu() / npix

    # the end points are shared by every ordering: the image and each baseline
    inner, nk = steps - 1, len(kinds)
    n_jobs = ranks.shape[0] * nk * inner
    total = n + n * nk + n_jobs
    done = 0

    def tick(count: int) -> None:
        nonlocal done
        done += count
        with reporting(outer):
            report(done, total)

    # On the CPU the perturbed batches are built channels-last at once (oneDNN runs the
    # convolutions and pooling of such inputs ~2x faster; the values are the same).
    fmt = _CHANNELS_LAST if x.device.type == "cpu" else torch.contiguous_format
    xs = x.contiguous(memory_format=fmt)
    with torch.no_grad(), eval_mode(model):
        p_image = _probabilities(model, xs, tgt, bs)
        tick(n)
        p_base = {}
        for kd in kinds:
            p_base[kd] = _probabilities(model, bases[kd][0], tgt, bs)
            _check_finite(p_base[kd], f"the {kd} baseline ({bases[kd][1]}) of image", lambda j: int(j))
            tick(n)
        probs = torch.empty(n_jobs, dtype=torch.float32, device=x.device)
        base_stack = torch.stack([bases[k][0] for k in kinds]).contiguous(memory_format=torch.contiguous_format)
        base_stack = base_stack.view(nk * n, c, h, w).contiguous(memory_format=fmt)
        is_deletion = torch.tensor([k == "deletion" for k in kinds], device=x.device)
        for start in range(0, n_jobs, bs):
            t = torch.arange(start, min(start + bs, n_jobs), device=x.device)
            j, rem = t // (nk * inner), t % (nk * inner)
            kind, k = rem // inner, rem % inner + 1
            im = img[j]
            perturbed = ranks[j] < counts[k][:, None]  # (B, P): True where pixel is perturbed
            # deletion keeps the image where not perturbed; insertion where already inserted
            keep_image = (perturbed ^ is_deletion[kind][:, None]).view(-1, 1, h, w)
            batch = torch.where(keep_image, xs[im], base_stack[kind * n + im])
            probs[start : start + len(t)] = _probabilities(model, batch, tgt[im], bs)
            tick(len(t))

    # the perturbed images (job t: ordering t // (nk * inner), kind, step) must score finite too
    _check_finite(probs, "a perturbed image (ordering, kind, step) of image",
                  lambda t: f"{int(img[t // (nk * inner)])} ({([*names, RANDOM])[t // (nk * inner) // n]}, "
                            f"{kinds[t // inner % nk]}, step {t % inner + 1} of {steps})")
    grid = probs.view(ranks.shape[0], nk, inner)
    curves: dict[tuple[str, str], torch.Tensor] = {}
    for mi, m in enumerate([*names, RANDOM][: len(orderings)]):
        rows = slice(mi * n, (mi + 1) * n)
        for ki, kind_name in enumerate(kinds):
            first, last = (p_image, p_base[kind_name]) if kind_name == "deletion" else (p_base[kind_name], p_image)
            curves[(kind_name, m)] = torch.cat([first[:, None], grid[rows, ki], last[:, None]], dim=1).cpu()
    return FaithfulnessResult(
        methods=names,
        fractions=fractions,
        curves=curves,
        targets=tgt.cpu(),
        order=order,
        baseline={k: bases[k][1] for k in kinds},
    )


def _check_finite(p: torch.Tensor, what: str, label: Callable[[int], object]) -> None:
    """Refuse NaN/Inf probabilities (a model that fails on black or blurred images), naming the first."""
    bad = (~torch.isfinite(p)).nonzero()
    if bad.numel():
        t = int(bad[0, 0])
        raise InputError(f"the model's score on {what} {label(t)} is {float(p[t])}; deletion/insertion curves need finite "
                         "scores: the model fails on that input (e.g. it divides by the image's spread)")


def _probabilities(model: nn.Module, batch: torch.Tensor, targets: torch.Tensor, bs: int) -> torch.Tensor:
    """Softmax probability of ``targets`` ``(B,)`` for ``batch`` ``(B, C, H, W)``, in chunks of ``bs``."""
    out = []
    for s in range(0, batch.shape[0], bs):
        chunk = batch[s : s + bs]
        if chunk.device.type == "cpu":
            # oneDNN runs convolutions and max-pooling much faster on channels-last inputs
            # (bundled model, 1 thread: 4.4 vs 11 ms per image); the values are the same.
            # A no-op for the batches built channels-last above.
            chunk = chunk.contiguous(memory_format=_CHANNELS_LAST)
        logits = logits_of(model(chunk)).float()
        out.append(logits.softmax(dim=1).gather(1, targets[s : s + bs, None])[:, 0])
    return torch.cat(out) if out else torch.empty(0, device=batch.device)

