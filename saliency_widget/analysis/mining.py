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

import contextlib
import hashlib
import math
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ..data.atomic import replacing, write_json
from ..engine.capture import LayerCapture, StopForward, layer_layout
from ..engine.checks import check_layer_key, check_model, eval_mode, forward_error, model_device_dtype
from ..engine.keys import LayerKey
from ..engine.layouts import Layout, to_nchw
from ..engine.progress import report
from ..errors import InputError, LayerError, ModelError, choices
from .datacheck import check_images
from .index import FORMAT, VERSION, MiningIndex, load_index, model_identity
from .running import RunningTopK
from .shards import Shard, all_gather_objects, barrier, image_count, merge_states, resolve_shard, shard_batches

__all__ = ["KILL_ENV", "mine"]

#: Test hook: ``SALIENCY_MINE_KILL_AFTER_CHECKPOINT=N`` makes the process SIGKILL itself right
#: after writing its N-th scan checkpoint (to test that a killed run resumes exactly).
KILL_ENV = "SALIENCY_MINE_KILL_AFTER_CHECKPOINT"


class _Scanner:
    """One forward pass to the deepest requested layer, hooks only inside ``with`` (the model is untouched)."""

    def __init__(self, model: nn.Module, keys: Sequence[LayerKey]) -> None:
        self.model = model
        self.keys = list(keys)
        self.stop: tuple[str, int] | None = None
        self.layouts: dict[LayerKey, Layout] = {}

    def _capture(self, x: torch.Tensor) -> dict[LayerKey, torch.Tensor]:
        cap = LayerCapture(self.model, names=sorted({k.name for k in self.keys}), stop_at=self.stop)
        with eval_mode(self.model), cap:
            try:
                self.model(x)
            except StopForward:
                pass
        got = {LayerKey(r.name, r.call): r.tensor for r in cap.records}
        if self.stop is None:  # first batch: stop after the last requested execution from now on
            order = [LayerKey(r.name, r.call) for r in cap.records]
            missing = [str(k) for k in self.keys if k not in got]
            if missing:
                raise LayerError(f"layer(s) {missing} did not run in the forward pass")
            last = max(order.index(k) for k in self.keys)
            self.stop = (order[last].name, order[last].call)
        return {k: got[k] for k in self.keys}

    def __call__(self, x: torch.Tensor) -> dict[LayerKey, torch.Tensor]:
        """``{key: (B, C, h, w)}`` activations of a batch."""
        if not self.layouts:
            for k in self.keys:
                lay = layer_layout(self.model, x[:1], k.name, k.call)
                if lay.kind == "ambiguous":
                    raise LayerError(f"layer {str(k)!r} has an ambiguous layout (not channels x grid); mining needs NCHW, NHWC or tokens")
                self.layouts[k] = lay
        with torch.no_grad():
            acts = self._capture(x)
        out = {}
        for k, a in acts.items():
            lay = self.layouts[k]
            a = to_nchw(a, lay) if lay.kind in ("NHWC", "tokens") else a
            if a.dim() != 4:
                raise LayerError(f"layer {str(k)!r} outputs {tuple(a.shape)}; mining needs (B, C, h, w)")
            out[k] = a
        return out


def _base(data: Any) -> Any:
    """The dataset behind a DataLoader, else the data."""
    return data.dataset if isinstance(data, torch.utils.data.DataLoader) else data


def _length(data: Any) -> int | None:
    """``len`` of the data (images of a dataset, batches of a list), for its identity; None without one."""
    sized: Any = data.dataset if isinstance(data, torch.utils.data.DataLoader) else data
    try:
        return len(sized)
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



#: The lock file of a run in ``out`` (held with ``flock`` while ``mine`` runs; the OS drops it when the process dies).
LOCK_NAME = ".mining.lock"


@contextlib.contextmanager
def _out_lock(out: Path, where: Shard) -> Iterator[None]:
    """Hold ``out/.mining.lock`` (rank 0) while mining: a second run on the same ``out`` is refused in one line.

    ``flock`` is released by the OS when the holder exits, also on SIGKILL, so a killed run's
    rerun resumes at once. Without ``fcntl`` (Windows) there is no lock.
    """
    fd = None
    holder = ""
    if where.rank == 0:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            fcntl = None  # type: ignore[assignment]
        if fcntl is not None:
            fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "?"
                os.close(fd)
                fd = None
            else:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}@{socket.gethostname()}".encode(), 0)
    busy = [h for h in all_gather_objects(holder, where) if h]
    if busy:
        raise InputError(f"another mining run (process {busy[0]}) is writing to {str(out)!r}; wait for it to finish "
                         "(then rerun to reuse its index), or give another --out")
    try:
        yield
    finally:
        if fd is not None:
            os.ftruncate(fd, 0)  # no holder any more (and two finished indexes have equal files)
            os.close(fd)  # closing releases the flock


