"""`saliency-widget classroom`: the Voilà invocation, the notebooks it serves, and its errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from saliency_widget import cli
from saliency_widget.classroom import serve
from saliency_widget.classroom.notebooks import CLASSROOM_NOTEBOOKS, notebook_json, write_classroom_notebooks
from saliency_widget.errors import InputError
from tests.helpers import REPO_ROOT


@pytest.mark.parametrize(
    ("port", "open_browser", "tail"),
    [(8866, True, ["--port=8866", "--Voila.ip=localhost"]), (9001, False, ["--port=9001", "--Voila.ip=localhost", "--no-browser"])],
)
def test_classroom_command_is_voila_on_the_folder(tmp_path: Path, port: int, open_browser: bool, tail: list[str]) -> None:
    assert serve.classroom_command(tmp_path, port, open_browser) == [sys.executable, "-m", "voila", str(tmp_path), *tail]


@pytest.mark.parametrize("port", [0, 65536, -1, True, "80"])
def test_classroom_command_rejects_bad_ports(tmp_path: Path, port: Any) -> None:
    with pytest.raises(InputError, match="--port must be an integer from 1 to 65535"):
        serve.classroom_command(tmp_path, port)


class _FakeProc:
    """Stands in for the Voilà process: records the command, exits with 0 at once."""

    commands: list[list[str]] = []

    def __init__(self, cmd: list[str]) -> None:
        _FakeProc.commands.append(cmd)

    def wait(self, timeout: float | None = None) -> int:
        return 0

    def poll(self) -> int:
        return 0


def test_cli_classroom_writes_the_notebooks_and_runs_voila(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _FakeProc.commands = []
    monkeypatch.setattr(serve.subprocess, "Popen", _FakeProc)
    assert cli.main(["classroom", "--port", "9123", "--no-browser", "--dir", str(tmp_path / "class")]) == 0
    assert _FakeProc.commands == [[sys.executable, "-m", "voila", str(tmp_path / "class"), "--port=9123", "--Voila.ip=localhost", "--no-browser"]]
    assert sorted(p.name for p in (tmp_path / "class").iterdir()) == ["02_relu_rules.ipynb", "03_transposed_convolution.ipynb"]
    assert "http://localhost:9123/" in capsys.readouterr().out


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
