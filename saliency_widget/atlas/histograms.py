"""Each filter's activation over the data: the distribution of its per-image maximum.

One forward-only pass to the deepest atlas layer over this rank's global batches (the
mining shards of :mod:`saliency_widget.analysis.shards`, so every image runs in the same
batch whatever the process count), keeping each image's spatial maximum per channel. The
ranks' maxima are gathered and binned on every rank, so the histogram of 1 or N processes
is the same, bit for bit. The per-image maximum is what the top-9 ranks (one winner per
image), so the histogram shows where the top-9 sit in the whole data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..analysis.shards import Shard, all_gather_objects, shard_batches
from ..engine.capture import LayerCapture, StopForward, layer_layout
from ..engine.checks import eval_mode, model_device_dtype
from ..engine.keys import LayerKey
from ..engine.layouts import to_nchw
from ..errors import InputError, LayerError

__all__ = ["BINS", "LayerHistogram", "activation_histograms"]

BINS = 32
"""Bins of each filter's histogram."""


@dataclass(frozen=True)
class LayerHistogram:
    """The per-image maxima of one layer's filters, binned.

    Attributes
    ----------
    edges
        ``(C, BINS + 1)`` bin edges per channel (from its smallest to its largest per-image maximum).
    counts
        ``(C, BINS)`` images per bin.
    active
        ``(C,)`` fraction of the images in which the channel is positive somewhere.
    median
        ``(C,)`` median of the per-image maxima.
    images
        Images scanned.
    """

    edges: np.ndarray
    counts: np.ndarray
    active: np.ndarray
    median: np.ndarray
    images: int


def _maxima(
    model: nn.Module, x: torch.Tensor, keys: Sequence[LayerKey], layouts: dict[LayerKey, Any], stop: tuple[str, int] | None,
) -> tuple[dict[LayerKey, torch.Tensor], tuple[str, int] | None]:
    """``{key: (B, C)}`` spatial maxima of ``x`` at ``keys``, and where the next forward may stop (after the deepest key)."""
    cap = LayerCapture(model, names=sorted({k.name for k in keys}), stop_at=stop)
    with eval_mode(model), cap, torch.no_grad():
        try:
            model(x)
        except StopForward:
            pass
    got = {LayerKey(r.name, r.call): r.tensor for r in cap.records}
    if stop is None and all(k in got for k in keys):
        order = [LayerKey(r.name, r.call) for r in cap.records]
        last = order[max(order.index(k) for k in keys)]
        stop = (last.name, last.call)
    out = {}
    for k in keys:
        if k not in got:
            raise LayerError(f"layer {str(k)!r} did not run in the forward pass")
        a = got[k]
        lay = layouts[k]
        a = to_nchw(a, lay) if lay.kind in ("NHWC", "tokens") else a
        if a.dim() != 4:
            raise LayerError(f"layer {str(k)!r} outputs {tuple(a.shape)}; the atlas needs (B, C, h, w)")
        out[k] = a.flatten(2).amax(2).float().cpu()
    return out, stop


def activation_histograms(
    model: nn.Module, data: Any, keys: Sequence[LayerKey], where: Shard, *, batch_size: int = 64, limit: int | None = None,
    bins: int = BINS,
) -> dict[str, LayerHistogram]:
    """Histogram each channel's per-image maximum activation over ``data`` (every rank gets the result).

    Parameters
    ----------
    model
        The network (not modified).
    data
        What :func:`~saliency_widget.analysis.mining.mine` takes (a Dataset, a sequential DataLoader, batches).
    keys
        Layers whose output is ``(B, C, h, w)``.
    where
        This process's shard (global batch ``b`` on rank ``b % world``).
    batch_size
        Images per global batch.
    limit
        Only the first ``limit`` images.
    bins
        Bins per channel.

    Returns
    -------
    dict
        ``{layer key: LayerHistogram}``.
    """
    device, dtype = model_device_dtype(model)
    layouts: dict[LayerKey, Any] = {}
    stop: tuple[str, int] | None = None
    parts: dict[str, list[tuple[int, np.ndarray]]] = {str(k): [] for k in keys}
    for _b, first, x in shard_batches(data, where, batch_size, limit=limit):
        x = x.to(device=device or x.device, dtype=dtype or x.dtype)
        if not layouts:
            layouts = {k: layer_layout(model, x[:1], k.name, k.call) for k in keys}
        maxima, stop = _maxima(model, x, keys, layouts, stop)
        for k, m in maxima.items():
            parts[str(k)].append((first, m.numpy()))
    gathered = all_gather_objects(parts, where)
    out = {}
    for k in keys:
        chunks = sorted((c for g in gathered for c in g[str(k)]), key=lambda c: c[0])
        if not chunks:
            raise InputError("the data yielded no images; nothing to histogram")
        vals = np.concatenate([a for _f, a in chunks]).astype(np.float64)  # (N, C), in image order
        lo, top = vals.min(0), vals.max(0)
        hi = np.where(top > lo, top, lo + 1.0)  # a constant channel gets one unit-wide range
        edges = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, bins + 1)[None, :]
        counts = np.stack([np.histogram(vals[:, c], bins=edges[c])[0] for c in range(vals.shape[1])]).astype(np.int64)
        out[str(k)] = LayerHistogram(edges, counts, (vals > 0).mean(0), np.median(vals, 0), int(vals.shape[0]))
    return out
