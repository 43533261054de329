"""Zeiler-Fergus figure 2: for each filter, its k strongest activations over a dataset.

One pass over any iterable of image batches (a DataLoader included) keeps a running top-k
per channel (value, image index, position) and only the images currently among some
channel's winners, so memory is bounded by ``k × channels`` images, not by the dataset.
Then the winners are projected to pixel space in batches (one ``project`` call per channel)
and the receptive-field patches are cut from the images and from the projections.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ..engine.capture import forward_to, layer_layout
from ..engine.checks import check_layer_key, check_model, forward_error, model_device_dtype
from ..engine.keys import LayerKey
from ..engine.layouts import Layout, to_nchw
from ..engine.progress import nested, report, reporting
from ..engine.receptive import receptive_fields
from ..engine.session import Explainer
from ..errors import InputError, LayerError, choices
from .datacheck import check_images
from .running import RunningTopK
from .shards import Shard, all_gather_objects, image_count, merge_states, resolve_shard, shard_batches

__all__ = ["TopActivations", "project_top", "top_activations"]


@dataclass
class TopActivations:
    """Result of :func:`top_activations`.

    Attributes
    ----------
    layer, call
        The layer execution scanned.
    channels
        The channels kept, ``list[int]`` of length ``C``.
    values
        ``(C, k)`` activations, strongest first.
    image_index
        ``(C, k)`` index of the winning image in the order the data was iterated.
    positions
        ``(C, k, 2)`` ``(y, x)`` in the layer's feature map.
    boxes
        ``(C, k, 4)`` receptive-field boxes ``(y0, x0, y1, x1)`` in input pixels.
    images
        ``{image_index: (C_in, H, W)}`` the winning images (as fed to the model).
    projections
        ``(C, k, C_in, H, W)`` Zeiler-Fergus projections of each winner (None when the
        scan ran with ``project=False``).
    images_seen
        How many images were scanned; ``seconds`` how long the scan took.
    """

    layer: str
    call: int
    channels: list[int]
    values: torch.Tensor
    image_index: torch.Tensor
    positions: torch.Tensor
    boxes: torch.Tensor
    images: dict[int, torch.Tensor]
    projections: torch.Tensor | None
    images_seen: int = 0
    seconds: float = 0.0
    method: str = "deconvnet"
    extra: dict[str, Any] = field(default_factory=dict)

    def patches(self, channel: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``[(image_patch, projection_patch), ...]`` for one channel, each ``(C_in, h, w)``, strongest first."""
        row = self._row(channel)
        if self.projections is None:
            raise InputError("this scan ran with project=False, so there are no projections; run it with project=True")
        out = []
        for j in range(self.values.shape[1]):
            y0, x0, y1, x1 = self.boxes[row, j].tolist()
            img = self.images[int(self.image_index[row, j])]
            out.append((img[:, y0:y1, x0:x1], self.projections[row, j, :, y0:y1, x0:x1]))
        return out

    def _row(self, channel: int) -> int:
        if channel not in self.channels:
            raise InputError(f"channel {channel!r} was not scanned; scanned channels: {choices(self.channels)}")
        return self.channels.index(channel)


def _gather(
    run: RunningTopK | None, kept: dict[int, torch.Tensor], chans: list[int] | None, lay: Layout | None, where: Shard, k: int
) -> tuple[RunningTopK, dict[int, torch.Tensor], list[int] | None, Layout | None, int]:
    """All-gather every rank's top-k, merge it exactly, and share the winners' images (CPU copies)."""
    mine = (run.state() if run is not None else None, chans, lay)
    parts = all_gather_objects(mine, where)
    states = [st for st, _c, _l in parts if st is not None and "values" in st]
    merged = merge_states(k, states)
    chans = next((c for _s, c, _l in parts if c is not None), chans)
    lay = next((la for _s, _c, la in parts if la is not None), lay)
    needed = set(merged.index.flatten().tolist()) if merged.index is not None else set()
    shared = all_gather_objects({i: t.cpu() for i, t in kept.items() if i in needed}, where)
    device = next(iter(kept.values())).device if kept else torch.device("cpu")
    images = {i: t.to(device) for part in shared for i, t in part.items()}
    return merged, images, chans, lay, merged.seen


