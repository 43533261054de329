"""Start a throw-away headless JupyterLab server for end-to-end tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .harness import free_port
from .servers import Server, isolated_env, serve, write_notebook

#: A running JupyterLab: base URL, notebook root folder and its log file.
LabServer = Server


# Run ``code`` in the open notebook's kernel (no cell): resolves with "Ename: value" of an error, else null.
EXECUTE = """async (code) => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const f = k.requestExecute({code});
  let error = null;
  f.onIOPub = (msg) => { if (msg.header.msg_type === 'error') error = msg.content.ename + ': ' + msg.content.evalue; };
  await f.done;
  return error;
}"""


@contextmanager
def jupyterlab(tmp: Path, timeout: float = 120.0) -> Iterator[LabServer]:
    """Run ``jupyter lab`` headless in ``tmp`` (token off, isolated config) and stop it after.

    Config isolation: ``JUPYTER_CONFIG_DIR`` points at a temp folder whose
    ``labconfig/page_config.json`` disables the announcements plugin; settings, workspaces
    and runtime files also live in ``tmp`` so nothing leaks into the user's ~/.jupyter.
    """
    root = tmp / "root"
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = tmp / "jupyterlab.log"
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
        f"--port={port}", "--ip=127.0.0.1", "--ServerApp.port_retries=0",
        "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True", "--LabServerApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    with serve(cmd, isolated_env(tmp), root, log, "/api/status", port, timeout) as lab:
        yield lab


def run_notebook_in_lab(page: Any, lab: LabServer, name: str, cells: list[str]) -> None:
    """Write ``cells`` as notebook ``name`` in the Lab root, open it in ``page``, wait for an idle kernel, run all."""
    write_notebook(lab.root / name, cells)
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
