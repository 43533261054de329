"""`saliency-widget classroom`: the Voilà invocation, the notebooks it serves, and its errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from saliency_widget import cli
from saliency_widget.classroom import serve
from saliency_widget.classroom.notebooks import CLASSROOM_NOTEBOOKS, notebook_json, write_classroom_notebooks
from saliency_widget.errors import InputError
from tests.browser.harness import free_port
from tests.helpers import REPO_ROOT

VOILA = [sys.executable, "-c", serve.LAUNCH, str(serve.VOILA_APP)]


def _cull(idle: int, interval: int) -> list[str]:
    return [f"--MappingKernelManager.cull_idle_timeout={idle}", f"--MappingKernelManager.cull_interval={interval}", "--MappingKernelManager.cull_connected=False"]


POOL1 = ["--VoilaConfiguration.preheat_kernel=True", "--VoilaConfiguration.default_pool_size=1"]


@pytest.mark.parametrize(
    ("port", "open_browser", "cull_idle", "pool", "tail"),
    [
        (8866, True, 300, 1, ["--port=8866", "--Voila.ip=localhost", "--Voila.port_retries=0", *_cull(300, 60), *POOL1]),
        (9001, False, 40, 0, ["--port=9001", "--Voila.ip=localhost", "--Voila.port_retries=0", *_cull(40, 10), "--no-browser"]),
        (9002, False, 10, 3, ["--port=9002", "--Voila.ip=localhost", "--Voila.port_retries=0", *_cull(10, 5),
                              "--VoilaConfiguration.preheat_kernel=True", "--VoilaConfiguration.default_pool_size=3", "--no-browser"]),
    ],
)
def test_classroom_command_is_voila_on_the_folder(tmp_path: Path, port: int, open_browser: bool, cull_idle: int, pool: int, tail: list[str]) -> None:
    assert serve.classroom_command(tmp_path, port, open_browser, cull_idle, pool) == [*VOILA, str(tmp_path), *tail]


@pytest.mark.parametrize("port", [0, 65536, -1, True, "80"])
def test_classroom_command_rejects_bad_ports(tmp_path: Path, port: Any) -> None:
    with pytest.raises(InputError, match="--port must be an integer from 1 to 65535"):
        serve.classroom_command(tmp_path, port)


@pytest.mark.parametrize(("cull_idle", "pool", "match"), [(9, 1, "--cull-idle must be an integer >= 10, got 9"), (60, -1, "--pool must be an integer >= 0, got -1"), (60, 1.5, "--pool must be")])
def test_classroom_command_rejects_bad_cull_and_pool(tmp_path: Path, cull_idle: Any, pool: Any, match: str) -> None:
    with pytest.raises(InputError, match=match):
        serve.classroom_command(tmp_path, 8866, True, cull_idle, pool)


@pytest.mark.parametrize(("idle", "interval"), [(10, 5), (40, 10), (300, 60), (3600, 60)])
def test_cull_interval_is_a_quarter_of_the_timeout_within_5_to_60_s(idle: int, interval: int) -> None:
    assert serve.cull_interval(idle) == interval


class _FakeProc:
    """Stands in for the Voilà process: records the command and env, listens on its port, exits with 0."""

    commands: list[list[str]] = []
    envs: list[dict[str, str]] = []

    def __init__(self, cmd: list[str], env: dict[str, str] | None = None) -> None:
        _FakeProc.commands.append(cmd)
        _FakeProc.envs.append(env or {})
        port = int(next(a for a in cmd if a.startswith("--port=")).split("=")[1])
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen()

    def wait(self, timeout: float | None = None) -> int:
        self.sock.close()
        return 0

    def poll(self) -> int | None:
        self.returncode = None if self.sock.fileno() >= 0 else 0
        return self.returncode

    def terminate(self) -> None:
        self.sock.close()


def test_cli_classroom_writes_the_notebooks_and_runs_voila(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _FakeProc.commands, _FakeProc.envs = [], []
    monkeypatch.setattr(serve.subprocess, "Popen", _FakeProc)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    port = free_port()
    assert cli.main(["classroom", "--port", str(port), "--no-browser", "--dir", str(tmp_path / "class"), "--cull-idle", "40", "--pool", "0"]) == 0
    assert _FakeProc.commands == [[*VOILA, str(tmp_path / "class"), f"--port={port}", "--Voila.ip=localhost", "--Voila.port_retries=0", *_cull(40, 10), "--no-browser"]]
    assert sorted(p.name for p in (tmp_path / "class").iterdir()) == ["02_relu_rules.ipynb", "03_transposed_convolution.ipynb"]
    assert f"http://localhost:{port}/" in capsys.readouterr().out
    # kernels run single-threaded on the CPU unless the teacher's environment says otherwise
    env = _FakeProc.envs[0]
    assert (env["OMP_NUM_THREADS"], env["CUDA_VISIBLE_DEVICES"], env["MALLOC_ARENA_MAX"]) == ("1", "", "2")


def test_classroom_port_in_use_is_refused_not_moved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 26 item 6: with --port P busy, nothing says http://localhost:P/ while Voilà serves P+1."""
    _FakeProc.commands = []
    monkeypatch.setattr(serve.subprocess, "Popen", _FakeProc)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert serve.port_in_use(port)
        assert cli.main(["classroom", "--port", str(port), "--no-browser", "--dir", str(tmp_path / "class")]) == 2
    out, err = capsys.readouterr()
    assert err.strip() == f"saliency-widget: error: --port {port} is already in use on this computer; choose another port, e.g. --port {port + 1}"
    assert "http://localhost" not in out
    assert _FakeProc.commands == []  # nothing started
    assert not (tmp_path / "class").exists()  # and nothing written


