"""``saliency-widget classroom``: the classroom notebooks as Voilà dashboards, for a teacher's laptop.

The notebooks (:mod:`saliency_widget.classroom.notebooks`) are written into a folder and Voilà
serves that folder: its start page lists them, each opens as a dashboard (outputs and widgets
only, no code), with a kernel per browser tab. Voilà is an optional dependency.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType

from ..errors import InputError, SaliencyError
from .notebooks import write_classroom_notebooks

__all__ = ["DEFAULT_PORT", "classroom_command", "require_voila", "serve_classroom"]

DEFAULT_PORT = 8866
"""Voilà's own default port."""

VOILA_MISSING = (
    "the classroom dashboards need Voilà, which is not installed; install it with `pip install voila` "
    "(or open example_notebooks/02_relu_rules.ipynb and 03_transposed_convolution.ipynb in Jupyter)"
)


def require_voila() -> None:
    """Raise :class:`SaliencyError` naming ``pip install voila`` when Voilà cannot be imported."""
    if importlib.util.find_spec("voila") is None:
        raise SaliencyError(VOILA_MISSING)


def _check_port(port: object) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InputError(f"--port must be an integer from 1 to 65535, got {port!r}")


def classroom_command(folder: Path, port: int = DEFAULT_PORT, open_browser: bool = True) -> list[str]:
    """The ``voila`` command line that serves ``folder`` on ``http://localhost:<port>/``.

    Voilà runs with this Python (``python -m voila``), so it finds the same saliency-widget and
    widget extensions; ``--no-browser`` is added when ``open_browser`` is false.
    """
    _check_port(port)
    cmd = [sys.executable, "-m", "voila", str(folder), f"--port={port}", "--Voila.ip=localhost"]
    return cmd + ([] if open_browser else ["--no-browser"])


def serve_classroom(port: int = DEFAULT_PORT, open_browser: bool = True, folder: Path | None = None) -> int:
    """Write the classroom notebooks into ``folder`` (default: a new temporary folder) and run Voilà on it.

    Blocks until Voilà exits (Ctrl-C or SIGTERM stop it, and the Voilà process with it); returns
    its exit status (0 after Ctrl-C).
    """
    require_voila()
    _check_port(port)  # before a temporary folder is made for nothing
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="saliency-classroom-"))
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--dir {str(folder)!r} is a file; give a folder for the classroom notebooks")
    cmd = classroom_command(folder, port, open_browser)
    paths = write_classroom_notebooks(folder)
    print(f"serving {', '.join(p.name for p in paths)} from {folder} on http://localhost:{port}/ (Ctrl-C stops)", flush=True)

    def _stop(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # runs the finally below, so Voilà never outlives us

    previous = signal.signal(signal.SIGTERM, _stop)
    proc = subprocess.Popen(cmd)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
