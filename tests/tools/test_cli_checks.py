"""The CLI: choices from the method registry and the renderer, checks before computing, one-line errors."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from saliency_widget import cli
from saliency_widget.cli import render as render_cmd
from saliency_widget.engine import available_methods, get_method
from saliency_widget.viz import render as R


@pytest.fixture
def no_compute(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) model loads, so a test shows an error came before any computing."""
    calls: list[str] = []

    def load(spec: str) -> Any:
        calls.append(spec)
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(render_cmd, "read_model", load)
    return calls


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("saliency-widget: error: ") and "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize("methods", ["", " , ,"])
def test_empty_methods_is_an_error(methods: str, no_compute: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["render", "sample:shapes_star", "--methods", methods, "--out", str(tmp_path / "r.html")]) == 2
    err = _err(capsys)
    assert f"--methods {methods!r} names no method" in err and "'gradient'" in err and "'occlusion'" in err
    assert no_compute == [] and not (tmp_path / "r.html").exists()


def test_unknown_method_checked_before_the_model_loads(no_compute: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["render", "sample:shapes_star", "--methods", "gradient,nope", "--out", str(tmp_path / "r.html")]) == 2
    assert "unknown method(s) ['nope']; expected names from 'gradient'" in _err(capsys) and no_compute == []


def test_out_is_an_existing_directory(no_compute: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "results.html"
    folder.mkdir()
    assert cli.main(["render", "sample:shapes_star", "--out", str(folder)]) == 2
    err = _err(capsys)
    assert f"--out {str(folder)!r} is an existing directory" in err
    assert repr(str(folder / "report.html")) in err and no_compute == []


def test_out_folder_is_a_file(no_compute: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert cli.main(["render", "sample:shapes_star", "--out", str(tmp_path / "f" / "r.png")]) == 2
    assert "is a file, not a directory" in _err(capsys) and no_compute == []


def test_out_folder_does_not_exist(no_compute: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "nope" / "r.html"
    assert cli.main(["render", "sample:shapes_star", "--out", str(out)]) == 2
    assert f"the folder of --out {str(out)!r} does not exist" in _err(capsys) and no_compute == []


def test_elongated_image_is_one_line_naming_the_limit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # the 10000x1 PNG that cost +668 MB in the bundled preprocessing: refused before any resize
    from PIL import Image

    strip = tmp_path / "strip.png"
    Image.new("RGB", (10000, 1)).save(strip, optimize=True)
    assert cli.main(["render", str(strip), "--out", str(tmp_path / "r.html")]) == 2
    err = _err(capsys)
    assert f"{str(strip)!r} is 10000x1 pixels, an aspect ratio of 10000:1; the limit is 20:1" in err
    assert not (tmp_path / "r.html").exists()


def test_image_is_a_directory(no_compute: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "pics").mkdir()
    assert cli.main(["render", str(tmp_path / "pics"), "--out", str(tmp_path / "r.html")]) == 2
    assert f"image path {str(tmp_path / 'pics')!r} is a directory" in _err(capsys) and no_compute == []


def test_target_checked_before_any_map(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from saliency_widget.viz import report

    def refuse(*a: Any, **k: Any) -> Any:
        raise AssertionError("maps were computed before the target was checked")

    monkeypatch.setattr(report, "render_report", refuse)
    assert cli.main(["render", "sample:shapes_star", "--target", "hexagon", "--out", str(tmp_path / "r.html")]) == 2
    assert "unknown class 'hexagon'; expected one of 'circle'" in _err(capsys)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["render", "sample:shapes_star", "--sign", "both"], "argument --sign: invalid choice: 'both'"),
        (["render", "sample:shapes_star", "--cmap", "jet"], "argument --cmap: invalid choice: 'jet'"),
        (["draw"], "invalid choice: 'draw'"),
        ([], "the following arguments are required: command"),
        (["render", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], message: str, no_compute: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(args) == 2
    assert message in _err(capsys) and no_compute == []


def _render_action(dest: str) -> argparse.Action:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return next(a for a in sub.choices["render"]._actions if a.dest == dest)


@pytest.mark.parametrize(("dest", "expected"), [("sign", R.SIGNS), ("cmap", R.COLORMAPS)])
def test_choices_come_from_the_renderer(dest: str, expected: tuple[str, ...]) -> None:
    assert tuple(_render_action(dest).choices) == expected


def test_sign_error_lists_every_sign(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["render", "sample:shapes_star", "--sign", "both"]) == 2
    err = _err(capsys)
    assert all(repr(s) in err for s in R.SIGNS)


@pytest.mark.parametrize("name", available_methods())
def test_epilog_lists_each_registered_method_with_its_label(name: str) -> None:
    line = next(ln for ln in cli.EPILOG.splitlines() if ln.split()[:1] == [name])
    assert line.split(None, 1)[1] == get_method(name).label


def test_epilog_is_generated_from_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    class Fake:
        label = "Fake method"

    monkeypatch.setattr(render_cmd, "available_methods", lambda: ["gradient", "fake_method"])
    monkeypatch.setattr(render_cmd, "get_method", lambda n: Fake if n == "fake_method" else get_method(n))
    text = render_cmd.epilog()
    assert "  fake_method  Fake method" in text and "deconvnet" not in text.split("methods (")[1]


def test_success_line_names_the_methods(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "g.png"
    assert cli.main(["render", "sample:shapes_star", "--methods", " gradient , deconvnet", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out} (1 image(s) x gradient,deconvnet)"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
