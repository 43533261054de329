"""Throw-away Notebook 7 and Voilà servers for the end-to-end tests (JupyterLab's is in jupyterlab.py).

Both run headless on a free localhost port with no token, with their config, runtime and
settings folders inside the test's ``tmp`` folder so nothing leaks into the user's ~/.jupyter,
and stop (terminate, then kill) on every exit path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .harness import free_port, in_ci
from .jupyterlab import PAGE_CONFIG


def require_module(name: str, minversion: str | None = None) -> None:
    """Skip without ``name`` (>= ``minversion``) locally; fail in CI, where the test extras install it."""
    try:
        pytest.importorskip(name, minversion=minversion)
    except pytest.skip.Exception:
        if in_ci():
            pytest.fail(f"{name}{' >= ' + minversion if minversion else ''} is not installed (CI is set; it is in the test extras)")
        raise


@dataclass
class Server:
    """A running front-end server: base URL, the folder it serves and its log file."""

    url: str
    root: Path
    log: Path


def isolated_env(tmp: Path) -> dict[str, str]:
    """Environment whose Jupyter config/runtime/settings live under ``tmp`` (announcements off)."""
    cfg = tmp / "config"
    for d in (cfg / "labconfig", tmp / "settings", tmp / "workspaces", tmp / "runtime"):
        d.mkdir(parents=True, exist_ok=True)
    (cfg / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
    return {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(cfg),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }


@contextmanager
def serve(cmd: list[str], env: dict[str, str], root: Path, log: Path, ready_path: str, port: int, timeout: float = 120.0) -> Iterator[Server]:
    """Start ``cmd`` in ``root``, wait until ``ready_path`` gets an HTTP answer, yield, then stop it."""
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=root)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{cmd[2:4]} exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(url + ready_path, timeout=2) as r:
                        if r.status == 200:
                            break
                except urllib.error.HTTPError:
                    break  # the server answers (a 404 is an answer)
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{cmd[2:4]} did not start in {timeout}s:\n{log.read_text()[-3000:]}")
                time.sleep(0.25)
            yield Server(url=url, root=root, log=log)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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


def write_notebook(path: Path, cells: list[str]) -> Path:
    """Write ``cells`` as a code-only notebook with the python3 kernel; return ``path``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


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
