"""JupyterHub for a course with saliency-widget's classroom dashboards (see docs/classroom.md).

Run on the course machine, as root for real Unix users (PAM log-in, LocalProcessSpawner)::

    pip install saliency-widget voila jupyterhub jupyterlab && npm install -g configurable-http-proxy
    jupyterhub -f classroom_jupyterhub_config.py

* every student gets their own Jupyter server, started on log-in, with the classroom notebooks
  copied into ``~/classroom`` (their copy, theirs to edit) and opening on the dashboards list
  (``/user/<name>/voila/tree``); their dashboard kernels end when the tab closes or,
  failing that, after 5 minutes idle, and their server stops after an hour without activity;
* the teacher's ``saliency-widget classroom`` runs as a Hub service at ``/services/classroom/``:
  one shared set of dashboards (no code runs there but the two notebooks) that needs no
  per-student server.

Settings come from environment variables so the same file can be tried on one account
(``CLASSROOM_SPAWNER=simple CLASSROOM_AUTH=dummy``: every student a folder under the state
folder, any password accepted; that is how tests/browser/test_e2e_classroom_hub.py runs it).
"""

# ruff: noqa: F821  (get_config is provided by JupyterHub when it loads this file)
from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path

c = get_config()  # type: ignore[name-defined]

STATE = Path(os.environ.get("CLASSROOM_HUB_STATE", "/srv/jupyterhub"))  # database, cookie secret, shared dashboards
TEACHER_PORT = int(os.environ.get("CLASSROOM_TEACHER_PORT", "10101"))
KERNEL_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2", "CUDA_VISIBLE_DEVICES": ""}
KEEP = ["PATH", "PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL", "JUPYTER_PLATFORM_DIRS", "JUPYTERHUB_SINGLEUSER_APP"]  # from the Hub's environment

STATE.mkdir(parents=True, exist_ok=True)
c.JupyterHub.bind_url = os.environ.get("CLASSROOM_HUB_URL", "http://:8000")
c.JupyterHub.hub_bind_url = os.environ.get("CLASSROOM_HUB_API_URL", "http://127.0.0.1:8081")
c.ConfigurableHTTPProxy.api_url = os.environ.get("CLASSROOM_PROXY_API_URL", "http://127.0.0.1:8001")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")
c.JupyterHub.cleanup_servers = True  # stopping the Hub stops the students' servers

# --- log-in: the course's Unix accounts (PAM), or anyone with any password when trying it out
if os.environ.get("CLASSROOM_AUTH", "pam") == "dummy":
    c.JupyterHub.authenticator_class = "dummy"
else:
    c.JupyterHub.authenticator_class = "pam"
    roster = STATE / "students.txt"  # one user name a line
    if roster.exists():
        c.Authenticator.allowed_users = {u.strip() for u in roster.read_text().split() if u.strip()}
    c.Authenticator.admin_users = {os.environ.get("CLASSROOM_TEACHER", "teacher")}

# --- each student's server: this Python (saliency-widget, Voilà, JupyterLab installed), the notebooks in ~/classroom
if os.environ.get("CLASSROOM_SPAWNER", "local") == "simple":
    c.JupyterHub.spawner_class = "simple"  # one account: students are folders, not Unix users
    c.SimpleLocalProcessSpawner.home_dir_template = str(STATE / "home" / "{username}")
else:
    c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.notebook_dir = "~/classroom"  # the student's Jupyter opens on their copy of the course notebooks
c.Spawner.default_url = "/voila/tree"  # ... listed as dashboards
c.Spawner.environment = dict(KERNEL_ENV)
c.Spawner.env_keep = KEEP
c.Spawner.args = [
    "--MappingKernelManager.cull_idle_timeout=300",  # a dashboard kernel idle 5 min with its tab gone ends
    "--MappingKernelManager.cull_interval=60",
    "--ServerApp.shutdown_no_activity_timeout=3600",  # a student's server idle an hour stops
]
if os.environ.get("CLASSROOM_SPAWNER", "local") == "simple" and os.geteuid() == 0:
    c.Spawner.args.append("--allow-root")  # trying it as root: students' servers run as root too (never for a class)
c.Spawner.start_timeout = 180  # thirty log-ins at once on a small machine
c.Spawner.http_timeout = 180
c.Spawner.mem_limit = "2G"  # enforced by container spawners (DockerSpawner, KubeSpawner), advisory here


def copy_classroom_notebooks(spawner: object) -> None:
    """Write the classroom notebooks into the student's ``~/classroom`` (kept if already there)."""
    from saliency_widget.classroom.notebooks import CLASSROOM_NOTEBOOKS, write_classroom_notebooks

    home = Path(spawner.user_env({})["HOME"])  # type: ignore[attr-defined]
    folder = home / "classroom"
    if all((folder / name).exists() for name in CLASSROOM_NOTEBOOKS):
        return  # the student's own (maybe edited) copy stays
    for path in write_classroom_notebooks(folder):
        if os.geteuid() == 0:  # the Hub runs as root for real users: give them their files
            try:
                pw = pwd.getpwnam(spawner.user.name)  # type: ignore[attr-defined]
            except KeyError:
                continue
            for p in (home, folder, path):
                if p.exists() and p.stat().st_uid == 0:
                    os.chown(p, pw.pw_uid, pw.pw_gid)


c.Spawner.pre_spawn_hook = copy_classroom_notebooks

# --- the teacher's dashboards, shared: `saliency-widget classroom` as a Hub-managed service
c.JupyterHub.services = [
    {
        "name": "classroom",
        "url": f"http://127.0.0.1:{TEACHER_PORT}",
        "command": [
            sys.executable, "-m", "saliency_widget.cli", "classroom", "--no-browser", f"--port={TEACHER_PORT}",
            f"--dir={STATE / 'classroom-dashboards'}", "--pool=1", "--cull-idle=300",
        ],  # serves under $JUPYTERHUB_SERVICE_PREFIX = /services/classroom/
        "environment": {**KERNEL_ENV, **{k: os.environ[k] for k in KEEP if k in os.environ}},
    }
]
