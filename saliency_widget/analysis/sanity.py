"""Sanity checks for saliency maps (Adebayo et al. 2018, *Sanity Checks for Saliency Maps*).

Cascading randomisation re-initialises the model's parameterised layers from the top
(logits) down, one more layer at each step, and compares each map with the original one;
independent randomisation re-initialises one layer at a time. A method whose maps barely
change while the weights they should explain are destroyed fails the check. Everything runs
on a deep copy: the user's model is never touched.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.api import saliency
from ..engine.checks import check_model
from ..engine.progress import nested, report, reporting
from ..engine.session import Explainer
from ..errors import InputError, choices

__all__ = ["SanityResult", "parameterised_layers", "randomise_module", "sanity_check", "spearman", "ssim"]


def _ranks(v: torch.Tensor) -> torch.Tensor:
    """Average ranks (ties share the mean rank), ``(M,)`` float64."""
    v = v.double()
    order = torch.argsort(v)
    sorted_v = v[order]
    ranks_sorted = torch.arange(1, v.numel() + 1, dtype=torch.float64, device=v.device)
    _, counts = torch.unique_consecutive(sorted_v, return_counts=True)
    ends = torch.cumsum(counts, 0)
    starts = ends - counts + 1
    avg = (starts + ends).double() / 2
    ranks_sorted = torch.repeat_interleave(avg, counts)
    out = torch.empty_like(ranks_sorted)
    out[order] = ranks_sorted
    return out


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two maps of the same shape (ties averaged, as scipy)."""
    ra, rb = _ranks(a.flatten()), _ranks(b.flatten())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / den if den > 0 else float("nan")


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7) -> float:
    """Structural similarity of two ``(H, W)`` maps, each first scaled to [0, 1] (uniform window)."""

    def norm(t: torch.Tensor) -> torch.Tensor:
        t = t.double()
        lo, hi = t.min(), t.max()
        return (t - lo) / (hi - lo) if hi > lo else torch.zeros_like(t)

    x, y = norm(a)[None, None], norm(b)[None, None]
    c1, c2 = 0.01**2, 0.03**2
    w = min(window, x.shape[-1], x.shape[-2])
    k = torch.ones(1, 1, w, w, dtype=torch.float64, device=x.device) / (w * w)
    mx, my = F.conv2d(x, k), F.conv2d(y, k)
    n = w * w
    cov_norm = n / (n - 1) if n > 1 else 1.0  # sample covariance, as scikit-image
    vx = cov_norm * (F.conv2d(x * x, k) - mx * mx)
    vy = cov_norm * (F.conv2d(y * y, k) - my * my)
    vxy = cov_norm * (F.conv2d(x * y, k) - mx * my)
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def parameterised_layers(model: nn.Module) -> list[str]:
    """Names of leaf modules that own parameters, in definition order (bottom to top)."""
    return [n for n, m in model.named_modules() if n and not any(True for _ in m.children()) and any(True for _ in m.parameters(recurse=False))]


def randomise_module(module: nn.Module, gen: torch.Generator) -> None:
    """Re-initialise one module's parameters with a seeded generator (Adebayo: random re-init)."""
    with torch.no_grad():
        for _name, p in module.named_parameters(recurse=False):
            if p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) * (2.0 / fan_in) ** 0.5)
            else:
                # biases and norm scales: keep the scale, randomise the values
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) * (p.std() if p.numel() > 1 and float(p.std()) > 0 else 0.1))


@dataclass
class SanityResult:
    """Similarity of randomised-model maps to the original map, per step.

    Attributes
    ----------
    method, mode
        Method compared, ``"cascading"`` or ``"independent"``.
    steps
        For cascading: ``"original"`` then the name of the lowest layer randomised so far
        (top to bottom); for independent: the single layer randomised.
    spearman_abs, spearman_signed, ssim
        One value per step (1 at ``"original"``), averaged over the images.
    maps
        ``(steps, N, H, W)`` channel-summed maps, for the gallery.
    undefined
        Per step, how many images had a constant map (Spearman undefined, left out of the mean).
    """

    method: str
    mode: str
    steps: list[str]
    spearman_abs: list[float]
    spearman_signed: list[float]
    ssim: list[float]
    maps: torch.Tensor
    undefined: list[int] = field(default_factory=list)

    def table(self) -> str:
        """A markdown table of the similarities per step."""
        rows = ["| randomised down to | Spearman (abs) | Spearman (signed) | SSIM |", "|---|---:|---:|---:|"]
        undefined = self.undefined or [0] * len(self.steps)
        for s, a, b, c, u in zip(self.steps, self.spearman_abs, self.spearman_signed, self.ssim, undefined):
            note = f" ({u} constant map{'s' if u > 1 else ''} left out)" if u else ""
            rows.append(f"| {s}{note} | {a:.3f} | {b:.3f} | {c:.3f} |")
        return "\n".join(rows)


