"""Methods on many modified inputs (SmoothGrad, Integrated Gradients), and Gradient x Input.

Gradient x Input needs only the cached forward.

Samples are evaluated in batches (``batch_size`` inputs per forward), never one by one, with
the ReLU rule of the base method applied by the same interception mechanism.

Progressive: the samples are evaluated sample-major (sample 0 of every image, then sample 1,
...), Integrated Gradients' path points spread so that every batch spans the whole path. A
caller watching with :func:`~saliency_widget.engine.progress.previewing` gets after each batch
the running estimate: SmoothGrad's mean of the samples done, IG's weighted mean of the path
gradients done times ``x - baseline``. The order does not depend on whether anyone watches,
so the final map is the one-shot map exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import InputError
from .checks import eval_mode
from .incremental import batch_statistics
from .methods import check_options
from .outputs import logits_of
from .progress import Partial, previewer, report
from .rules import GRADIENT, get_rule

if TYPE_CHECKING:  # pragma: no cover
    from .session import Explainer

__all__ = ["InputXGradient", "IntegratedGradients", "SmoothGrad", "batched_rule_gradients", "integrated_gradients"]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive int, got {value!r}")
    return value


def batched_rule_gradients(
    explainer: Explainer, inputs: torch.Tensor, targets: torch.Tensor, rule_name: str, batch_size: int
) -> torch.Tensor:
    """Backward maps of many inputs, ``batch_size`` per forward pass.

    Parameters
    ----------
    explainer
        Supplies the model (run in eval mode, unchanged).
    inputs
        ``(M, C, H, W)`` on the model's device.
    targets
        ``(M,)`` class indices.
    rule_name
        ReLU rule for the backward pass.
    batch_size
        Inputs per forward pass; 1 for a model that normalises with batch statistics
        (:func:`~.incremental.batch_statistics`), so that no sample's map depends on the others.

    Returns
    -------
    torch.Tensor
        ``(M, C, H, W)``.
    """
    return _ordered_gradients(explainer, inputs, targets, rule_name, batch_size)


def _ordered_gradients(
    explainer: Explainer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    rule_name: str,
    batch_size: int,
    order: torch.Tensor | None = None,
    after: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """:func:`batched_rule_gradients` of ``inputs`` ``(M, C, H, W)`` taken in ``order`` ``(M,)``.

    ``after(stop, out, done)`` is called after each batch but the last, with the ``stop``
    first inputs of ``order`` done: ``out`` ``(M, C, H, W)`` holds their maps where ``done``
    ``(M,)`` is True (the rest is not computed yet).
    """
    rule = get_rule(rule_name)
    if batch_statistics(explainer.model):
        batch_size = 1  # each sample with the statistics it would get alone
    M = inputs.shape[0]
    order = torch.arange(M, device=inputs.device) if order is None else order.to(inputs.device)
    out = torch.empty_like(inputs)
    done = torch.zeros(M, dtype=torch.bool, device=inputs.device)
    for start in range(0, M, batch_size):
        report(start, M)  # between batches: the caller may watch, or stop the work (Cancelled)
        idx = order[start : start + batch_size]
        chunk = inputs[idx]
        # an explainer of the caller's class: importing the session here would close a cycle (session -> registry -> here)
        sub = type(explainer)(explainer.model, chunk, record_layers=False, intercept=not rule.is_plain_gradient, retain_graph=False)
        out[idx] = sub.backward_logits(targets[idx], rule)
        del sub  # frees this chunk's graph before the next forward
        stop = min(M, start + batch_size)
        if after is not None and stop < M:
            done[idx] = True
            after(stop, out, done)
    return out


def _sample_major(N: int, S: int, steps: list[int] | None = None) -> torch.Tensor:
    """Flat indices ``i * S + s`` of ``(N, S)`` samples, sample-major: every image's ``steps[0]``, then ``steps[1]``, ..."""
    return torch.tensor([i * S + s for s in (steps if steps is not None else range(S)) for i in range(N)])


def _spread(steps: int, batch_size: int) -> list[int]:
    """Path points in an order whose every batch spans the whole path: batch ``b`` holds ``b, b + k, b + 2k, ...``."""
    k = max(1, math.ceil(steps / batch_size))
    return [i for r in range(k) for i in range(r, steps, k)]


