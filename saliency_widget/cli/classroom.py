"""``saliency-widget classroom``: serve the classroom notebooks as Voilà dashboards."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``classroom`` command to ``sub`` (the subparsers of ``saliency-widget``); return its parser."""
    c: argparse.ArgumentParser = sub.add_parser(
        "classroom", help="serve the classroom notebooks as Voilà dashboards (needs `pip install voila`)",
        description="Serve the classroom notebooks (02 the three ReLU rules, 03 transposed convolution) as Voilà "
        "dashboards on this computer: widgets and outputs only, no code. Needs `pip install voila`.",
    )
    c.add_argument("--port", type=int, default=8866, help="port of http://localhost:PORT/ (default: %(default)s)")
    c.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    c.add_argument("--dir", default=None, help="folder to write the notebooks into (default: a new temporary folder)")
    c.add_argument("--cull-idle", type=int, default=300, metavar="SECONDS", help="shut down a kernel idle this long with no tab connected (default: %(default)s)")
    c.add_argument("--pool", type=int, default=1, metavar="N", help="pre-started kernels per notebook, 0 for none (default: %(default)s)")
    c.add_argument("--base-url", default=None, metavar="PATH", help="serve under this path, e.g. /services/classroom/ behind JupyterHub (default: $JUPYTERHUB_SERVICE_PREFIX or /)")
    return c


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; the exit status of the server."""
    from ..classroom.serve import serve_classroom

    return serve_classroom(args.port, not args.no_browser, Path(args.dir).expanduser() if args.dir else None, args.cull_idle, args.pool, args.base_url)
