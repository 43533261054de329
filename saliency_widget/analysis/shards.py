"""Which batches one process scans, and how the processes' top-k meet again.

The images are cut into global batches ``[b * B, (b + 1) * B)`` in dataset order and batch
``b`` belongs to rank ``b % world``. Every image is therefore computed in the same batch (same
neighbours, same size) whatever the number of processes, so the activations, and with the
total order of :mod:`.running` the merged top-k, equal a single process's bit for bit.
Processes meet through ``torch.distributed`` (gloo on CPU, nccl on GPU), started by torchrun.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, SequentialSampler

from ..errors import InputError
from .running import RunningTopK

__all__ = ["Shard", "all_gather_objects", "barrier", "merge_states", "image_count", "resolve_shard", "shard_batches", "worker_error"]

_WORKER = re.compile(r"^Caught (\w+) in DataLoader worker process (\d+)\.\nOriginal Traceback \(most recent call last\):\n", re.S)
_LAST_LINE = re.compile(r"^[A-Za-z_][\w.]*: (.*)$", re.M)


def worker_error(err: BaseException) -> BaseException:
    """The one-line error a DataLoader worker raised, without the worker's traceback in its message.

    PyTorch re-raises a worker's exception in the main process as the same class with the
    whole worker traceback as its message ("Caught InputError in DataLoader worker process 0.
    Original Traceback ..."), which a command would print as one very long "line". Returns a
    new exception of the same class with the original message, or ``err`` itself when it does
    not come from a worker (or its class cannot be rebuilt from a message).
    """
    text = str(err.args[0]) if err.args else ""
    head = _WORKER.match(text)
    if head is None:
        return err
    lines = _LAST_LINE.findall(text[head.end():])
    if not lines:
        return err
    try:
        return type(err)(lines[-1])
    except Exception:  # noqa: BLE001 -- a class that needs other arguments: keep the original
        return err


def image_count(data: Any, limit: int | None = None) -> int | None:
    """How many images ``data`` holds (a sized Dataset, a DataLoader over one, a tensor), capped at ``limit``.

    None for anything else (an iterable of batches: its length counts batches, not images).
    """
    sized: Any = data.dataset if isinstance(data, DataLoader) else data
    if not isinstance(sized, (Dataset, torch.Tensor)):
        return None
    try:
        n = len(sized)  # type: ignore[arg-type]
    except TypeError:
        return None
    return min(n, limit) if limit is not None else n


@dataclass(frozen=True)
class Shard:
    """One process's part of the scan: rank ``rank`` of ``world``; ``distributed`` when torch.distributed is up."""

    rank: int = 0
    world: int = 1
    distributed: bool = False

    def owns(self, batch: int) -> bool:
        """Whether global batch ``batch`` is scanned here."""
        return batch % self.world == self.rank


def resolve_shard(spec: Any) -> Shard:
    """Read a sharding option.

    Parameters
    ----------
    spec
        None: one process, or this rank of torch.distributed when a process group is up.
        ``"auto"``: the same, and start the process group from torchrun's environment
        (``RANK`` / ``WORLD_SIZE``) when it is not up yet (gloo on CPU, nccl when CUDA is available).
        ``(rank, world)``: scan only that shard, no communication (merge the results with
        :meth:`~saliency_widget.analysis.running.RunningTopK.merge`). A :class:`Shard` is returned as is.

    Returns
    -------
    Shard
    """
    import torch.distributed as dist

    if isinstance(spec, Shard):
        return spec
    if spec == "auto" and not (dist.is_available() and dist.is_initialized()) and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if spec is None or spec == "auto":
        if dist.is_available() and dist.is_initialized():
            return Shard(dist.get_rank(), dist.get_world_size(), True)
        return Shard()
    if (
        isinstance(spec, tuple) and len(spec) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in spec)
        and spec[1] >= 1 and 0 <= spec[0] < spec[1]
    ):
        return Shard(spec[0], spec[1], False)
    raise InputError(f"shard must be None, 'auto' or (rank, world) with 0 <= rank < world, got {spec!r}")


