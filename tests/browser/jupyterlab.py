"""Start a throw-away headless JupyterLab server for end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .harness import free_port

# The announcements plugin would pop a "news" toast over the notebook and fetch the web.
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}


@dataclass
class LabServer:
    """A running JupyterLab: base URL, notebook root folder and its log file."""

    url: str
    root: Path
    log: Path


@contextmanager
def jupyterlab(tmp: Path, timeout: float = 120.0) -> Iterator[LabServer]:
    """Run ``jupyter lab`` headless in ``tmp`` (token off, isolated config) and stop it after.

    Config isolation: ``JUPYTER_CONFIG_DIR`` points at a temp folder whose
    ``labconfig/page_config.json`` disables the announcements plugin; settings, workspaces
    and runtime files also live in ``tmp`` so nothing leaks into the user's ~/.jupyter.
    """
    root, cfg = tmp / "root", tmp / "config"
    for d in (root, cfg / "labconfig", tmp / "settings", tmp / "workspaces", tmp / "runtime"):
        d.mkdir(parents=True, exist_ok=True)
    (cfg / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
    port = free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(cfg),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    log = tmp / "jupyterlab.log"
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
        f"--port={port}", "--ip=127.0.0.1", "--ServerApp.port_retries=0",
        "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True", "--LabServerApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=root)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"jupyter lab exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"jupyter lab did not start in {timeout}s:\n{log.read_text()[-3000:]}")
                time.sleep(0.25)
            yield LabServer(url=url, root=root, log=log)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_notebook_in_lab(page: Any, lab: LabServer, name: str, cells: list[str]) -> None:
    """Write ``cells`` as notebook ``name`` in the Lab root, open it in ``page``, wait for an idle kernel, run all."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, lab.root / name)
    page.goto(f"{lab.url}/lab/tree/{name}", wait_until="domcontentloaded")
    page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=90000)
    # the kernel must be connected and idle before the cells are run
    page.wait_for_function(
        """() => { const w = window.jupyterapp.shell.currentWidget;
                   const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
                   return k && k.status === 'idle'; }""",
        timeout=90000,
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