def test_classroom_reports_voila_exiting_before_it_listens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    class _Dies(_FakeProc):
        def __init__(self, cmd: list[str], env: dict[str, str] | None = None) -> None:
            super().__init__(cmd, env)
            self.sock.close()  # e.g. another server took the port in between

    monkeypatch.setattr(serve.subprocess, "Popen", _Dies)
    port = free_port()
    assert cli.main(["classroom", "--port", str(port), "--no-browser", "--dir", str(tmp_path / "class")]) == 2
    out, err = capsys.readouterr()
    assert f"Voilà exited with status 0 before serving on port {port}" in err
    assert "http://localhost" not in out


def test_port_in_use_false_for_a_free_port() -> None:
    assert not serve.port_in_use(free_port())


def test_cli_classroom_without_voila_names_pip_install(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real = serve.importlib.util.find_spec
    monkeypatch.setattr(serve.importlib.util, "find_spec", lambda name, *a: None if name == "voila" else real(name, *a))
    assert cli.main(["classroom", "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("saliency-widget: error: the classroom dashboards need Voilà") and "`pip install voila`" in err


def test_cli_classroom_rejects_a_file_as_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "f.txt"
    f.write_text("x")
    assert cli.main(["classroom", "--no-browser", "--dir", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_classroom_notebooks_are_valid_and_match_example_notebooks(tmp_path: Path) -> None:
    paths = write_classroom_notebooks(tmp_path)
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        nbformat.validate(nb)
        # the committed example notebooks are these, byte for byte (scripts/make_notebooks.py writes both)
        assert (REPO_ROOT / "example_notebooks" / p.name).read_text(encoding="utf-8") == p.read_text(encoding="utf-8")
    assert [p.name for p in paths] == list(CLASSROOM_NOTEBOOKS)


def test_notebook_json_literal() -> None:
    assert json.loads(notebook_json([("md", "# t\nx"), ("code", "1+1")]))["cells"] == [
        {"cell_type": "markdown", "id": "cell-0", "metadata": {}, "source": ["# t\n", "x"]},
        {"cell_type": "code", "execution_count": None, "id": "cell-1", "metadata": {}, "outputs": [], "source": ["1+1"]},
    ]


@pytest.mark.parametrize("name", list(CLASSROOM_NOTEBOOKS))
def test_no_seed_jargon_in_the_classroom_notebooks(name: str) -> None:
    text = "".join(src for _kind, src in CLASSROOM_NOTEBOOKS[name]).lower()
    assert "seed 00" not in text
    assert "zeiler & fergus" in text


@pytest.mark.parametrize(("base_url", "expect"), [("/services/classroom/", "/services/classroom/"), ("/services/classroom", "/services/classroom/")])
def test_classroom_command_base_url(tmp_path: Path, base_url: str, expect: str) -> None:
    cmd = serve.classroom_command(tmp_path, 9003, False, 300, 0, base_url)
    assert cmd[-2:] == [f"--Voila.base_url={expect}", "--no-browser"]


@pytest.mark.parametrize("base_url", ["services/classroom", "/a b/", "/x?y", 3])
def test_classroom_command_rejects_bad_base_url(tmp_path: Path, base_url: Any) -> None:
    with pytest.raises(InputError, match="--base-url must be a URL path starting with '/'"):
        serve.classroom_command(tmp_path, 9003, False, 300, 0, base_url)


def test_cli_classroom_as_a_hub_service_uses_the_service_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _FakeProc.commands = []
    monkeypatch.setattr(serve.subprocess, "Popen", _FakeProc)
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/services/classroom/")
    port = free_port()
    assert cli.main(["classroom", "--port", str(port), "--no-browser", "--dir", str(tmp_path / "class")]) == 0
    assert "--Voila.base_url=/services/classroom/" in _FakeProc.commands[0]
    assert f"http://localhost:{port}/services/classroom/ " in capsys.readouterr().out


def test_the_voila_process_does_not_import_torch() -> None:
    """Voilà only serves pages and starts kernels; importing saliency-widget there would cost ~0.5 GB."""
    pytest.importorskip("voila")
    code = f"import runpy, sys; runpy.run_path({str(serve.VOILA_APP)!r}); print(sorted(m for m in ('torch', 'saliency_widget') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "[]"
