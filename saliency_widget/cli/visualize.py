"""``saliency-widget visualize``: what a layer's filters (or the classes) want, as PNGs and a page.

    saliency-widget visualize --layer features.relu5 [--channels 0-15] --out DIR [--model SPEC]
    saliency-widget visualize --classes [--classes-list circle,star] --out DIR

Every error is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import InputError
from .toolbox import MODEL_HELP, read_model, split_list

__all__ = ["add_optimisation_arguments", "add_parser", "parse_channels", "run"]

EXAMPLES = """examples:
  saliency-widget visualize --layer features.relu5 --out relu5          all 64 filters of the bundled model
  saliency-widget visualize --layer features.relu3 --channels 0-7,12 --steps 128 --out relu3
  saliency-widget visualize --classes --out classes                      one class model per class
  saliency-widget visualize --model torchvision:vgg16 --layer features.29 --channels 0-15 --size 224 --out vgg
"""


def parse_channels(spec: str | None, count: int) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]``; None -> every channel ``0..count-1``.

    Raises
    ------
    InputError
        A malformed item, or a channel outside ``0..count-1``.
    """
    if spec is None:
        return list(range(count))
    out: list[int] = []
    for item in split_list(spec, "--channels", "channel"):
        lo, sep, hi = item.partition("-")
        try:
            a, b = (int(lo), int(hi)) if sep else (int(item), int(item))
        except ValueError:
            raise InputError(f"--channels item {item!r} is not an int or a range like 0-15") from None
        if not 0 <= a <= b < count:
            raise InputError(f"--channels {item!r} is out of range: the layer has {count} channels, valid channels are 0..{count - 1}")
        out.extend(range(a, b + 1))
    return list(dict.fromkeys(out))


def add_optimisation_arguments(p: argparse.ArgumentParser, steps: int) -> None:
    """The feature visualization's optimisation options (``visualize``, ``atlas``): steps, image side, parametrisation, transforms.

    Parameters
    ----------
    p
        The command's parser.
    steps
        The default of ``--steps``.
    """
    p.add_argument("--steps", type=int, default=steps, help="feature visualization: optimisation steps (default: %(default)s)")
    p.add_argument("--size", type=int, default=None, help="feature visualization: image side (default: the model's input side)")
    p.add_argument("--param", default="fourier", help="feature visualization: parametrisation, pixel, fourier or maco (default: %(default)s)")
    p.add_argument("--no-transforms", action="store_true", help="feature visualization without jitter/scale/rotation robustness")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``visualize`` command to ``sub``; return its parser."""
    p: argparse.ArgumentParser = sub.add_parser(
        "visualize", help="feature visualization: images that excite a layer's filters, or class models",
        description="Optimise one image per filter of --layer (or per class with --classes), all in one batch, "
        "and write PNGs and index.html into --out.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default="shapes", help=MODEL_HELP)
    p.add_argument("--layer", default=None, help="layer key, e.g. features.relu5 or layer1.0.relu#1")
    p.add_argument("--channels", default=None, help="channels, e.g. 0-15,20 (default: all)")
    p.add_argument("--classes", action="store_true", help="class models (class_logit - 0.05 * l2) instead of filters")
    p.add_argument("--out", required=True, help="output folder (PNGs + index.html)")
    add_optimisation_arguments(p, steps=256)  # --steps, --size, --param, --no-transforms
    p.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=None, help="images per optimisation batch (default: all)")
    p.add_argument("--device", default=None, help="device, e.g. cuda (default: the model's)")
    return p


def run(args: argparse.Namespace) -> int:
    """Visualize as ``args`` say; print where the page is."""
    import torch

    from ..engine.api import layers
    from ..featviz import objectives as obj
    from ..viz.featviz_page import write_visualizations
    from ..viz.modelio import describe_model
    from ..viz.visualize import model_preprocess, visualize

    if (args.layer is None) == (not args.classes):
        raise InputError("give --layer LAYER (filters) or --classes (class models), not both and not neither")
    model = read_model(args.model)
    if args.device:
        model = model.to(args.device)
    io = describe_model(model)
    pre, side = model_preprocess(io)
    size = args.size or side
    if args.classes:
        with torch.no_grad():
            dev = next(model.parameters()).device
            k = int(model.eval()(pre(torch.full((1, 3, size, size), 0.5, device=dev))).shape[-1])
        names = io.labels or [str(i) for i in range(k)]
        objectives = [obj.class_logit(i) - 0.05 * obj.l2() for i in range(k)]
        stems = [f"class-{i:03d}-{n}".replace("/", "_").replace(" ", "_") for i, n in enumerate(names)]
        title = f"{args.model}: class models"
    else:
        infos = {i.key: i for i in layers(model, pre(torch.full((1, 3, size, size), 0.5, device=next(model.parameters()).device)))}
        if args.layer not in infos:
            from ..errors import LayerError, choices

            raise LayerError(f"--layer {args.layer!r} is not a layer of the model; valid layers are {choices(list(infos))}")
        channels = parse_channels(args.channels, infos[args.layer].channels)
        objectives = [obj.channel(args.layer, c) for c in channels]
        stems = [f"{args.layer}-c{c:04d}" for c in channels]
        title = f"{args.model}: {args.layer}"
    vis = visualize(model, objectives, steps=args.steps, size=size, param=args.param, transforms=None if args.no_transforms else "standard",
                    seed=args.seed, batch_size=args.batch_size)  # fmt: skip
    page = write_visualizations(vis, args.out, title, io.labels, stems)
    print(f"wrote {page} and {len(vis)} PNG(s)")
    return 0
