"""``saliency-widget render``: saliency maps of images as an offline HTML report or a PNG grid.

    saliency-widget render IMAGE... [--model SPEC] [--weights none] [--methods gradient,deconvnet,...]
                                    [--target CLASS] [--out report.html|grid.png]
                                    [--interactive [--topk K] [--layers KEY,...] [--featviz [--featviz-steps N]]]
    saliency-widget render --data DIR --out OUT_DIR [options]      (see saliency_widget.cli.batch)

Method, sign and colormap choices come from the method registry and the renderer, so a newly
registered method is listed and accepted here without edits. Every error is one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..engine import available_methods, get_method
from ..errors import InputError, OutOfDomainWarning, choices, warn_once
from ..views.classes import check_methods
from ..views.options import COLORMAPS, SIGNS
from ..viz.interactive_featviz import FEATVIZ_COST
from .settings import add_setting_arguments, method_settings
from .toolbox import MODEL_HELP, read_model

__all__ = ["EPILOG", "WEIGHTS", "add_parser", "epilog", "looks_like_photo", "parse_methods", "parse_target", "run", "warn_photos",
           "with_weights"]

_OUT_SUFFIXES = (".html", ".htm", ".png")

WEIGHTS = ("none", "random")
"""The values of ``--weights``: both build the model with random weights."""


def with_weights(spec: str, weights: str | None) -> str:
    """The model spec ``spec`` with ``--weights`` applied (None: unchanged; none/random: random weights).

    Raises
    ------
    InputError
        ``--weights`` given with a spec that names its own weights, or a kind without a random form.
    """
    if weights is None:
        return spec
    text = spec.strip()
    kind, _, rest = text.partition(":")
    if kind == "shapes" and not rest:
        return "shapes:none"
    if kind in ("torchvision", "timm") and rest:
        name, _, own = rest.partition(":")
        if own and own.lower() not in WEIGHTS:
            raise InputError(f"--weights {weights} contradicts the weights {own!r} named in --model {spec!r}; drop one of them")
        return f"{kind}:{name}:none"
    raise InputError(f"--weights {weights} applies to the specs shapes, torchvision:NAME and timm:NAME, not to --model {spec!r}")


def looks_like_photo(arg: str) -> bool:
    """Whether an IMAGE argument is a photograph rather than a shapes scene.

    The bundled photos (``sample:cat``, ...) are; so is a JPEG file, or an image that is not
    square (the shapes scenes are square PNGs).
    """
    if arg.startswith("sample:"):
        return not arg.split(":", 1)[1].startswith("shapes")
    p = Path(arg)
    if p.suffix.lower() in (".jpg", ".jpeg"):
        return True
    try:
        from PIL import Image

        with Image.open(p) as img:
            return bool(img.width != img.height or img.format == "JPEG")
    except (OSError, ValueError):
        return False  # not readable here: the report says why


def warn_photos(spec: str, images: list[str]) -> None:
    """Warn once (:class:`~saliency_widget.errors.OutOfDomainWarning`) when photos go to the bundled shapes model."""
    if spec.strip() != "shapes":
        return
    photos = [a for a in images if looks_like_photo(a)]
    if photos:
        warn_once(
            ("photo-on-shapes",),
            f"{photos[0]}{f' (and {len(photos) - 1} more)' if len(photos) > 1 else ''} looks like a photo, but the bundled "
            "'shapes' model knows only six synthetic shapes, so its classes and maps mean little here; try "
            "--model torchvision:resnet18 (cached weights) or add --weights none (random weights, offline)",
            OutOfDomainWarning,
        )


def epilog() -> str:
    """The examples and the registered methods, for ``render --help``."""
    names = available_methods()
    width = max(len(n) for n in names) + 2 if names else 0
    methods = "\n".join(f"  {n:<{width}}{get_method(n).label}" for n in names)
    return f"""examples:
  saliency-widget render photo.jpg                       bundled model, three maps, report.html
  saliency-widget render a.png b.png --out grid.png      one PNG grid, rows = images
  saliency-widget render cat.jpg --model torchvision:resnet50 --methods gradient,gradcam --target 281
  saliency-widget render sample:cat --model torchvision:resnet18 --weights none
                                                         offline trial with random weights (nothing cached)
  saliency-widget render --list-samples                  names of the bundled sample images
  saliency-widget render sample:shapes_star              a bundled sample by name
  saliency-widget render sample:shapes_star --interactive --out star.html
                                                         a page to click offline: every method x top-5
                                                         classes, feature maps and projections
  saliency-widget render --data photos/ --out photos-report
                                                         every image under photos/ (recursive): one page
                                                         each and photos-report/index.html listing them
  torchrun --nproc_per_node=4 -m saliency_widget.cli render --data photos/ --out photos-report
                                                         the same on 4 processes (rank 0 writes the index)

