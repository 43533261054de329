"""``saliency-widget classroom``: the classroom notebooks as Voilà dashboards, for a teacher's laptop.

The notebooks (:mod:`saliency_widget.classroom.notebooks`) are written into a folder and Voilà
serves that folder: its start page lists them, each opens as a dashboard (outputs and widgets
only, no code), with a kernel per browser tab. Voilà is an optional dependency.

A class of thirty opens and reloads dashboards for an hour, so kernels must not outlive their
tab: Voilà runs as :mod:`saliency_widget.classroom.voila_app` (its page's shutdown request is
accepted), idle kernels whose tab is gone are culled after ``cull_idle`` seconds, and each
kernel runs single-threaded on the CPU (see :data:`KERNEL_ENV`).
"""

from __future__ import annotations

import errno
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from ..errors import InputError, SaliencyError
from .notebooks import write_classroom_notebooks

__all__ = [
    "DEFAULT_CULL_IDLE",
    "DEFAULT_POOL",
    "DEFAULT_PORT",
    "KERNEL_ENV",
    "classroom_command",
    "cull_interval",
    "default_base_url",
    "port_in_use",
    "require_voila",
    "serve_classroom",
]

DEFAULT_PORT = 8866
"""Voilà's own default port."""

DEFAULT_CULL_IDLE = 300
"""Seconds a kernel may sit idle with no tab connected before it is shut down."""

DEFAULT_POOL = 1
"""Pre-started kernels per notebook (Voilà's preheating): the first visitors get a ready dashboard; 0 turns it off."""

KERNEL_ENV = {
    "OMP_NUM_THREADS": "1",  # 30 kernels on a few cores: one compute thread each, no thread arenas
    "MKL_NUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "2",
    "CUDA_VISIBLE_DEVICES": "",  # the classroom nets are tiny; a CUDA context costs ~0.5 GB per kernel
}
"""Environment defaults for Voilà and its kernels (a value the teacher has set wins)."""

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


def _check_count(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"{name} must be an integer >= {low}, got {value!r}")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server already listens on ``host:port`` (binding it fails with ``EADDRINUSE``).

    ``SO_REUSEADDR`` is set as Tornado sets it, so a port left in ``TIME_WAIT`` by a server that
    just stopped counts as free, as it is for Voilà.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as err:
            return err.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def _check_base_url(base_url: object) -> str:
    if not isinstance(base_url, str) or not base_url.startswith("/") or any(ch in base_url for ch in "?#\\ \n"):
        raise InputError(f"--base-url must be a URL path starting with '/', e.g. '/services/classroom/', got {base_url!r}")
    return base_url if base_url.endswith("/") else base_url + "/"


def default_base_url() -> str:
    """``/``, or the prefix JupyterHub gives a service it starts (``JUPYTERHUB_SERVICE_PREFIX``)."""
    return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/") or "/"


def cull_interval(cull_idle: int) -> int:
    """How often (seconds) the culler looks for idle kernels: a quarter of the timeout, 5 to 60 s."""
    return max(5, min(60, cull_idle // 4))


VOILA_APP = Path(__file__).with_name("voila_app.py")
# Run by path, not ``-m saliency_widget...``: importing the package would load torch (~0.5 GB) into Voilà.
LAUNCH = "import runpy, sys; runpy.run_path(sys.argv.pop(1), run_name='__main__')"


def classroom_command(
    folder: Path,
    port: int = DEFAULT_PORT,
    open_browser: bool = True,
    cull_idle: int = DEFAULT_CULL_IDLE,
    pool: int = DEFAULT_POOL,
    base_url: str = "/",
) -> list[str]:
    """The command line that serves ``folder`` on ``http://localhost:<port>/`` and on no other port.

    Voilà runs with this Python (:mod:`saliency_widget.classroom.voila_app`, Voilà with the
    page's kernel shutdown accepted, run by file path so the Voilà process does not import
    saliency-widget and torch), so its kernels find the same saliency-widget and widget
    extensions. ``port_retries=0``: a busy port is an error, never a silent move to the next one.
    Kernels idle for ``cull_idle`` seconds with no tab connected are shut down (a tab still
    open keeps its kernel); ``pool`` > 0 pre-starts that many kernels per notebook.
    ``base_url`` (e.g. ``/services/classroom/`` behind JupyterHub's proxy) prefixes every path.
    ``--no-browser`` is added when ``open_browser`` is false.
    """
    _check_port(port)
    base_url = _check_base_url(base_url)
    _check_count("--cull-idle", cull_idle, 10)
    _check_count("--pool", pool, 0)
    cmd = [
        sys.executable, "-c", LAUNCH, str(VOILA_APP), str(folder),
        f"--port={port}", "--Voila.ip=localhost", "--Voila.port_retries=0",
        f"--MappingKernelManager.cull_idle_timeout={cull_idle}",
        f"--MappingKernelManager.cull_interval={cull_interval(cull_idle)}",
        "--MappingKernelManager.cull_connected=False",
    ]
    if base_url != "/":
        cmd.append(f"--Voila.base_url={base_url}")
    if pool:
        cmd += ["--VoilaConfiguration.preheat_kernel=True", f"--VoilaConfiguration.default_pool_size={pool}"]
    return cmd + ([] if open_browser else ["--no-browser"])


def _wait_until_listening(proc: subprocess.Popen[bytes], port: int, timeout: float = 120.0) -> None:
    """Return once ``port`` accepts connections; raise if Voilà exits first or never listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SaliencyError(f"Voilà exited with status {proc.returncode} before serving on port {port} (see its log above)")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SaliencyError(f"Voilà did not start listening on port {port} within {timeout:.0f} s")


def serve_classroom(
    port: int = DEFAULT_PORT,
    open_browser: bool = True,
    folder: Path | None = None,
    cull_idle: int = DEFAULT_CULL_IDLE,
    pool: int = DEFAULT_POOL,
    base_url: str | None = None,
) -> int:
    """Write the classroom notebooks into ``folder`` (default: a new temporary folder) and run Voilà on it.

    A port already in use is refused before anything starts; the address is printed once
    Voilà listens on it. ``base_url`` defaults to :func:`default_base_url`. Blocks until Voilà exits (Ctrl-C or SIGTERM stop it, and the Voilà
    process with it); returns its exit status (0 after Ctrl-C).
    """
    require_voila()
    _check_port(port)  # before a temporary folder is made for nothing
    base_url = default_base_url() if base_url is None else base_url
    cmd = classroom_command(Path("."), port, open_browser, cull_idle, pool, base_url)  # checks every option
    if port_in_use(port):
        raise InputError(f"--port {port} is already in use on this computer; choose another port, e.g. --port {port + 1}")
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="saliency-classroom-"))
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--dir {str(folder)!r} is a file; give a folder for the classroom notebooks")
    cmd = classroom_command(folder, port, open_browser, cull_idle, pool, base_url)
    url = f"http://localhost:{port}{_check_base_url(base_url)}"
    paths = write_classroom_notebooks(folder)
    env = {**KERNEL_ENV, **os.environ}

    def _stop(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # runs the finally below, so Voilà never outlives us

    previous = signal.signal(signal.SIGTERM, _stop)
    proc = subprocess.Popen(cmd, env=env)
    try:
        _wait_until_listening(proc, port)
        pool_note = f"{pool} pre-started kernel(s) per notebook, " if pool else ""
        print(
            f"serving {', '.join(p.name for p in paths)} from {folder} on {url} "
            f"({pool_note}idle kernels of closed tabs end after {cull_idle} s; Ctrl-C stops)",
            flush=True,
        )
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
