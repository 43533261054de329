"""End to end: classroom dashboards leave no kernel behind (issue 32).

`saliency-widget classroom` (pool of 1 pre-started kernel per notebook, idle kernels culled
after 10 s) is opened in headless Chromium. One tab opens both dashboards, uses them and
reloads, three times over, then leaves: each page's shutdown request must be accepted (plain
Voilà refuses it: ``'_xsrf' argument missing from POST``), so only the pool is left. Then a
tab is abandoned without its unload handler running (a crashed or killed browser): the culler
must end that kernel within the idle timeout. Kernels are counted as the ``ipykernel``
processes below the Voilà process listening on the port.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
import pytest

from benchmarks.classroom_load import READY, RELU, TRANSPOSED, kernel_processes

from .frontends import isolated_env, require_module, serve
from .harness import browser_page, chromium_path, free_port

POOL = 1  # per notebook
CULL_IDLE = 10  # seconds; the culler looks every 5 s


def _listener_pid(port: int) -> int:
    """Pid of the process listening on ``port`` (Voilà, below the classroom command)."""
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            return int(c.pid)
    raise AssertionError(f"nothing listens on port {port}")


def _wait_for_kernels(pid: int, want: int, timeout: float) -> int:
    """Poll until at most ``want`` kernels run below ``pid``; return the last count."""
    deadline = time.monotonic() + timeout
    n = len(kernel_processes(pid))
    while n > want and time.monotonic() < deadline:
        time.sleep(0.5)
        n = len(kernel_processes(pid))
    return n


@pytest.mark.browser
@pytest.mark.slow
def test_dashboards_opened_and_closed_leave_only_the_pool(tmp_path: Path) -> None:
    chromium_path()
    require_module("voila")
    port = free_port()
    cmd = [sys.executable, "-m", "saliency_widget.cli", "classroom", "--no-browser", f"--port={port}", f"--dir={tmp_path / 'class'}",
           f"--pool={POOL}", f"--cull-idle={CULL_IDLE}"]
    log = tmp_path / "classroom.log"
    with serve(cmd, isolated_env(tmp_path), tmp_path, log, "/voila/files/ready-probe", port, timeout=180) as srv:
        voila = _listener_pid(port)
        pool = 2 * POOL
        # the teacher's steady state: the pool is filled
        deadline = time.monotonic() + 180
        while len(kernel_processes(voila)) < pool and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(kernel_processes(voila)) == pool

        with browser_page(viewport={"width": 1280, "height": 900}) as page:
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            peak = 0
            for _ in range(3):
                page.goto(f"{srv.url}/voila/render/{TRANSPOSED}", wait_until="commit")
                page.get_by_text(READY[TRANSPOSED]).wait_for(timeout=180000)
                page.locator(".widget-dropdown select").first.select_option(label="TF valid")
                page.get_by_text("5×5", exact=True).wait_for(timeout=60000)  # the kernel answers
                peak = max(peak, len(kernel_processes(voila)))
                page.goto(f"{srv.url}/voila/render/{RELU}", wait_until="commit")
                page.get_by_text(READY[RELU]).wait_for(timeout=180000)
                page.reload(wait_until="commit")
                page.get_by_text(READY[RELU]).wait_for(timeout=180000)
            page.goto("about:blank")  # leave: the unload handler sends the shutdown request
            assert not errors, errors
            assert peak > pool  # a visit holds a kernel of its own while it lasts
            # 9 dashboard visits ended by navigation: each kernel shut down at once (well before any culling)
            left = _wait_for_kernels(voila, pool, timeout=CULL_IDLE - 2)
            assert left == pool, f"{left} kernels left after 9 visits, pool is {pool}"

            # an abandoned tab (no unload handler runs): the culler ends its kernel
            page.goto(f"{srv.url}/voila/render/{TRANSPOSED}", wait_until="commit")
            page.get_by_text(READY[TRANSPOSED]).wait_for(timeout=180000)
            # it took a pooled kernel; the pool refills (1 s later, then a kernel start) beside it
            deadline = time.monotonic() + 120
            while len(kernel_processes(voila)) <= pool and time.monotonic() < deadline:
                time.sleep(0.5)
            assert len(kernel_processes(voila)) == pool + 1
            time.sleep(3)  # the refilled kernel has run the notebook: it is idle in the pool, not culled
            page.context.close()  # Playwright closes pages without running beforeunload
            closed = time.monotonic()
            left = _wait_for_kernels(voila, pool, timeout=CULL_IDLE + 5 + 30)
            assert left == pool, f"the abandoned dashboard's kernel was not culled ({left} kernels, pool {pool})"
            # it was the culler, not an unload request: the server says so (its idle clock runs from the
            # kernel's last message, which can be well before the tab closed, so no timing is asserted)
            culled = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
                      if "Culling 'idle' kernel" in line and "0 connections" in line]
            assert culled, f"no culler line in the server log {time.monotonic() - closed:.1f} s after the tab closed"
        text = log.read_text(errors="replace")
        assert "'_xsrf' argument missing from POST" not in text
        assert "Kernel shutdown" in text and "Culling '" in text