def _as_batch(item: Any) -> torch.Tensor:
    x = item[0] if isinstance(item, (tuple, list)) else item
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        desc = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"data must yield image batches of shape (B, C, H, W) (or tuples starting with one), got {desc}")
    return x


def _dataset_of(data: Any) -> tuple[Dataset[Any], int | None, dict[str, Any]] | None:
    """A map-style dataset to index directly: the data itself, or a plain sequential DataLoader's."""
    if isinstance(data, DataLoader):
        if isinstance(data.sampler, SequentialSampler) and data.batch_size is not None and not data.drop_last and hasattr(data.dataset, "__len__"):
            opts = {"num_workers": data.num_workers, "collate_fn": data.collate_fn, "pin_memory": data.pin_memory}
            return data.dataset, data.batch_size, opts
        return None
    if isinstance(data, Dataset) and hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        return data, None, {}
    return None


def shard_batches(
    data: Iterable[Any] | Dataset[Any],
    shard: Shard,
    batch_size: int = 64,
    *,
    start: int = 0,
    limit: int | None = None,
    num_workers: int = 0,
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield ``(global batch index, first image index, images (B, C, H, W))`` of the batches this shard owns.

    Parameters
    ----------
    data
        A map-style Dataset (items are images or tuples starting with one), a sequential
        DataLoader over one (its batch size wins; only the owned batches are loaded), or any
        iterable of image batches (every rank iterates it all and keeps its own batches).
    shard
        This process's part.
    batch_size
        Images per global batch (datasets only).
    start
        Global batches to skip (a resumed scan); skipped dataset batches are not loaded.
    limit
        Use only the first ``limit`` images.
    num_workers
        DataLoader workers for a dataset.
    """
    found = _dataset_of(data)
    if found is not None:
        ds, loader_batch, opts = found
        bs = loader_batch or batch_size
        n = len(ds)  # type: ignore[arg-type]
        if limit is not None:
            n = min(n, limit)
        owned = [b for b in range(start, (n + bs - 1) // bs) if shard.owns(b)]
        plan: Sequence[list[int]] = [list(range(b * bs, min((b + 1) * bs, n))) for b in owned]
        opts.setdefault("num_workers", num_workers)
        loader = DataLoader(ds, batch_sampler=plan, **opts)  # type: ignore[arg-type]
        batches = iter(loader)
        for b in owned:
            try:
                item = next(batches)
            except StopIteration:
                return
            except RuntimeError as err:  # the default collate cannot stack images of two sizes
                if "stack expects each tensor to be equal size" not in str(err):
                    raise worker_error(err) from None
                raise InputError(f"data images {b * bs}..{min((b + 1) * bs, n) - 1} differ in size (cannot stack them into one "
                                 "batch); a scan needs one image size: resize (and crop) in the dataset's transform") from None
            except Exception as err:
                raise worker_error(err) from None
            yield b, b * bs, _as_batch(item)
        return
    first = 0
    for b, item in enumerate(data):  # type: ignore[arg-type]
        x = _as_batch(item)
        if limit is not None and first >= limit:
            return
        if limit is not None and first + x.shape[0] > limit:
            x = x[: limit - first]
        if b >= start and shard.owns(b):
            yield b, first, x
        first += x.shape[0]


def all_gather_objects(obj: Any, shard: Shard) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` without torch.distributed)."""
    if not shard.distributed:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * shard.world
    dist.all_gather_object(out, obj)
    return out


def barrier(shard: Shard) -> None:
    """Wait for every rank (no-op in one process)."""
    if shard.distributed:
        import torch.distributed as dist

        dist.barrier()


def merge_states(k: int, states: Sequence[dict[str, torch.Tensor]]) -> RunningTopK:
    """Merge the :meth:`RunningTopK.state` of every shard into the exact global top-k."""
    out = RunningTopK(k)
    for st in states:
        out.merge(RunningTopK.from_state(k, st))
    return out
