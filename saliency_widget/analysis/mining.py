"""Dataset-scale top-k mining into an index: sharded over torch.distributed, resumable, exact.

Two passes. The *scan* runs the model to the deepest requested layer on this rank's global
batches (see :mod:`.shards`), keeps each channel's running top-k (:mod:`.running`) and writes
an atomic checkpoint every ``checkpoint_every`` batches; a killed run restarts from its last
checkpoint. The ranks' top-k are then all-gathered and merged exactly. The *projection* pass
cuts the winners' (layer, channel, winner) triples into global chunks, chunk ``c`` on rank
``c % world``, so each projection is computed in the same chunk whatever the process count;
it writes the receptive-field patches and projections as PNG. Rank 0 writes the arrays and,
last, the manifest (:mod:`.index` documents the format).
"""

from __future__ import annotations

import hashlib
import math
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ..engine.checks import check_layer_key, check_model, forward_error, model_device_dtype
from ..engine.keys import LayerKey
from ..engine.progress import report
from ..errors import InputError, choices
from .datacheck import check_images
from .index import FORMAT, VERSION, MiningIndex, load_index, model_identity
from .runfolder import KILL_ENV, Checkpoints, check_config, check_out, out_lock
from .running import RunningTopK
from .scanner import LayerScanner
from .shards import Shard, all_gather_objects, barrier, image_count, merge_states, resolve_shard, shard_batches

__all__ = ["KILL_ENV", "mine"]

def _base(data: Any) -> Any:
    """The dataset behind a DataLoader, else the data."""
    return data.dataset if isinstance(data, torch.utils.data.DataLoader) else data


def _length(data: Any) -> int | None:
    """``len`` of the data (images of a dataset, batches of a list), for its identity; None without one."""
    try:
        return len(_base(data))
    except TypeError:
        return None


