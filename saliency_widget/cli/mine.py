"""``saliency-widget mine``: each channel's top-k over a dataset into an index, on 1 or N processes.

    saliency-widget mine --model shapes --data DIR|sample:shapes --layers L1,L2 --k 9 --out INDEX_DIR [--limit N]
    torchrun --nproc_per_node=N -m saliency_widget.mine --model ... (same options)

Under torchrun every process joins one ``torch.distributed`` group (gloo on CPU, nccl on GPU)
and scans its shard; the index equals a single process's. Rerunning the same command after a
crash (or ``kill -9``) resumes from the last checkpoint. Errors are one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..errors import InputError
from ..viz.interactive_featviz import FEATVIZ_COST
from .sharded import add_dataset_arguments
from .toolbox import Parser, run_reporting, split_list

__all__ = ["add_arguments", "main", "run"]

EXAMPLES = """examples:
  saliency-widget mine --data sample:shapes --limit 2048 --layers features.relu3,features.relu5 --out idx
  saliency-widget mine --model torchvision:vgg16 --data ~/imagenet/val --layers features.29 --out vgg-val
  torchrun --nproc_per_node=8 -m saliency_widget.mine --model torchvision:vgg16 --data ~/imagenet/val \\
      --layers features.29 --out vgg-val
  python -c "import saliency_widget.analysis as a; print(a.load_index('idx').top('features.relu3', 0))"
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``mine`` (shared by ``saliency-widget mine`` and ``python -m saliency_widget.mine``)."""
    add_dataset_arguments(p)  # --model, --data, --limit, --scene-size, --device
    p.add_argument("--layers", required=True, help="comma-separated layer keys, e.g. features.relu3,features.relu5 or layer1.0.relu#1")
    p.add_argument("--k", type=int, default=9, help="winners per channel (default: %(default)s)")
    p.add_argument("--out", required=True, help="index directory (created; rerun the same command to resume)")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default: %(default)s)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes per rank (default: %(default)s)")
    p.add_argument("--checkpoint-every", type=int, default=20, help="batches between checkpoints (default: %(default)s)")
    p.add_argument("--project-batch", type=int, default=64, help="projections per backward pass (default: %(default)s)")
    p.add_argument("--method", default="deconvnet", help="ReLU rule of the projections (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample:shapes stream (default: %(default)s)")
    p.add_argument("--restart", action="store_true", help="discard a previous run or index at --out")
    p.add_argument("--featviz", action="store_true", help="also write each mined filter's feature visualization into the index "
                   "(featviz/<layer>/c<channel>.png; one batched optimisation per layer on rank 0: " + FEATVIZ_COST + ")")
    p.add_argument("--featviz-steps", type=int, default=32, help="--featviz: optimisation steps (default: %(default)s; cost grows linearly)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Mine as ``args`` say; print a summary on rank 0."""
    from ..analysis.index import preprocessing_identity
    from ..analysis.mining import mine
    from .sharded import dataset_job

    layers = split_list(args.layers, "--layers", "layer key")
    if args.featviz and args.featviz_steps < 1:
        raise InputError(f"--featviz-steps must be at least 1, got {args.featviz_steps}")
    with dataset_job(args) as job:
        io, where = job.io, job.where
        index = mine(
            job.model, job.data, layers, args.out, k=args.k, batch_size=args.batch_size, limit=args.limit,
            checkpoint_every=args.checkpoint_every, num_workers=args.workers, method=args.method,
            project_batch=args.project_batch, preprocessing=preprocessing_identity(io.transform, io.mean, io.std),
            mean=io.mean, std=io.std, shard=where, restart=args.restart, progress=not args.quiet,
        )
        if where.rank == 0:
            t = index.manifest.get("timing", {})
            print(f"wrote {args.out}: {len(index.layers)} layer(s), top-{index.k}; scan {t.get('scan_s', 0):.1f} s, "
                  f"projections {t.get('project_s', 0):.1f} s on {where.world} process(es)")
            if args.featviz:
                from ..viz.interactive_featviz import FeatvizOptions, write_index_visualizations
                from ..viz.visualize import Normalize

                t0 = time.perf_counter()
                pre = Normalize(io.mean, io.std) if io.mean is not None and io.std is not None else None
                write_index_visualizations(job.model, args.out, {key: index.channels(key) for key in index.layers},
                                           FeatvizOptions(steps=args.featviz_steps), preprocess=pre,
                                           progress=None if args.quiet else lambda line: print(f"  {line}", file=sys.stderr))
                print(f"wrote the feature visualizations of {sum(len(index.channels(k)) for k in index.layers)} filter(s) "
                      f"in {time.perf_counter() - t0:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m saliency_widget.mine``: exit status 0, or 2 with a one-line error."""
    p = Parser(prog="saliency_widget.mine", description=(__doc__ or "").split("\n\n")[0], epilog=EXAMPLES,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return run_reporting(lambda: run(p.parse_args(argv)))
