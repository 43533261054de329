"""Command line: render saliency maps without Jupyter, for batch jobs and report pipelines.

    saliency-widget render IMAGE... [--model shapes|torchvision:NAME] [--methods gradient,deconvnet,...]
                                    [--target CLASS] [--out report.html|grid.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import SaliencyError

EPILOG = """examples:
  saliency-widget render photo.jpg                       bundled model, three maps, report.html
  saliency-widget render a.png b.png --out grid.png      one PNG grid, rows = images
  saliency-widget render cat.jpg --model torchvision:resnet50 --methods gradient,gradcam --target 281
  saliency-widget render --list-samples                  names of the bundled sample images
  saliency-widget render sample:shapes_star              a bundled sample by name

Methods: gradient, deconvnet, guided_backprop, gradcam, guided_gradcam, smoothgrad,
integrated_gradients, input_x_gradient, occlusion. --target takes a class index or name;
the default is each image's predicted class. torchvision weights must already be in the
torch hub cache (no downloads happen here); the bundled 'shapes' model always works offline.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="saliency-widget", description="See what a CNN looks at: saliency maps as an offline HTML report or a PNG grid.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="render maps of images to report.html or grid.png", description="Render saliency maps of IMAGE(s) with one or more methods.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("images", nargs="*", metavar="IMAGE", help="image files (PNG/JPEG) or sample:NAME for a bundled sample")
    r.add_argument("--model", default="shapes", help="'shapes' (bundled, default) or 'torchvision:NAME' (e.g. torchvision:vgg16)")
    r.add_argument("--methods", default="gradient,deconvnet,guided_backprop", help="comma-separated method names (default: %(default)s)")
    r.add_argument("--target", default=None, help="class index or class name (default: predicted class)")
    r.add_argument("--out", default="report.html", help="output file: .html (self-contained report) or .png (grid) (default: %(default)s)")
    r.add_argument("--sign", default="absolute", choices=["absolute", "positive", "negative", "signed"])
    r.add_argument("--cmap", default="magma")
    r.add_argument("--list-samples", action="store_true", help="print the bundled sample names and exit")
    return p


def _load_model(spec: str):  # type: ignore[no-untyped-def]
    if spec == "shapes":
        from .models import shapes_cnn

        return shapes_cnn()
    if spec.startswith("torchvision:"):
        from .models import torchvision_model

        return torchvision_model(spec.split(":", 1)[1], download=False)
    raise SaliencyError(f"--model {spec!r} is not valid; use 'shapes' or 'torchvision:NAME' (e.g. torchvision:resnet50)")


def _image(arg: str):  # type: ignore[no-untyped-def]
    if arg.startswith("sample:"):
        from .data import load_sample

        return load_sample(arg.split(":", 1)[1])
    p = Path(arg)
    if not p.is_file():
        raise SaliencyError(f"image file not found: {arg!r} (use sample:NAME for a bundled sample; --list-samples lists them)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``saliency-widget``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.list_samples:
            from .data import sample_images

            print("\n".join(sorted(sample_images())))
            return 0
        if not args.images:
            raise SaliencyError("no IMAGE given; pass image files or sample:NAME (see --help)")
        out = Path(args.out)
        if out.suffix.lower() not in (".html", ".htm", ".png"):
            raise SaliencyError(f"--out {args.out!r} must end in .html or .png")
        if not out.parent.exists():
            raise SaliencyError(f"the folder of --out {args.out!r} does not exist")
        from .viz.report import render_report

        target: int | str | None = args.target
        if isinstance(target, str) and target.lstrip("-").isdigit():
            target = int(target)
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        names = [Path(a).name if not a.startswith("sample:") else a.split(":", 1)[1] for a in args.images]
        rep = render_report([_image(a) for a in args.images], _load_model(args.model), methods, target, sign=args.sign, cmap=args.cmap, names=names)
        rep.save(out)
        print(f"wrote {out} ({len(args.images)} image(s) x {args.methods})")
        return 0
    except SaliencyError as err:
        print(f"saliency-widget: error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # e.g. an unknown colormap from the renderer
        print(f"saliency-widget: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