def _data_identity(data: Any, n: int | None) -> str:
    """What the data is, so a resumed or repeated run refuses other data (files edited in place included).

    A dataset with an ``identity`` (an image folder: paths, sizes, mtimes, content samples) says it;
    any other indexable data is named by its type, length and a hash of its first, middle and last
    items (an in-place edit elsewhere is the caller's to declare with ``restart=True``).
    """
    base = _base(data)
    ident = getattr(base, "identity", None)
    if isinstance(ident, str):
        return ident
    name = f"{type(base).__module__}.{type(base).__qualname__}(len={n})"
    if n and hasattr(base, "__getitem__"):
        h = hashlib.sha256()
        try:
            for i in sorted({0, n // 2, n - 1}):
                _hash_item(h, base[i])
        except Exception:  # noqa: BLE001 - an unreadable item is the scan's to report, with its own message
            return name
        return f"{name}:{h.hexdigest()}"
    return name


def _hash_item(h: Any, item: Any) -> None:
    if isinstance(item, torch.Tensor):
        t = item.detach().cpu().contiguous()
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(item, (tuple, list)):
        for x in item:
            _hash_item(h, x)
    else:
        h.update(repr(item).encode())


def _check_normalisation(mean: Any, std: Any) -> None:
    """``mean``/``std`` undo the normalisation for the patches: both None, or as many finite numbers (std non-zero)."""
    if mean is None and std is None:
        return
    try:
        m, s = [float(v) for v in mean], [float(v) for v in std]
    except (TypeError, ValueError):
        m, s = [], []
    if not m or len(m) != len(s) or not all(math.isfinite(v) for v in m + s) or 0.0 in s:
        raise InputError(f"mean and std must both be None or sequences of as many finite numbers (std non-zero), got mean={mean!r}, std={std!r}")


def _check_data(data: Any) -> None:
    """Mining reads the data twice (scan, then the winners' images) and resumes by batch: it needs one fixed order."""
    from collections.abc import Iterator

    from torch.utils.data import RandomSampler, SubsetRandomSampler, WeightedRandomSampler

    if isinstance(data, Iterator):
        raise InputError(f"data is a one-shot {type(data).__name__}; mining reads the data twice (scan, then the winners' "
                         "images): pass a Dataset, a DataLoader or a list of batches")
    if isinstance(data, torch.utils.data.DataLoader):
        sampler = data.batch_sampler.sampler if data.batch_sampler is not None and hasattr(data.batch_sampler, "sampler") else data.sampler
        if isinstance(sampler, (RandomSampler, SubsetRandomSampler, WeightedRandomSampler)):
            raise InputError(f"data is a DataLoader with a {type(sampler).__name__} (shuffle=True): image i would be another "
                             "image at every pass and after a resume; use shuffle=False")


def mine(
    model: nn.Module,
    data: Iterable[Any] | Dataset[Any],
    layers: Sequence[str | LayerKey],
    out: str | Path,
    k: int = 9,
    *,
    batch_size: int = 64,
    limit: int | None = None,
    checkpoint_every: int = 20,
    num_workers: int = 0,
    method: str = "deconvnet",
    project_batch: int = 64,
    preprocessing: dict[str, Any] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    shard: Any = "auto",
    restart: bool = False,
    progress: bool = True,
) -> MiningIndex:
    """Mine each channel's ``k`` strongest activations over ``data`` into an index at ``out``.

    Parameters
    ----------
    model
        The network (not modified; eval mode inside the passes, on its own device).
    data
        A map-style Dataset of images ``(C, H, W)`` (or tuples starting with one; an
        :class:`~saliency_widget.data.folders.ImageFolderData` names its files), a sequential
        DataLoader over one, or any re-iterable of image batches ``(B, C, H, W)``.
    layers
        Layer keys (``"features.relu3"``, ``"layer1.0.relu#1"``) whose output is ``(B, C, h, w)``.
    out
        The index directory (created).
    k
        Winners per channel.
    batch_size
        Images per global batch (a DataLoader's own batch size wins).
    limit
        Mine only the first ``limit`` images.
    checkpoint_every
        Batches of this rank between two atomic checkpoints.
    num_workers
        DataLoader workers.
    method
        ReLU rule of the projections.
    project_batch
        (channel, winner) pairs per projection pass.
    preprocessing
        What the images went through (:func:`~saliency_widget.analysis.index.preprocessing_identity`), recorded.
    mean, std
        Normalisation to undo for the image patches (None: min-max scaled).
    shard
        As in :func:`~saliency_widget.analysis.shards.resolve_shard`; ``"auto"`` joins torchrun's process group.
    restart
        Discard a previous run or index at ``out``.
    progress
        Show a progress bar (rank 0) with images/s and ETA.

    Returns
    -------
    MiningIndex
        The loaded index (on every rank).

    Raises
    ------
    ModelError
        ``out`` holds a run or index of another model.
    InputError
        ``out`` holds a run with other options, or bad arguments.
    """
    model = check_model(model)
    if isinstance(layers, (str, LayerKey)):
        raise InputError(f"layers must be a list of layer keys, got the single key {str(layers)!r}; use [{str(layers)!r}]")
    keys = list(dict.fromkeys(check_layer_key(model, layer) for layer in layers))  # a layer named twice is mined once
    if not keys:
        raise InputError("mine needs at least one layer, got none")
    for name, v in (("k", k), ("batch_size", batch_size), ("checkpoint_every", checkpoint_every), ("project_batch", project_batch)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{name} must be a positive int, got {v!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be None (every image) or a positive int, got {limit!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise InputError(f"num_workers must be a non-negative int, got {num_workers!r}")
    from ..engine import available_methods

    if method not in available_methods():  # checked before an hour of scanning, not after
        raise InputError(f"unknown method {method!r} for the projections; expected one of {choices(available_methods())}")
    _check_data(data)
    _check_normalisation(mean, std)
    where = resolve_shard(shard)
    root = Path(out).expanduser()
    check_out(root)
    folder = getattr(_base(data), "root", None)
    if isinstance(folder, Path) and root.resolve().is_relative_to(folder.resolve()):
        raise InputError(f"--out {str(out)!r} is inside the mined folder {str(folder)!r}: its patch PNGs would be mined as "
                         "images by the next run; put the index outside the data")
    root.mkdir(parents=True, exist_ok=True)
    with out_lock(root, where):  # a second run on one --out (another user, a second terminal) waits its turn
        n = _length(data)
        n = min(n, limit) if n is not None and limit is not None else n
        config = {
            "model": model_identity(model), "preprocessing": preprocessing, "data": _data_identity(data, n),
            "layers": [str(key) for key in keys], "k": k, "batch_size": batch_size, "limit": limit, "method": method,
        }
        check_config(root, config, restart, where)
        if (root / "manifest.json").is_file():  # the same command ran to the end before
            return load_index(root)
        ckpt = Checkpoints(root, where)
        merged = ckpt.load(ckpt.merged)
        if merged is None:
            states, seconds = _scan(model, data, keys, where, ckpt, k, batch_size, limit, checkpoint_every, num_workers, n, progress)
            parts = all_gather_objects((states, seconds), where)
            merged = {str(key): merge_states(k, [p[str(key)] for p, _s in parts if "values" in p[str(key)]]).state() for key in keys}
            if "index" not in merged[str(keys[0])]:
                raise InputError(f"data yielded no images (len {n}); nothing to mine" + (f" on {where.world} processes" if where.world > 1 else ""))
            merged["_seconds"] = max(s for _p, s in parts)  # the slowest rank's scan is the scan's wall time
            if where.rank == 0:
                ckpt.save(ckpt.merged, merged)
        barrier(where)
        from .mining_project import project_winners, write_index

        t0 = time.perf_counter()
        boxes, names = project_winners(model, data, keys, merged, root, where, method, project_batch, mean, std, limit, progress)
        proj_s = time.perf_counter() - t0
        all_names = all_gather_objects(names, where)
        if where.rank == 0:
            timing = {"scan_s": float(merged["_seconds"]), "project_s": proj_s, "world": where.world}
            write_index(root, keys, merged, boxes, all_names, {"config": config, "format": FORMAT, "version": VERSION, "k": k,
                        "method": method, "model": config["model"], "preprocessing": preprocessing, "timing": timing})
            shutil.rmtree(root / ".mining", ignore_errors=True)  # the manifest now holds the config
        barrier(where)
        return load_index(root)


def _scan(
    model: nn.Module, data: Iterable[Any] | Dataset[Any], keys: list[LayerKey], where: Shard, ckpt: Checkpoints, k: int,
    batch_size: int, limit: int | None, every: int, num_workers: int, n: int | None, progress: bool,
) -> tuple[dict[str, dict[str, torch.Tensor]], float]:
    """Scan this rank's batches from its last checkpoint; returns ``({layer: RunningTopK.state()}, seconds)``."""
    state = ckpt.load(ckpt.path)
    runs = {key: RunningTopK(k) for key in keys}
    start, seconds = 0, 0.0
    if state is not None:
        try:
            runs = {key: RunningTopK.from_state(k, state["layers"][str(key)]) for key in keys}
            start, seconds = int(state["next_batch"]), float(state["seconds"])
        except (KeyError, TypeError, ValueError, AttributeError) as err:  # another version's or a hand-made file
            raise InputError(f"checkpoint {str(ckpt.path)!r} does not hold this run's state ({type(err).__name__}: {err}); "
                             "rerun with --restart (restart=True)") from None
        print(f"saliency-widget mine: rank {where.rank} resumes at global batch {start} "
              f"({runs[keys[0]].seen} images done)", file=sys.stderr, flush=True)
    device, dtype = model_device_dtype(model)
    scanner = LayerScanner(model, keys)
    done_before = runs[keys[0]].seen
    bar = None
    if progress and where.rank == 0:
        from tqdm.auto import tqdm

        total = None if n is None else n // where.world
        bar = tqdm(total=total, initial=done_before, desc=f"mining {len(keys)} layer(s)", unit="img", smoothing=0.1)
    t0, since = time.perf_counter(), 0
    total = image_count(data, limit) or 0  # for the progress protocol (0: unknown)
    shape: tuple[int, ...] | None = None
    try:
        for b, first, x in shard_batches(data, where, batch_size, start=start, limit=limit, num_workers=num_workers):
            shape = check_images(model, x, first, shape, name=getattr(_base(data), "describe", None))
            x = x.to(device=device or x.device, dtype=dtype or x.dtype)
            try:
                acts = scanner(x)
            except RuntimeError as err:  # images too small for the model: one line naming their shape
                size_error = forward_error(err, x, model)
                if size_error is None:
                    raise
                raise size_error from None
            idx = torch.arange(first, first + x.shape[0])
            for key in keys:
                runs[key].update(acts[key], idx)
            if bar is not None:
                bar.update(x.shape[0])
            # between batches: the caller may watch, or stop the scan (Cancelled; the checkpoints let it resume)
            report(runs[keys[0]].seen, total)
            since += 1
            if since % every == 0:  # resume after global batch b (the next ones of this rank follow it)
                ckpt.save_scan({"next_batch": b + 1, "seconds": seconds + time.perf_counter() - t0,
                                "layers": {str(key): r.state() for key, r in runs.items()}})
    finally:
        if bar is not None:
            bar.close()
    seconds += time.perf_counter() - t0
    return {str(key): r.state() for key, r in runs.items()}, seconds