def _summed(m: torch.Tensor) -> torch.Tensor:
    return m.sum(dim=1)  # (N, H, W): channels summed (signed)


def sanity_check(
    model: nn.Module,
    inputs: torch.Tensor,
    method: str = "gradient",
    target: Any = None,
    *,
    mode: str = "cascading",
    layers: Sequence[str] | None = None,
    seed: int = 0,
    **options: Any,
) -> SanityResult:
    """Model-parameter randomisation test on a deep copy of ``model``.

    Parameters
    ----------
    model
        The network; never modified (a deep copy is randomised).
    inputs
        ``(N, C, H, W)``.
    method
        Any registered method.
    target
        As in :func:`saliency_widget.saliency`; None uses the *original* model's predictions
        for every step (so only the weights change, not the question).
    mode
        ``"cascading"`` (top layer first, cumulative) or ``"independent"`` (one layer at a time).
    layers
        Parameterised layer names to randomise, bottom to top (default: all of them).
    seed
        Seed of the random re-initialisation.
    **options
        Method options.

    Returns
    -------
    SanityResult
    """
    model = check_model(model)  # a compiled model: its original module
    if mode not in ("cascading", "independent"):
        raise InputError(f"mode must be 'cascading' or 'independent', got {mode!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be an int >= 0, got {seed!r}")
    all_layers = parameterised_layers(model)
    if isinstance(layers, str):
        raise InputError(f"layers must be None (all) or a list of layer names, got {layers!r}; use [{layers!r}]")
    names = list(layers) if layers is not None else all_layers
    bad = [n for n in names if n not in all_layers]
    if bad:
        raise InputError(f"layer(s) {bad} have no parameters to randomise; choose from {choices(all_layers)}")
    # one progress protocol (engine.progress): (layers randomised, layers in all)
    ex0 = Explainer(model, inputs, record_layers=True)
    tgt = ex0.logits.argmax(1) if target is None else target
    with reporting(nested(0, len(names))):
        base = _summed(ex0.saliency(tgt, method, **options)).detach()
    del ex0
    steps, sp_abs, sp_sig, ss, maps = ["original"], [1.0], [1.0], [1.0], [base]
    undefined = [0]
    gen = torch.Generator().manual_seed(seed)
    work = copy.deepcopy(model)
    modules = dict(work.named_modules())
    for done, name in enumerate(reversed(names)):  # top (logits) first
        report(done, len(names))
        if mode == "independent":
            work = copy.deepcopy(model)
            modules = dict(work.named_modules())
        randomise_module(modules[name], gen)
        with reporting(nested(done, len(names))):
            m = _summed(saliency(work, inputs, tgt, method, **options)).detach()  # one-shot: frees its graph
        n = m.shape[0]
        # A constant map (e.g. an all-zero Grad-CAM) has no ranks: Spearman is undefined for
        # that image, so average over the images where it is defined and count the others.
        a = [spearman(base[i].abs(), m[i].abs()) for i in range(n)]
        b = [spearman(base[i], m[i]) for i in range(n)]
        undefined.append(sum(1 for v in a if v != v))
        sp_abs.append(_nanmean(a))
        sp_sig.append(_nanmean(b))
        ss.append(sum(ssim(base[i].abs(), m[i].abs()) for i in range(n)) / n)
        steps.append(name)
        maps.append(m)
    report(len(names), len(names))
    return SanityResult(method, mode, steps, sp_abs, sp_sig, ss, torch.stack(maps), undefined)
