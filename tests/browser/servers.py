"""Throw-away Jupyter servers for the end-to-end tests: isolated settings, start, wait, stop.

Every server runs headless on a free localhost port with no token, with its config, runtime
and settings folders inside the test's ``tmp`` folder so nothing leaks into the user's
~/.jupyter, and stops (terminate, then kill) on every exit path.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# The announcements plugin would pop a "news" toast over the notebook and fetch the web.
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}


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


def write_notebook(path: Path, cells: list[str]) -> Path:
    """Write ``cells`` as a code-only notebook with the python3 kernel; return ``path``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path
