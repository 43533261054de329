"""Command line ``saliency-widget``: maps, batch reports, mining and the classroom without Jupyter.

    saliency-widget render IMAGE... [options]                 (saliency_widget.cli.render)
    saliency-widget render --data DIR --out OUT_DIR [options] (saliency_widget.cli.batch)
    saliency-widget mine --data DIR|sample:shapes --layers L1,L2 --out INDEX_DIR   (saliency_widget.cli.mine)
    saliency-widget visualize --layer KEY [--channels 0-15] --out DIR [--model SPEC]  (saliency_widget.cli.visualize)
    saliency-widget atlas --data DIR|sample:shapes --layers L1,L2 --out SITE [--channels 0-15]  (saliency_widget.cli.atlas)
    saliency-widget classroom [--port N] [--no-browser] [--dir DIR] [--cull-idle S] [--pool N] [--base-url PATH]  (saliency_widget.cli.classroom)

Floor: the top one (with ``widget`` and ``classroom``); it may import every lower floor and
nothing imports it. Each command is a module with ``add_parser``/``add_arguments`` and ``run``;
:mod:`saliency_widget.cli.toolbox` holds what they share: the parser whose usage errors are
exceptions, the one-line failure and the ``--model`` reader. Every error is one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse

from . import atlas, classroom, mine, render, visualize
from .batch import render_folder
from .render import EPILOG
from .toolbox import Parser, run_reporting

__all__ = ["EPILOG", "build_parser", "main", "render_folder"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``saliency-widget`` with its five commands."""
    p = Parser(prog="saliency-widget", description="See what a CNN looks at, offline: reports of saliency maps (render), classroom "
               "dashboards (classroom), each filter's top-k over a dataset (mine), feature visualization (visualize) and a "
               "browsable site of every filter (atlas). `saliency-widget COMMAND --help` shows a command's options and examples.")
    sub = p.add_subparsers(dest="command", required=True)
    render.add_parser(sub)
    classroom.add_parser(sub)
    m = sub.add_parser("mine", help="mine each channel's top-k over a dataset into an index",
                       description="Mine each channel's top-k activations over a dataset into an index (see docs/mining.md).",
                       epilog=mine.EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    mine.add_arguments(m)
    visualize.add_parser(sub)
    atlas.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``saliency-widget``; returns the exit status (0 ok, 2 any error)."""
    commands = {"render": render.run, "classroom": classroom.run, "mine": mine.run, "visualize": visualize.run, "atlas": atlas.run}

    def body() -> int:
        args = build_parser().parse_args(argv)
        return commands[args.command](args)

    return run_reporting(body)
