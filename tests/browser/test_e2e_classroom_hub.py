"""Smoke test of the JupyterHub recipe (docs/classroom_jupyterhub_config.py) on this machine.

The documented config file itself runs, in its try-it-on-one-account mode
(``CLASSROOM_SPAWNER=simple``: SimpleLocalProcessSpawner, students are folders;
``CLASSROOM_AUTH=dummy``: DummyAuthenticator), with every port and file under the test's
``tmp`` folder. Two students log in through the Hub's form in their own browser contexts;
each lands on the dashboards list of their own server (the pre-spawn hook copied the
notebooks into ``~/classroom``) and reaches the transposed-convolution dashboard with its
kernel answering. A third context opens the teacher's shared dashboards, served by the
``saliency-widget classroom`` Hub service at ``/services/classroom/``. Needs ``jupyterhub``
(pip) and ``configurable-http-proxy`` (npm); skipped with that reason when either is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from benchmarks.classroom_load import READY, RELU, TRANSPOSED

from .harness import browser_page, chromium_path, free_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "docs" / "classroom_jupyterhub_config.py"
STUDENTS = ("alice", "bob")


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"jupyterhub exited {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout} s:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.mark.browser
@pytest.mark.slow
def test_jupyterhub_recipe_two_students_and_the_teacher_service(tmp_path: Path) -> None:
    chromium_path()
    pytest.importorskip("jupyterhub", reason="the JupyterHub smoke test needs `pip install jupyterhub`")
    pytest.importorskip("voila")
    if shutil.which("configurable-http-proxy") is None:
        pytest.skip("the JupyterHub smoke test needs configurable-http-proxy (`npm install -g configurable-http-proxy`)")
    hub_port, api_port, proxy_api_port, teacher_port = (free_port() for _ in range(4))
    state = tmp_path / "state"
    env = {
        **os.environ,
        "CLASSROOM_SPAWNER": "simple", "CLASSROOM_AUTH": "dummy", "CLASSROOM_HUB_STATE": str(state),
        "CLASSROOM_HUB_URL": f"http://127.0.0.1:{hub_port}", "CLASSROOM_HUB_API_URL": f"http://127.0.0.1:{api_port}",
        "CLASSROOM_PROXY_API_URL": f"http://127.0.0.1:{proxy_api_port}", "CLASSROOM_TEACHER_PORT": str(teacher_port),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    log = tmp_path / "jupyterhub.log"
    hub = f"http://127.0.0.1:{hub_port}"
    with log.open("wb") as fh:
        # its own session, so the Hub, the proxy, the students' servers and the service are stopped together
        proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)], cwd=tmp_path, env=env,
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_http(f"{hub}/hub/health", proc, log, timeout=120)
            with browser_page(viewport={"width": 1280, "height": 900}) as page:
                browser = page.context.browser
                for name in STUDENTS:
                    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
                    p = ctx.new_page()
                    p.goto(f"{hub}/hub/login")
                    p.locator("input[name=username]").fill(name)
                    p.locator("input[name=password]").fill("any")
                    p.locator("input[type=submit], button[type=submit]").first.click()
                    # the spawn ends on the server's default URL: the dashboards list of ~/classroom
                    p.wait_for_url(f"**/user/{name}/voila/tree**", timeout=240000)
                    p.get_by_text(RELU).wait_for(timeout=120000)
                    p.get_by_text(TRANSPOSED).wait_for()
                    p.goto(f"{hub}/user/{name}/voila/render/{TRANSPOSED}", wait_until="commit")  # the list opens it in a new tab
                    p.get_by_text(READY[TRANSPOSED]).wait_for(timeout=240000)
                    p.locator(".widget-dropdown select").first.select_option(label="TF valid")
                    p.get_by_text("5×5", exact=True).wait_for(timeout=60000)  # the student's kernel answers
                    assert f"/user/{name}/voila/render/{TRANSPOSED}" in p.url
                    assert (state / "home" / name / "classroom" / RELU).is_file()
                    ctx.close()
                # the teacher's shared dashboards, through the Hub's proxy
                page.goto(f"{hub}/services/classroom/voila/render/{RELU}", wait_until="commit")
                page.get_by_text(READY[RELU]).wait_for(timeout=240000)
                box = page.locator("textarea").first
                box.fill("3 -1 0")
                box.press("Tab")
                page.get_by_text("they must have the same shape").wait_for(timeout=60000)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # the Hub stops its servers and service on SIGTERM
                proc.wait(timeout=60)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever of this session is left
            except ProcessLookupError:
                pass
            proc.wait()
