"""The pointing game (Zhang et al. 2016): does the map's maximum fall on the object.

A hit is a map whose maximum (of the channel-summed ``|map|``) lies within ``tolerance``
pixels (Euclidean) of the ground-truth mask. The centre-point baseline always points at the
image centre.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.progress import nested, report, reporting
from ..engine.registry import get_method
from ..engine.session import Explainer
from ..errors import InputError
from .shards import image_count

__all__ = ["PointingResult", "dilate", "hits", "pointing_game", "pointing_methods"]


def dilate(masks: torch.Tensor, tolerance: float, distance: str = "euclidean") -> torch.Tensor:
    """Grow boolean masks ``(N, H, W)`` by ``tolerance`` pixels.

    ``distance="euclidean"`` grows by a disc (as TorchRay's pointing game), ``"chebyshev"`` by a
    square (within ``tolerance`` pixels along both axes).
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not tolerance >= 0:  # NaN too
        raise InputError(f"tolerance must be a number >= 0 (pixels), got {tolerance!r}")
    if distance not in ("euclidean", "chebyshev"):
        raise InputError(f"distance must be 'euclidean' or 'chebyshev', got {distance!r}")
    if tolerance >= math.hypot(*masks.shape[-2:]):  # reaches every pixel (also inf): no kernel of that size
        return masks.bool().flatten(1).any(1)[:, None, None].expand(masks.shape)
    r = int(tolerance)
    if r == 0:
        return masks.bool()
    yy, xx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
    inside = (yy**2 + xx**2) <= tolerance**2 if distance == "euclidean" else torch.ones_like(yy, dtype=torch.bool)
    disc = inside.to(torch.float32)[None, None]
    grown = F.conv2d(masks.float()[:, None], disc.to(masks.device), padding=r)[:, 0]
    return grown > 0


def hits(maps: torch.Tensor, masks: torch.Tensor, tolerance: float = 1.0, distance: str = "euclidean") -> torch.Tensor:
    """Per-image hit (bool ``(N,)``): the peak of map ``(N, H, W)`` within ``tolerance`` of mask ``(N, H, W)``."""
    if maps.shape != masks.shape:
        raise InputError(f"maps {tuple(maps.shape)} and masks {tuple(masks.shape)} must have the same (N, H, W) shape")
    n, h, w = maps.shape
    peak = maps.reshape(n, -1).argmax(1)
    grown = dilate(masks, tolerance, distance).reshape(n, -1)
    return grown[torch.arange(n, device=grown.device), peak.to(grown.device)]


def centre_hits(masks: torch.Tensor, tolerance: float = 1.0, distance: str = "euclidean") -> torch.Tensor:
    """The centre-point baseline: bool ``(N,)``. The centre of an even size is pixel ``size // 2``."""
    n, h, w = masks.shape
    grown = dilate(masks, tolerance, distance)
    return grown[:, h // 2, w // 2]


@dataclass
class PointingResult:
    """Accuracy per method and of the centre baseline."""

    tolerance: float
    n_images: int
    distance: str
    accuracy: dict[str, float]
    per_image: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)

    def table(self) -> str:
        """The accuracies as a markdown table, one row per method."""
        rows = [f"| method | pointing accuracy ({self.distance} tolerance {self.tolerance:g} px, {self.n_images} images) |", "|---|---:|"]
        for k, v in self.accuracy.items():
            rows.append(f"| {k} | {v:.3f} |")
        return "\n".join(rows)


def _iter_batches(data: Iterable[Any]) -> Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    for item in data:
        if not (isinstance(item, (tuple, list)) and len(item) >= 3):
            raise InputError("the dataset must yield (images (B,C,H,W), labels (B,), masks (B,H,W)) batches")
        x, y, m = item[0], item[1], item[2]
        if not isinstance(x, torch.Tensor) or not isinstance(m, torch.Tensor):
            raise InputError(f"the dataset must yield tensors (images, labels, masks), got images {type(x).__name__} and masks {type(m).__name__}")
        if x.dim() == 3:  # a single sample, not a batch
            x, y, m = x[None], torch.as_tensor(y).view(1), m[None]
        yield x, torch.as_tensor(y), m


def pointing_game(
    model: nn.Module,
    data: Iterable[Any],
    methods: Sequence[str] | str = ("gradient", "deconvnet", "guided_backprop"),
    tolerance: float = 1.0,
    *,
    distance: str = "euclidean",
    target: str = "label",
    **options: Any,
) -> PointingResult:
    """Pointing-game accuracy of each method over ``data``, plus the centre baseline.

    Parameters
    ----------
    model
        The network (not modified).
    data
        Iterable of ``(images (B, C, H, W), labels (B,), masks (B, H, W))`` batches (a DataLoader
        over :class:`~saliency_widget.data.ShapesDataset` works) or single samples.
    methods
        Method names (one forward per batch serves all of them).
    tolerance
        Hit radius in pixels.
    distance
        ``"euclidean"`` (a disc) or ``"chebyshev"`` (a square) around the mask.
    target
        ``"label"`` (explain the true class) or ``"predicted"``.

    Returns
    -------
    PointingResult
    """
    names = [methods] if isinstance(methods, str) else list(methods)
    if target not in ("label", "predicted"):
        raise InputError(f"target must be 'label' or 'predicted', got {target!r}")
    per: dict[str, list[torch.Tensor]] = {m: [] for m in names}
    per["centre baseline"] = []
    n = 0
    # one progress protocol (engine.progress): (maps done, maps in all) after each method of each
    # batch, 0 in all when the data has no length; a method's own batches re-report that count
    total = (image_count(data) or 0) * len(names)
    for x, y, m in _iter_batches(data):
        ex = Explainer(model, x)
        t = y if target == "label" else None
        for k, meth in enumerate(names):
            done = n * len(names) + k * x.shape[0]
            with reporting(nested(done, total)):
                s = ex.saliency(t, meth, **options).abs().sum(1)
            per[meth].append(hits(s.cpu(), m.cpu().bool(), tolerance, distance))
            report(done + x.shape[0], total)
        per["centre baseline"].append(centre_hits(m.cpu().bool(), tolerance, distance))
        n += x.shape[0]
        del ex
    if n == 0:
        raise InputError("the dataset yielded no images")
    cat = {k: torch.cat(v) for k, v in per.items()}
    return PointingResult(tolerance, n, distance, {k: float(v.float().mean()) for k, v in cat.items()}, cat)


def pointing_methods(methods: Sequence[str], probe: Explainer | None = None) -> tuple[list[str], list[str]]:
    """Which of ``methods`` (e.g. the registry's, ``available_methods()``) a quick pointing game runs.

    Every method the model can run in one pass per image. Returns ``(methods, left out)``: methods that need many passes per image (sampling,
    occlusion, score-weighted or forward-only CAMs: ``needs_gradients`` False or not one
    backward and no ReLU/CAM rule) are left out to keep the game to seconds; so are methods
    ``probe`` (an explainer) says cannot run on the model.
    """
    keep: list[str] = []
    out: list[str] = []
    for m in methods:
        meth = get_method(m)
        if probe is not None and probe.unavailable(m) is not None:
            continue
        one_pass = meth.needs_gradients and (meth.single_backward or getattr(meth, "rule", None) is not None)
        (keep if one_pass else out).append(m)
    return keep, out