class _Checkpoints:
    """Atomic per-rank scan checkpoints under ``out/.mining`` (per world size: another process count rescans)."""

    def __init__(self, out: Path, shard: Shard) -> None:
        self.dir = out / ".mining"
        self.shard = shard
        self.path = self.dir / f"rank{shard.rank}of{shard.world}.pt"
        self.merged = self.dir / "merged.pt"
        self.written = 0
        self.kill_after = int(os.environ.get(KILL_ENV, "0") or 0)

    def save(self, path: Path, obj: Any) -> None:
        with replacing(path) as tmp:
            torch.save(obj, tmp)

    def save_scan(self, obj: Any) -> None:
        self.save(self.path, obj)
        self.written += 1
        if self.kill_after and self.written >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)  # the test hook (see KILL_ENV)

    def load(self, path: Path) -> Any:
        if not path.is_file():
            return None
        try:
            return torch.load(path, weights_only=True)
        except Exception as err:  # a checkpoint that cannot be read is restarted, never trusted
            raise InputError(f"checkpoint {str(path)!r} cannot be read ({err}); rerun with --restart") from err


def _json_dict(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None if it is missing, unreadable or not an object."""
    import json

    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _check_out(out: Path) -> None:
    """Refuse an ``out`` that holds files of something else (they would be overwritten or, with restart, deleted)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file; give a folder for the index (it gets manifest.json, layers/, patches/)")
    man = out / "manifest.json"
    ours = man.is_file() and (_json_dict(man) or {}).get("format") == FORMAT
    if man.exists() and not ours and not (out / ".mining").is_dir():
        raise InputError(f"{str(man)!r} is not a saliency-widget index manifest; refusing to overwrite it: choose a new or empty --out "
                         "(or delete it yourself if it is a broken index)")
    taken = [n for n in ("layers", "patches", "images.json") if (out / n).exists()]
    if taken and not ours and not (out / ".mining").is_dir():
        raise InputError(f"{str(out)!r} holds {', '.join(taken)} of something that is not a saliency-widget index; "
                         "refusing to overwrite (or, with --restart, delete) them: choose a new or empty --out")


def _check_config(out: Path, config: dict[str, Any], restart: bool, shard: Shard) -> None:
    """Refuse to mix runs: a different model is a ModelError, other options an InputError."""
    cfg_path = out / ".mining" / "config.json"
    man_path = out / "manifest.json"
    if restart:
        barrier(shard)
        if shard.rank == 0:
            for p in (out / ".mining", out / "layers", out / "patches"):
                shutil.rmtree(p, ignore_errors=True)
            for f in (man_path, out / "images.json"):
                f.unlink(missing_ok=True)
        barrier(shard)
    old, stale = None, False
    if man_path.is_file():
        old = (_json_dict(man_path) or {}).get("config")
        if not isinstance(old, dict) or not isinstance(old.get("model"), dict):
            raise InputError(f"corrupt index at {str(out)!r}: manifest.json holds no run configuration; "
                             f"mine it again with --restart (restart=True)")
    elif (out / ".mining").is_dir():
        old = (_json_dict(cfg_path) or {}).get("config")
        if not isinstance(old, dict) or not isinstance(old.get("model"), dict):
            old, stale = None, True  # checkpoints of an unknown run (its config.json lost or cut short): never resumed
    barrier(shard)  # every rank has read the state before rank 0 changes it
    if stale and shard.rank == 0:
        shutil.rmtree(out / ".mining", ignore_errors=True)
    if old is not None and old != config:
        if old.get("model") != config["model"]:
            raise ModelError(
                f"{str(out)!r} holds an index of another model ({old['model'].get('class')}, weights sha256 "
                f"{str(old['model'].get('sha256'))[:12]}); refusing to mix models: use a new --out, or --restart to replace it"
            )
        diff = sorted(k for k in config if old.get(k) != config[k])
        if diff == ["data"]:
            raise InputError(f"the data changed since {str(out)!r} was mined from it (images added, removed, renamed or edited "
                             f"in place); refusing to resume or reuse it: pass --restart (restart=True) to mine the new data")
        raise InputError(f"{str(out)!r} holds a run with other options ({', '.join(diff)}); rerun the same command, or pass --restart")
    barrier(shard)
    if shard.rank == 0:
        (out / ".mining").mkdir(parents=True, exist_ok=True)
        if old is None:
            write_json(cfg_path, {"config": config})
    barrier(shard)


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
    _check_out(root)
    folder = getattr(_base(data), "root", None)
    if isinstance(folder, Path) and root.resolve().is_relative_to(folder.resolve()):
        raise InputError(f"--out {str(out)!r} is inside the mined folder {str(folder)!r}: its patch PNGs would be mined as "
                         "images by the next run; put the index outside the data")
    root.mkdir(parents=True, exist_ok=True)
    with _out_lock(root, where):  # a second run on one --out (another user, a second terminal) waits its turn
        n = _length(data)
        n = min(n, limit) if n is not None and limit is not None else n
        config = {
            "model": model_identity(model), "preprocessing": preprocessing, "data": _data_identity(data, n),
            "layers": [str(key) for key in keys], "k": k, "batch_size": batch_size, "limit": limit, "method": method,
        }
        _check_config(root, config, restart, where)
        if (root / "manifest.json").is_file():  # the same command ran to the end before
            return load_index(root)
        ckpt = _Checkpoints(root, where)
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
    model: nn.Module, data: Iterable[Any] | Dataset[Any], keys: list[LayerKey], where: Shard, ckpt: _Checkpoints, k: int,
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
    scanner = _Scanner(model, keys)
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
