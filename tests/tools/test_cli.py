"""The command line (saliency-widget render): PNG grids, one clear line per error, --help, --list-samples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from saliency_widget.cli import main
from saliency_widget.data import sample_images
from tests.helpers import REPO_ROOT


def test_png_grid(tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    assert main(["render", "sample:shapes_star", "--methods", "gradient,gradcam", "--out", str(out)]) == 0
    img = Image.open(out)
    assert img.format == "PNG" and img.width > 3 * 150 and img.height >= 160


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["render", "missing.png"], "image file not found: 'missing.png'"),
        (["render", "sample:nope"], "nope"),
        (["render", "sample:shapes_star", "--methods", "foo"], "unknown method(s) ['foo']"),
        (["render", "sample:shapes_star", "--model", "keras:x"], "--model 'keras:x' is not valid"),
        (["render", "sample:shapes_star", "--out", "x.pdf"], "must end in .html or .png"),
        (["render", "sample:shapes_star", "--target", "hexagon"], "unknown class 'hexagon'"),
        (["render", "sample:shapes_star", "--target", "17"], "target 17 is out of range"),
        (["render"], "no IMAGE given"),
        (["render", "sample:shapes_star", "--model", "torchvision:vgg16"], "not in the torch hub cache"),
    ],
)
def test_cli_errors_one_clear_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty hub cache
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_cli_help_and_entry_point() -> None:
    res = subprocess.run([sys.executable, "-m", "saliency_widget.cli", "render", "--help"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert res.returncode == 0
    assert "sample:NAME" in res.stdout and "torchvision:NAME" in res.stdout and "--methods" in res.stdout


def test_cli_lists_samples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--list-samples"]) == 0
    assert set(capsys.readouterr().out.split()) == set(sample_images())