def top_activations(
    model: nn.Module,
    data: Iterable[Any] | Dataset[Any],
    layer: str | LayerKey,
    channels: Sequence[int] | None = None,
    k: int = 9,
    *,
    call: int = 0,
    method: str = "deconvnet",
    progress: bool = True,
    project_batch: int = 64,
    project: bool = True,
    shard: Shard | tuple[int, int] | str | None = None,
    batch_size: int = 64,
    limit: int | None = None,
) -> TopActivations:
    """Scan ``data`` once and return each channel's ``k`` strongest activations, projected.

    Parameters
    ----------
    model
        The network (not modified; run in eval mode on its own device).
    data
        Iterable of image batches ``(B, C, H, W)`` or tuples ``(images, ...)``: a DataLoader works.
    layer
        Dotted module name (or a ``"name#call"`` key or :class:`~saliency_widget.engine.keys.LayerKey`)
        whose output is ``(B, C', h, w)``.
    channels
        Which channels to keep (default: all).
    k
        Winners per channel (9 as in the paper).
    call
        Execution index of a module that runs several times.
    method
        ReLU rule of the projections (``"deconvnet"`` as in the paper).
    progress
        Show a tqdm progress bar with images/s. To watch or stop the scan from code, wrap the
        call in :func:`saliency_widget.engine.progress.reporting`: the callback gets
        ``(images_seen, images_total)`` after each batch (total 0 when the data has no length)
        and stops the scan by raising :class:`~saliency_widget.errors.Cancelled` or returning False.
    project_batch
        (channel, winner) pairs projected per forward/backward pass.
    project
        Project the winners (default); ``False`` stops after the scan and the receptive
        fields (winners, positions, boxes and images only).
    shard
        Sharding, as in :func:`~saliency_widget.analysis.shards.resolve_shard`: None scans
        everything (or, under torchrun with a process group up, this rank's batches, then
        all-gathers the candidates so every rank returns the exact global result); ``"auto"``
        also starts the process group from torchrun's environment; ``(rank, world)`` scans
        only global batches ``b`` with ``b % world == rank`` and returns that shard's top-k.
        Winners are ordered by value, ties by the smaller image index, so merged shards equal
        one process exactly.
    batch_size
        Images per batch when ``data`` is a map-style Dataset.
    limit
        Scan only the first ``limit`` images.

    Returns
    -------
    TopActivations
    """
    model = check_model(model)  # a compiled model: its original module
    key = check_layer_key(model, layer, call)
    layer, call = key.name, key.call
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError(f"k must be a positive int, got {k!r}")
    if isinstance(project_batch, bool) or not isinstance(project_batch, int) or project_batch < 1:
        raise InputError(f"project_batch must be a positive int, got {project_batch!r}")
    for name, v in (("batch_size", batch_size), ("limit", limit)):
        if (v is not None or name == "batch_size") and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise InputError(f"{name} must be a positive int{' or None' if name == 'limit' else ''}, got {v!r}")
    device, dtype = model_device_dtype(model)
    where = resolve_shard(shard)
    run: RunningTopK | None = None
    kept: dict[int, torch.Tensor] = {}
    chans: list[int] | None = list(channels) if channels is not None else None
    lay: Layout | None = None
    seen = 0
    total = image_count(data, limit) or 0
    shape: tuple[int, ...] | None = None
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc=f"top-{k} of {layer}", unit="img", leave=False)
    try:
        for _b, first, x in shard_batches(data, where, batch_size, limit=limit):
            shape = check_images(model, x, first, shape)
            x = x.to(device=device or x.device, dtype=dtype or x.dtype)
            try:
                if lay is None:  # the layer's layout, once: NHWC / token layers are read as (B, C, h, w)
                    lay = layer_layout(model, x[:1], layer, call)
                    if lay.kind == "ambiguous":
                        raise LayerError(f"layer {layer!r} has an ambiguous layout (not channels x grid); top activations need NCHW, NHWC or tokens")
                with torch.no_grad():
                    act = forward_to(model, x, layer, call)
            except RuntimeError as err:  # images too small for the model: one line naming their shape
                size_error = forward_error(err, x, model)
                if size_error is None:
                    raise
                raise size_error from None
            if lay.kind in ("NHWC", "tokens"):
                act = to_nchw(act, lay)
            if act.dim() != 4:
                raise LayerError(f"layer {layer!r} outputs {tuple(act.shape)}; top activations need (B, C, h, w)")
            if chans is None:
                chans = list(range(act.shape[1]))
            bad = [c for c in chans if not (isinstance(c, int) and 0 <= c < act.shape[1])]
            if bad:
                raise InputError(f"channel(s) {bad} out of range for layer {layer!r}: valid channels are 0..{act.shape[1] - 1}")
            B = act.shape[0]
            if run is None:
                run = RunningTopK(k)
            run.update(act[:, chans], torch.arange(first, first + B))
            # keep only the images some channel still needs
            needed = set(run.index.flatten().tolist()) if run.index is not None else set()
            for j in range(B):
                if first + j in needed:
                    kept[first + j] = x[j].detach().clone()
            for old in [i for i in kept if i not in needed]:
                del kept[old]
            seen += B
            rate = seen / max(time.perf_counter() - t0, 1e-9)
            if bar is not None:
                bar.update(B)
                bar.set_postfix_str(f"{rate:.0f} img/s")
            report(seen, total)  # between batches: the caller may watch, or stop the scan (Cancelled)
    finally:
        if bar is not None:
            bar.close()
    if where.distributed:  # exact merge of every rank's candidates, then the winners' images
        run, kept, chans, lay, seen = _gather(run, kept, chans, lay, where, k)
    if run is None or run.values is None or run.index is None or run.pos is None or chans is None or lay is None:
        raise InputError("data yielded no images" + (f" for shard {where.rank} of {where.world}" if where.world > 1 else ""))
    best_v, best_i, best_p = run.values, run.index, run.pos
    scan_s = time.perf_counter() - t0
    C, kk = best_v.shape
    sample = next(iter(kept.values()))
    # receptive fields: one batched probe for all distinct winning positions
    unique = sorted({(int(y), int(x)) for y, x in best_p.reshape(-1, 2).tolist()})
    rf = dict(zip(unique, receptive_fields(model, tuple(sample.shape), layer, unique, call, sample.dtype, sample.device, layout=lay)))
    boxes = torch.tensor([[rf[(int(y), int(x))] for y, x in best_p[row].tolist()] for row in range(C)], dtype=torch.long)
    res = TopActivations(
        layer=layer,
        call=call,
        channels=list(chans),
        values=best_v.cpu(),
        image_index=best_i.cpu(),
        positions=best_p.cpu(),
        boxes=boxes,
        images=kept,
        projections=None,
        images_seen=seen,
        seconds=scan_s,
        method=method,
    )
    if not project:
        return res
    with reporting(nested(seen, total)):  # the projections' chunks report as the finished scan: (images seen, total)
        return project_top(model, res, method=method, project_batch=project_batch)