methods (--methods, comma-separated):
{methods}

--target takes a class index or name; the default is each image's predicted class.
torchvision weights must already be in the torch hub cache (no downloads happen here);
--weights none (or a spec ending in :random) builds the model with random weights instead. The
bundled 'shapes' model always works offline, but knows only its six synthetic shapes: a photo
given to it gets a one-line warning (its classes mean nothing there).
"""


EPILOG = epilog()


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``render`` command to ``sub`` (the subparsers of ``saliency-widget``); return its parser."""
    r: argparse.ArgumentParser = sub.add_parser("render", help="render maps of images to report.html or grid.png", description="Render saliency maps of IMAGE(s) with one or more methods.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("images", nargs="*", metavar="IMAGE", help="image files (PNG/JPEG) or sample:NAME for a bundled sample")
    r.add_argument("--model", default="shapes", help=MODEL_HELP)
    r.add_argument("--weights", default=None, choices=WEIGHTS, help="none or random: random weights (offline trials; "
                   "same as a spec ending in :none); default: the spec's weights (pretrained)")
    r.add_argument("--methods", default=None, help="comma-separated method names, listed below (default: gradient,deconvnet,guided_backprop; with --interactive every method)")
    r.add_argument("--target", default=None, help="class index or class name (default: predicted class)")
    r.add_argument("--data", default=None, metavar="DIR", help="render every image under DIR (recursive; ImageFolder layout or flat) "
                   "instead of IMAGEs; --out is then a folder (default: report) that gets index.html and one page per image")
    r.add_argument("--out", default=None, help="output file: .html (self-contained report) or .png (grid) (default: report.html)")
    r.add_argument("--sign", default="absolute", choices=SIGNS, help="which part of the map to show (default: %(default)s)")
    r.add_argument("--cmap", default="magma", choices=COLORMAPS, help="colormap (default: %(default)s)")
    r.add_argument("--interactive", action="store_true", help="an HTML page a reader can click offline (methods, classes, filters, "
                   "activations, display options); --methods defaults to every registered method")
    r.add_argument("--topk", type=int, default=5, help="--interactive: classes per image with maps (default: %(default)s)")
    r.add_argument("--layers", default=None, help="--interactive: comma-separated layer keys with feature maps (default: three spread over the depth)")
    r.add_argument("--featviz", action="store_true", help="--interactive: add each exported filter's feature visualization "
                   "('what excites filter c', beside its projection): one batched optimisation per layer, " + FEATVIZ_COST)
    r.add_argument("--featviz-steps", type=int, default=32, help="--featviz: optimisation steps (default: %(default)s; cost grows linearly)")
    r.add_argument("--faithfulness", action="store_true", help="add each image's deletion/insertion scoreboard and curves (HTML only)")
    r.add_argument("--list-samples", action="store_true", help="print the bundled sample names and exit")
    add_setting_arguments(r)
    return r


def parse_methods(spec: str) -> list[str]:
    """Parse ``--methods`` into registered method names, in the order given."""
    known = available_methods()
    names = [m.strip() for m in spec.split(",") if m.strip()]
    if not names:
        raise InputError(f"--methods {spec!r} names no method; give a comma-separated list of {choices(known)}")
    return check_methods(names)


def _output(arg: str) -> Path:
    """Check ``--out`` before anything is computed: a writable-looking .html/.png file path."""
    out = Path(arg).expanduser()
    if out.is_dir():
        raise InputError(
            f"--out {arg!r} is an existing directory; give a file path ending in .html or .png, "
            f"e.g. {str(out / 'report.html')!r}"
        )
    if out.suffix.lower() not in _OUT_SUFFIXES:
        raise InputError(f"--out {arg!r} must end in .html or .png")
    if not out.parent.exists():
        raise InputError(f"the folder of --out {arg!r} does not exist")
    if not out.parent.is_dir():
        raise InputError(f"the folder of --out {arg!r} ({str(out.parent)!r}) is a file, not a directory")
    return out


def _image(arg: str) -> Any:
    if arg.startswith("sample:"):
        from ..data import load_sample

        return load_sample(arg.split(":", 1)[1])
    p = Path(arg)
    if p.is_dir():
        raise InputError(f"image path {arg!r} is a directory; pass the path of an image file inside it")
    if not p.is_file():
        raise InputError(f"image file not found: {arg!r} (use sample:NAME for a bundled sample; --list-samples lists them)")
    return p


def parse_target(arg: str | None) -> int | str | None:
    """``--target``: an integer literal is a class index, anything else a class name."""
    if arg is not None and arg.strip().lstrip("-").isdigit():
        return int(arg)
    return arg


def run(args: argparse.Namespace) -> int:
    """``saliency-widget render``: check every option, load the model, write the report or grid."""
    if args.list_samples:
        from ..data import sample_images

        print("\n".join(sorted(sample_images())))
        return 0
    settings = method_settings(args)  # checked before anything loads
    if args.featviz and not args.interactive:
        raise InputError("--featviz adds feature visualizations to an interactive page; add --interactive")
    if args.featviz and args.featviz_steps < 1:
        raise InputError(f"--featviz-steps must be at least 1, got {args.featviz_steps}")
    if args.featviz and args.data is not None:
        raise InputError("--featviz makes one interactive page (IMAGE... --interactive), not one per image of --data; leave out --data or --featviz")
    if args.data is not None:
        from .batch import run as run_folder

        default = "gradient,deconvnet,guided_backprop" if not args.interactive else ",".join(available_methods())
        return run_folder(args, parse_methods(args.methods or default), parse_target(args.target))
    if not args.images:
        raise InputError("no IMAGE given; pass image files, sample:NAME or --data DIR (see --help)")
    # Everything the user typed is checked before the model loads or anything is computed.
    out = _output(args.out or "report.html")
    if args.interactive and out.suffix.lower() == ".png":
        raise InputError(f"--interactive writes an HTML page; give --out a name ending in .html, not {args.out!r}")
    if args.topk < 1:
        raise InputError(f"--topk must be at least 1, got {args.topk}")
    default = ",".join(available_methods()) if args.interactive else "gradient,deconvnet,guided_backprop"
    spec = args.methods if args.methods is not None else default
    methods = parse_methods(spec)
    target = parse_target(args.target)
    images = [_image(a) for a in args.images]
    names = [Path(a).name if not a.startswith("sample:") else a.split(":", 1)[1] for a in args.images]
    model = read_model(with_weights(args.model, args.weights))
    warn_photos(with_weights(args.model, args.weights), args.images)

    from ..viz.images import describe_model, resolve_target
    from ..viz.report import render_report

    labels = describe_model(model).labels
    if labels is not None:  # else the class count is known only after the first forward pass
        resolve_target(target, labels, len(labels))
    if args.interactive:
        layers = [k.strip() for k in args.layers.split(",") if k.strip()] if args.layers else None
        rep = render_report(images, model, methods, target, sign=args.sign, cmap=args.cmap, names=names, interactive=True,
                            topk=args.topk, layers=layers, progress=lambda line: print(f"  {line}", file=sys.stderr), faithfulness=args.faithfulness,
                            settings=settings, featviz={"steps": args.featviz_steps} if args.featviz else False)
    else:
        rep = render_report(images, model, methods, target, sign=args.sign, cmap=args.cmap, names=names, faithfulness=args.faithfulness,
                            settings=settings)
    rep.save(out)
    print(f"wrote {out} ({len(args.images)} image(s) x {','.join(methods)})")
    if rep.size is not None:
        print(f"size: {rep.size.summary()}")
    return 0
