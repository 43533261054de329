"""Throw-away Notebook 7 and Voilà servers for the end-to-end tests (JupyterLab's is in jupyterlab.py).

Both run headless on a free localhost port with no token, with their config, runtime and
settings folders inside the test's ``tmp`` folder so nothing leaks into the user's ~/.jupyter,
and stop (terminate, then kill) on every exit path.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .harness import free_port, in_ci
from .servers import Server, isolated_env, serve, write_notebook

__all__ = ["Server", "isolated_env", "notebook7", "require_module", "run_notebook_in_notebook7", "serve", "voila", "write_notebook"]


def require_module(name: str, minversion: str | None = None) -> None:
    """Skip without ``name`` (>= ``minversion``) locally; fail in CI, where the test extras install it."""
    try:
        pytest.importorskip(name, minversion=minversion)
    except pytest.skip.Exception:
        if in_ci():
            pytest.fail(f"{name}{' >= ' + minversion if minversion else ''} is not installed (CI is set; it is in the test extras)")
        raise


@contextmanager
def notebook7(tmp: Path, timeout: float = 120.0) -> Iterator[Server]:
    """Run Notebook 7 (``jupyter notebook``) headless in ``tmp/root``, ``window.jupyterapp`` exposed."""
    root = tmp / "root"
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [
        sys.executable, "-m", "jupyter", "notebook", "--no-browser", "--allow-root",
        f"--port={port}", "--ip=127.0.0.1", "--ServerApp.port_retries=0",
        "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
        "--expose-app-in-browser",
    ]
    with serve(cmd, isolated_env(tmp), root, tmp / "notebook7.log", "/api/status", port, timeout) as srv:
        yield srv


def voila_command(target: Path | str, port: int, *, no_browser: bool = True) -> list[str]:
    """The ``voila`` invocation the tests use: one notebook or a folder, localhost, no token."""
    cmd = [sys.executable, "-m", "voila", str(target), f"--port={port}", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0", "--show_tracebacks=True"]
    return cmd + (["--no-browser"] if no_browser else [])


@contextmanager
def voila(tmp: Path, notebook: Path, timeout: float = 120.0) -> Iterator[Server]:
    """Serve ``notebook`` (inside ``tmp``) as a Voilà dashboard; the page is the server's URL itself."""
    port = free_port()
    with serve(voila_command(notebook.name, port), isolated_env(tmp), notebook.parent, tmp / "voila.log", "/voila/files/ready-probe", port, timeout) as srv:
        yield srv


def run_notebook_in_notebook7(page: Any, srv: Server, name: str, cells: list[str]) -> None:
    """Write ``cells`` as notebook ``name``, open it in Notebook 7, wait for an idle kernel, run all."""
    write_notebook(srv.root / name, cells)
    page.goto(f"{srv.url}/notebooks/{name}", wait_until="domcontentloaded")
    page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=90000)
    page.wait_for_function(
        """() => { const w = window.jupyterapp.shell.currentWidget;
                   const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
                   return k && k.status === 'idle'; }""",
        timeout=90000,
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