def project_top(model: nn.Module, res: TopActivations, *, method: str = "deconvnet", project_batch: int = 64) -> TopActivations:
    """Project every winner of a scan (``top_activations(..., project=False)``) down to the input.

    Every (channel, winner) pair is one sample; one forward and one backward per chunk of
    ``project_batch`` pairs. After each chunk it calls :func:`~saliency_widget.engine.progress.report`
    with ``(pairs projected, pairs in all)`` (and once with 0 before the first), so a caller can watch (or stop) this phase apart
    from the scan's.

    Returns
    -------
    TopActivations
        ``res`` with ``projections`` ``(C, k, C_in, H, W)`` and ``method`` set.
    """
    if isinstance(project_batch, bool) or not isinstance(project_batch, int) or project_batch < 1:
        raise InputError(f"project_batch must be a positive int, got {project_batch!r}")
    C, kk = res.values.shape
    sample = next(iter(res.images.values()))
    pair_img = res.image_index.reshape(-1).tolist()
    pair_ch = torch.tensor(res.channels, dtype=torch.long).repeat_interleave(kk)
    pair_pos = res.positions.reshape(-1, 2)
    chunks = []
    report(0, len(pair_img))  # the projections begin (a watcher can say so before the first chunk ends)
    for start in range(0, len(pair_img), project_batch):
        sl = slice(start, start + project_batch)
        imgs = torch.stack([res.images[int(i)] for i in pair_img[sl]])
        ex = Explainer(model, imgs, stop_at=(res.layer, res.call), retain_graph=False)  # one projection per chunk
        chunks.append(ex.project(res.layer, pair_ch[sl], position=pair_pos[sl], call=res.call, method=method))
        del ex
        report(min(start + project_batch, len(pair_img)), len(pair_img))
    return replace(res, projections=torch.cat(chunks).reshape(C, kk, *sample.shape), method=method)