def _running_mean(maps: torch.Tensor, done: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` weighted mean over the done samples of ``maps`` ``(N, S, C, H, W)``.

    ``done`` ``(N, S)``, ``weights`` ``(1, S, 1, 1, 1)``; an image without a done sample gets zeros.
    """
    w = torch.where(done.view(*done.shape, 1, 1, 1), weights, torch.zeros_like(weights))
    total = torch.where(w != 0, maps * w, torch.zeros_like(maps)).sum(dim=1)  # not-yet samples are garbage: never read
    norm = w.sum(dim=1)
    return torch.where(norm != 0, total / torch.where(norm != 0, norm, torch.ones_like(norm)), torch.zeros_like(total))


@dataclass(frozen=True)
class InputXGradient:
    """Gradient times input (Shrikumar et al. 2016), from the cached forward."""

    name: str = "input_x_gradient"
    label: str = "Gradient × Input"
    description: str = "Gradient × Input: the gradient multiplied by the input, pixel by pixel (Shrikumar et al. 2016)"
    needs_relu_rules: bool = False
    needs_gradients: bool = True
    single_backward: bool = True

    def compute(self, explainer: Explainer, targets: torch.Tensor, **options: Any) -> torch.Tensor:
        """The map of ``targets`` ``(N,)`` on the explainer's inputs, ``(N, C, H, W)``."""
        check_options(self.name, options, {})
        return explainer.backward_logits(targets, GRADIENT) * explainer.inputs


@dataclass(frozen=True)
class SmoothGrad:
    """SmoothGrad (Smilkov et al. 2017): the mean of a base method's maps over noisy copies.

    Options
    -------
    base
        ``"gradient"``, ``"deconvnet"`` or ``"guided_backprop"`` (default ``"gradient"``).
    n
        Number of noisy samples (default 25).
    noise
        Standard deviation as a fraction of each input's value range ``max - min`` (default 0.15).
    batch_size
        Samples per forward pass (default 16).
    seed
        Seed of the noise (default 0), so the widget shows the same map twice.
    """

    name: str = "smoothgrad"
    label: str = "SmoothGrad"
    description: str = "SmoothGrad: a base method's map averaged over noisy copies of the input (Smilkov et al. 2017)"
    needs_relu_rules: bool = False  # the noisy copies run their own forward passes
    needs_gradients: bool = True
    single_backward: bool = False

    def compute(self, explainer: Explainer, targets: torch.Tensor, **options: Any) -> torch.Tensor:
        """The map of ``targets`` ``(N,)`` on the explainer's inputs, ``(N, C, H, W)``."""
        o = check_options(self.name, options, {"base": "gradient", "n": 25, "noise": 0.15, "batch_size": 16, "seed": 0})
        n = _positive_int("n", o["n"])
        bs = _positive_int("batch_size", o["batch_size"])
        noise = float(o["noise"])
        if not noise >= 0:
            raise InputError(f"noise must be a fraction >= 0 of the input range, got {o['noise']!r}")
        x = explainer.inputs
        N = x.shape[0]
        span = (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(N, 1, 1, 1, 1)
        gen = torch.Generator(device="cpu").manual_seed(int(o["seed"]))
        # drawn in float64 on the CPU whatever the model's dtype and device: one seed, the same noise
        # in float32, float64 or bf16, on the CPU or a GPU (so the maps agree across them)
        eps = torch.randn((N, n, *x.shape[1:]), generator=gen, dtype=torch.float64).to(device=x.device, dtype=x.dtype)
        noisy = (x.unsqueeze(1) + noise * span * eps).reshape(N * n, *x.shape[1:])
        t = targets.to(x.device).repeat_interleave(n)
        watch = previewer()
        after = None
        if watch is not None:
            cb, ones = watch, torch.ones((1, n, 1, 1, 1), dtype=x.dtype, device=x.device)

            def after(stop: int, out: torch.Tensor, done: torch.Tensor) -> None:
                cb(stop / (N * n), _running_mean(out.view(N, n, *x.shape[1:]), done.view(N, n), ones))

        maps = _ordered_gradients(explainer, noisy, t, o["base"], bs, _sample_major(N, n), after)
        return maps.view(N, n, *x.shape[1:]).mean(dim=1)


def _path_points(steps: int, scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """Points ``alpha`` in [0, 1] and weights for the path integral."""
    if scheme == "gausslegendre":
        a, w = np.polynomial.legendre.leggauss(steps)
        return (a + 1) / 2, w / 2
    if scheme == "riemann_trapezoid":
        if steps < 2:
            raise InputError("riemann_trapezoid needs steps >= 2")
        a = np.linspace(0.0, 1.0, steps)
        w = np.full(steps, 1.0 / (steps - 1))
        w[0] = w[-1] = 0.5 / (steps - 1)
        return a, w
    if scheme == "riemann_middle":
        return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    raise InputError(f"unknown integration scheme {scheme!r}; expected 'gausslegendre', 'riemann_trapezoid' or 'riemann_middle'")


def integrated_gradients(
    explainer: Explainer,
    targets: torch.Tensor,
    steps: int = 32,
    baseline: torch.Tensor | float | None = None,
    batch_size: int = 32,
    scheme: str = "gausslegendre",
    partial: Partial | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrated Gradients (Sundararajan et al. 2017) and its completeness gap.

    Parameters
    ----------
    explainer
        Holds model and inputs ``x`` of shape ``(N, C, H, W)``.
    targets
        ``(N,)`` class indices.
    steps
        Number of points on the straight path from the baseline to ``x``.
    baseline
        None (zeros in the model's normalised input space), a float, or a tensor broadcastable to ``x``.
    batch_size
        Path points per forward pass.
    scheme
        ``"gausslegendre"`` (default, as Captum), ``"riemann_trapezoid"`` or ``"riemann_middle"``.
    partial
        Called after each batch but the last as ``partial(fraction, attributions)``: the running
        estimate ``(N, C, H, W)`` from the path points done (their weighted mean gradient times
        ``x - baseline``; every batch spans the whole path).

    Returns
    -------
    attributions, delta
        ``(N, C, H, W)`` attributions, and ``(N,)`` completeness gaps
        ``sum(attributions) - (f(x) - f(baseline))`` for the target logit.
    """
    x = explainer.inputs
    steps = _positive_int("steps", steps)
    bs = _positive_int("batch_size", batch_size)
    if baseline is None:
        base = torch.zeros_like(x)
    else:
        try:
            base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device).expand_as(x)
        except RuntimeError:
            raise InputError(
                f"baseline of shape {tuple(torch.as_tensor(baseline).shape)} does not broadcast to inputs {tuple(x.shape)}"
            ) from None
    alphas, weights = _path_points(steps, scheme)
    a = torch.as_tensor(alphas, dtype=x.dtype, device=x.device).view(1, -1, 1, 1, 1)
    w = torch.as_tensor(weights, dtype=x.dtype, device=x.device).view(1, -1, 1, 1, 1)
    N = x.shape[0]
    path = (base.unsqueeze(1) + a * (x - base).unsqueeze(1)).reshape(N * steps, *x.shape[1:])
    after = None
    if partial is not None:
        cb = partial

        def after(stop: int, out: torch.Tensor, done: torch.Tensor) -> None:
            cb(stop / (N * steps), (x - base) * _running_mean(out.view(N, steps, *x.shape[1:]), done.view(N, steps), w))

    order = _sample_major(N, steps, _spread(steps, bs))  # every batch spans the path: a fair running estimate
    grads = _ordered_gradients(explainer, path, targets.to(x.device).repeat_interleave(steps), "gradient", bs, order, after)
    attr = (x - base) * (grads.view(N, steps, *x.shape[1:]) * w).sum(dim=1)
    with torch.no_grad(), eval_mode(explainer.model):
        f_base = logits_of(explainer.model(base.clone()))  # a copy: the model may modify its input in place
    idx = torch.arange(N, device=x.device)
    f_x = explainer.logits[idx, targets]
    delta = attr.flatten(1).sum(1) - (f_x - f_base[idx, targets.to(f_base.device)])
    return attr, delta


@dataclass(frozen=True)
class IntegratedGradients:
    """Integrated Gradients; see :func:`integrated_gradients` for the options."""

    name: str = "integrated_gradients"
    label: str = "Integrated Gradients"
    description: str = (
        "Integrated Gradients: gradients summed along a straight path from a baseline to the input "
        "(Sundararajan et al. 2017)"
    )
    needs_relu_rules: bool = False
    needs_gradients: bool = True
    single_backward: bool = False

    def compute(self, explainer: Explainer, targets: torch.Tensor, **options: Any) -> torch.Tensor:
        """The map of ``targets`` ``(N,)`` on the explainer's inputs, ``(N, C, H, W)``."""
        o = check_options(self.name, options, {"steps": 32, "baseline": None, "batch_size": 32, "scheme": "gausslegendre"})
        attr, _ = integrated_gradients(explainer, targets, partial=previewer(), **o)
        return attr
