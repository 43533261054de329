"""What the dataset commands (``mine``, ``atlas``, ``render --data``) share: the process group, the model, the data.

Under torchrun each process joins one ``torch.distributed`` group (:func:`process_group`) and
leaves it on every exit path, errors included. :func:`dataset_job` adds what ``mine`` and
``atlas`` read alike: the ``--model`` on this rank's device, its preprocessing and the
``--data`` it names (an image folder, or the bundled ``sample:shapes`` scene stream).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .toolbox import MODEL_HELP, read_model

if TYPE_CHECKING:  # the data, analysis and viz floors load when a command runs, not when the parser is built
    from torch import nn

    from ..analysis.shards import Shard
    from ..viz.modelio import ModelIO, Transform

__all__ = ["DatasetJob", "add_dataset_arguments", "dataset_job", "process_group", "read_data"]

#: Scenes of ``sample:shapes`` when ``--limit`` does not say.
DEFAULT_SCENES = 1024


def add_dataset_arguments(p: argparse.ArgumentParser) -> None:
    """The options :func:`dataset_job` reads, but ``--seed`` (each command says what it seeds): model, data, limit, scenes, device.

    Parameters
    ----------
    p
        The command's parser.
    """
    p.add_argument("--model", default="shapes", help=MODEL_HELP)
    p.add_argument("--data", required=True, help="an image folder (recursive; ImageFolder layout or flat) or sample:shapes (generated scenes)")
    p.add_argument("--limit", type=int, default=None, help=f"only the first N images (sample:shapes: N scenes, default {DEFAULT_SCENES})")
    p.add_argument("--scene-size", type=int, default=128, help="side of the generated scenes of sample:shapes (default: %(default)s)")
    p.add_argument("--device", default=None, help="device (default: cuda:LOCAL_RANK when CUDA is available, else cpu)")


@contextlib.contextmanager
def process_group() -> Iterator[Shard]:
    """Join torchrun's process group (one process: none) for the body; leave it on exit, errors included.

    Yields
    ------
    Shard
        Rank and world size (one process: rank 0 of 1, not distributed).
    """
    from ..analysis.shards import resolve_shard

    where = resolve_shard("auto")
    try:
        yield where
    finally:
        if where.distributed:
            import torch.distributed as dist

            dist.destroy_process_group()


def read_data(spec: str, transform: Transform, *, limit: int | None, scene_size: int, seed: int) -> Any:
    """The images ``--data`` names, each ``(C, H, W)`` as ``transform`` makes it.

    Parameters
    ----------
    spec
        An image folder (read recursively) or ``"sample:shapes"`` (generated scenes).
    transform
        The model's preprocessing (PIL image -> ``(C, H, W)`` tensor).
    limit
        Scenes of ``sample:shapes`` (None: 1024); a folder is cut by its reader, not here.
    scene_size, seed
        Side and seed of the generated scenes.

    Returns
    -------
    ImageFolderData or SceneStream
        A map-style dataset.

    Raises
    ------
    InputError
        Another ``sample:`` name, or a folder that cannot be read.
    """
    from ..data.folders import ImageFolderData, SceneStream

    if spec == "sample:shapes":
        return SceneStream(limit or DEFAULT_SCENES, transform, size=scene_size, seed=seed)
    if spec.startswith("sample:"):
        raise InputError(f"--data {spec!r}: the only bundled stream is sample:shapes")
    return ImageFolderData(spec, transform)


@dataclass(frozen=True)
class DatasetJob:
    """One process's share of a dataset command.

    Attributes
    ----------
    where
        This process's shard.
    model
        The ``--model``, on ``--device`` (default ``cuda:LOCAL_RANK`` when CUDA is available, else CPU).
    io
        Its labels, preprocessing and normalisation.
    data
        The ``--data`` images, ``(C, H, W)`` each after ``io.transform``.
    """

    where: Shard
    model: nn.Module
    io: ModelIO
    data: Any


@contextlib.contextmanager
def dataset_job(args: argparse.Namespace) -> Iterator[DatasetJob]:
    """Check ``--limit``, join the process group, load the model on this rank's device and open the data.

    Parameters
    ----------
    args
        The command's options: ``model``, ``device``, ``data``, ``limit``, ``scene_size``, ``seed``.

    Yields
    ------
    DatasetJob
        The shard, model, its description and the data; the process group is left on exit.

    Raises
    ------
    InputError
        ``--limit`` below 1 (checked before the model loads), or unreadable ``--data``.
    """
    if args.limit is not None and args.limit < 1:  # before the model loads (sample:shapes would read 0 as "the default")
        raise InputError(f"--limit must be a positive int, got {args.limit}")
    import torch

    from ..viz.modelio import describe_model

    with process_group() as where:
        model = read_model(args.model)
        device = args.device or (f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu")
        model = model.to(device)
        io = describe_model(model)
        yield DatasetJob(where, model, io, read_data(args.data, io.transform, limit=args.limit, scene_size=args.scene_size, seed=args.seed))
