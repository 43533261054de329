"""``saliency-widget render --data DIR --out OUT_DIR``: a report of every image in a folder, on 1 or N processes.

    saliency-widget render --data DIR --out OUT_DIR [--methods ...] [--target ...]
    torchrun --nproc_per_node=N -m saliency_widget.cli render --data DIR --out OUT_DIR (same options)

The folder is read like ``saliency-widget mine`` reads it (:class:`~saliency_widget.data.folders.ImageFolderData`:
recursive, ImageFolder layout or flat, sorted relative paths). Image ``i`` belongs to rank
``i % world``; each rank writes one page per image and its part file, and after a barrier
rank 0 merges the parts into ``OUT_DIR/index.html`` (:mod:`saliency_widget.viz.batch`).
Every page depends only on its image, so the folder equals a single process's.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import InputError, SaliencyError
from ..models import load_model
from .settings import method_settings
from .toolbox import one_line, read_model

__all__ = ["render_folder", "run"]


def _out_dir(arg: str | Path) -> Path:
    out = Path(arg).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(arg)!r} is a file; with --data give a folder (it gets index.html, pages/ and parts/)")
    if out.suffix.lower() in (".html", ".htm", ".png") and not out.exists():
        raise InputError(f"--out {str(arg)!r}: with --data, --out is a folder (it gets index.html, pages/ and parts/), not a .html/.png file")
    if not out.parent.is_dir():
        raise InputError(f"the folder of --out {str(arg)!r} ({str(out.parent)!r}) does not exist; create it first")
    return out


def _folder(root: str | Path) -> Path:
    """``--data``: an existing folder (its images are listed by ImageFolderData)."""
    from ..data.decode import IMAGE_SUFFIXES

    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise InputError(f"--data {str(root)!r} is not a folder; give a folder of images ({', '.join(IMAGE_SUFFIXES)}), nested or flat")
    return folder


def render_folder(
    root: str | Path,
    out_dir: str | Path,
    model: nn.Module | str | None = None,
    methods: Sequence[str] | None = None,
    target: int | str | None = None,
    *,
    shard: Any = None,
    progress: Callable[[str], None] | None = None,
    **report_options: Any,
) -> Path | None:
    """Render every image under ``root`` into the batch report folder ``out_dir``.

    Parameters
    ----------
    root
        An image folder (recursive; ImageFolder layout or flat), read as ``saliency-widget mine`` reads it.
    out_dir
        Created if needed; gets ``pages/<relative path>.html|.png``, ``parts/rank-K-of-W.json``
        and (from the merging process) ``index.html``.
    model
        Classifier or model spec (:func:`saliency_widget.models.load_model`; default: the bundled
        shapes model); its preprocessing resizes each image.
    methods, target
        As in :func:`saliency_widget.viz.report.render_report` (target None: each image's predicted class).
    shard
        None or ``"auto"``: one process, or this rank of torch.distributed (``"auto"`` also starts
        the group from torchrun's environment); the ranks meet at a barrier and rank 0 writes
        the index. ``(rank, world)``: render only that share, no communication and no index;
        run every share, then :func:`saliency_widget.viz.batch.merge_parts`.
    progress
        Called with one line per rendered image.
    **report_options
        Passed to ``render_report`` (``sign``, ``cmap``, ``clip_percentile``, ``faithfulness``,
        ``interactive``, ``topk``, ``layers``).

    Returns
    -------
    Path or None
        ``OUT_DIR/index.html`` on the process that wrote it, else None.

    Raises
    ------
    InputError
        ``root`` is not a folder or holds no image file; ``out_dir`` is a file.
    """
    from ..analysis.shards import barrier, resolve_shard
    from ..data.folders import ImageFolderData
    from ..views.settings import MethodSettings, settings_text
    from ..viz.batch import PART_VERSION, merge_parts, write_part
    from ..viz.images import to_pil
    from ..viz.modelio import describe_model
    from ..viz.report import render_report

    start = time.perf_counter()
    folder = _folder(root)
    out = _out_dir(out_dir)
    if out.resolve().is_relative_to(folder.resolve()):
        raise InputError(f"--out {str(out_dir)!r} is inside --data {str(root)!r}: the report's PNGs would be read as images "
                         "by the next run; put the report outside the data folder")
    model = load_model(model)
    data = ImageFolderData(folder, describe_model(model).transform)
    where = resolve_shard(shard)
    options = {k: v for k, v in report_options.items() if k != "names"}
    for key in ("sign", "cmap"):  # listed in the index even when left at render_report's default
        options.setdefault(key, inspect.signature(render_report).parameters[key].default)
    if methods is None:  # render_report's defaults, named so the index lists them
        from ..engine import available_methods

        methods = available_methods() if options.get("interactive") else ("gradient", "deconvnet", "guided_backprop")
    settings = {
        "folder": str(folder), "model": type(model).__name__, "methods": ", ".join(methods),
        "target": "predicted class" if target is None else str(target),
        **{k: str(v) for k, v in sorted(options.items()) if k not in ("progress", "settings")},
        # the method settings given, in words as on each page ("LRP settings": "composite alpha_beta, ...")
        **(settings_text(MethodSettings.of(options["settings"]), methods) if "settings" in options else {}),
    }
    mine = [i for i in range(len(data)) if where.owns(i)]
    entries, failed = [], []
    for done, i in enumerate(mine, 1):
        rel = data.describe(i)
        try:  # an unreadable file is listed in the index, and the batch goes on (the command exits non-zero)
            to_pil(data.root / rel)
        except SaliencyError as err:
            failed.append({"index": i, "path": rel, "error": one_line(str(err))})
            if progress is not None:
                progress(f"rank {where.rank}/{where.world}: {done}/{len(mine)} {rel}: unreadable, skipped ({one_line(str(err))})")
            continue
        page, grid = f"pages/{rel}.html", f"pages/{rel}.png"
        (out / page).parent.mkdir(parents=True, exist_ok=True)
        rep = render_report([data.root / rel], model, methods, target, names=[rel], title=f"saliency-widget: {rel}", **options)
        rep.save(out / page)
        rep.save(out / grid)
        entries.append({"index": i, "path": rel, "page": page, "grid": grid})
        if progress is not None:
            progress(f"rank {where.rank}/{where.world}: {done}/{len(mine)} {rel}")
    write_part(out, {
        "version": PART_VERSION, "rank": where.rank, "world": where.world, "n": len(data), "identity": data.identity,
        "settings": settings, "images": entries, "failed": failed, "seconds": round(time.perf_counter() - start, 3),
    })
    if where.distributed:
        barrier(where)
    elif where.world > 1:
        return None  # an explicit share: the caller merges once every share is written
    return merge_parts(out, where.world) if where.rank == 0 else None


def run(args: argparse.Namespace, methods: Sequence[str] | None, target: int | str | None) -> int:
    """``saliency-widget render --data DIR``: check the options, render (sharded under torchrun), print on rank 0."""
    from ..viz.batch import read_parts, unreadable
    from .sharded import process_group

    if args.images:
        raise InputError(f"give either IMAGE arguments or --data DIR, not both (got {len(args.images)} image(s) and --data {args.data!r})")
    if args.out is not None and Path(args.out).suffix.lower() == ".png":
        raise InputError(f"with --data, --out is a folder (it gets index.html, pages/ and parts/), not {args.out!r}")
    out = _out_dir(args.out or "report")
    _folder(args.data)  # before the model loads
    with process_group() as where:
        model = read_model(args.model)
        opts: dict[str, Any] = {"sign": args.sign, "cmap": args.cmap}
        chosen = {k: v for k, v in method_settings(args).as_dict().items() if getattr(args, k, None) is not None}
        if chosen:  # only what was given: the index lists it
            opts["settings"] = chosen
        if args.faithfulness:
            opts["faithfulness"] = True
        if args.interactive:
            layers = [k.strip() for k in args.layers.split(",") if k.strip()] if args.layers else None
            opts.update(interactive=True, topk=args.topk, layers=layers)
        index = render_folder(args.data, out, model, methods, target, shard=where,
                              progress=lambda line: print(f"  {line}", file=sys.stderr), **opts)
        if index is not None:
            print(f"wrote {index} (one page per image under {out / 'pages'}) on {where.world} process(es)")
        failed = unreadable(read_parts(out, where.world))  # every rank: all parts are written by now
        if failed:
            names = ", ".join(repr(e["path"]) for e in failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
            raise InputError(f"{len(failed)} image(s) of --data {args.data!r} could not be read and have no maps: {names} "
                             f"(first: {failed[0]['error']}); the others were rendered; the list is in {str(out / 'index.html')!r}")
    return 0
