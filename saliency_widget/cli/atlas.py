"""``saliency-widget atlas``: a browsable offline site of a model's filters, on 1 or N processes.

    saliency-widget atlas --model SPEC --data DIR|sample:shapes --layers L1,L2 --out SITE [--limit N] [--channels 0-15]
    torchrun --nproc_per_node=N -m saliency_widget.cli atlas ... (same options)

Under torchrun the mining and the histograms are sharded as ``saliency-widget mine`` shards them,
and the layers' feature visualizations are shared out (layer ``i`` on rank ``i % N``); the
site equals a single process's except its timing line. Every error is one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import InputError
from .sharded import add_dataset_arguments
from .toolbox import split_list
from .visualize import add_optimisation_arguments, parse_channels

__all__ = ["EXAMPLES", "add_parser", "run"]

EXAMPLES = """examples:
  saliency-widget atlas --data sample:shapes --limit 1024 --layers features.relu3,features.relu5 --out atlas
  saliency-widget atlas --data sample:shapes --limit 256 --layers features.relu3 --channels 0-7 --steps 32 --out small
  saliency-widget atlas --model torchvision:vgg16 --data ~/imagenet/val --index vgg-val --layers features.29 --out vgg-atlas
  torchrun --nproc_per_node=2 -m saliency_widget.cli atlas --data sample:shapes --layers features.relu3,features.relu5 --out atlas
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``atlas`` command to ``sub``; return its parser."""
    p: argparse.ArgumentParser = sub.add_parser(
        "atlas", help="an offline site of every filter: top-9 patches, projections, feature visualization, histogram",
        description="Build a static site (index.html, one page per layer and per filter, atlas.json) that opens from "
        "file:// with no network.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataset_arguments(p)  # --model, --data, --limit, --scene-size, --device
    p.add_argument("--layers", required=True, help="comma-separated layer keys, e.g. features.relu3,features.relu5")
    p.add_argument("--out", required=True, help="the site folder (created)")
    p.add_argument("--index", default=None, help="a mining index to reuse (not rescanned) or to create (default: OUT/index)")
    p.add_argument("--channels", default=None, help="filters of every layer, e.g. 0-15,20 (default: all)")
    p.add_argument("--k", type=int, default=9, help="top images per filter (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="images per scan batch (default: %(default)s)")
    p.add_argument("--method", default="deconvnet", help="ReLU rule of the projections (default: %(default)s)")
    add_optimisation_arguments(p, steps=128)  # --steps, --size, --param, --no-transforms
    p.add_argument("--seed", type=int, default=0, help="seed of the visualizations and of sample:shapes (default: %(default)s)")
    p.add_argument("--title", default=None, help="page title (default: 'Atlas of MODEL')")
    p.add_argument("--restart", action="store_true", help="mine the index again (after changing --layers, --limit or the data)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    """Build the atlas as ``args`` say; print a summary on rank 0."""
    from ..atlas import build_atlas
    from .sharded import dataset_job

    layers = split_list(args.layers, "--layers", "layer key")
    for name in ("steps", "k", "batch_size", "scene_size"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be a positive int, got {getattr(args, name)}")
    with dataset_job(args) as job:
        channels = None
        if args.channels is not None:
            # the syntax here; the range per layer in build_atlas (its message names the layer and its channel count)
            ends = [int(v) for item in split_list(args.channels, "--channels", "channel") for v in item.split("-") if v.strip().isdigit()]
            channels = parse_channels(args.channels, max(ends, default=0) + 1)
        atlas = build_atlas(
            job.model, job.data, layers, args.out, index=args.index, channels=channels, limit=args.limit, spec=args.model,
            data_name=args.data, title=args.title, k=args.k, batch_size=args.batch_size, method=args.method, steps=args.steps,
            size=args.size, param=args.param, seed=args.seed, transforms=not args.no_transforms, shard=job.where,
            restart=args.restart, progress=not args.quiet,
        )
        if job.where.rank == 0:
            print(atlas.summary())
    return 0
