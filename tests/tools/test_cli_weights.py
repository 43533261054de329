"""``render --weights none`` for offline trials, and the one-line warning for a photo given to the shapes model (issue 29, item 8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from torch import nn

from saliency_widget.cli import main
from saliency_widget.cli.render import looks_like_photo, with_weights
from saliency_widget.errors import InputError, OutOfDomainWarning
from saliency_widget.models import load_model
from tests.helpers import REPO_ROOT


@pytest.mark.parametrize(
    ("spec", "weights", "expected"),
    [
        ("shapes", None, "shapes"),
        ("shapes", "none", "shapes:none"),
        ("torchvision:resnet18", "none", "torchvision:resnet18:none"),
        ("torchvision:resnet18:random", "random", "torchvision:resnet18:none"),
        ("timm:vit_tiny_patch16_224", "random", "timm:vit_tiny_patch16_224:none"),
    ],
)
def test_with_weights(spec: str, weights: str | None, expected: str) -> None:
    assert with_weights(spec, weights) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [("torchvision:resnet18:IMAGENET1K_V1", "contradicts the weights 'IMAGENET1K_V1'"), ("py:mod:fn", "applies to the specs")],
)
def test_with_weights_errors(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        with_weights(spec, "none")


def test_random_is_a_synonym_of_none() -> None:
    a, b = load_model("torchvision:resnet18:random"), load_model("torchvision:resnet18:none")
    assert type(a) is type(b) and isinstance(a, nn.Module) and not a.training
    shapes = load_model("shapes:none")
    assert [p.shape for p in shapes.parameters()] == [p.shape for p in load_model("shapes").parameters()]


@pytest.mark.parametrize(
    ("arg", "photo"),
    [("sample:cat", True), ("sample:astronaut", True), ("sample:shapes_star", False), ("sample:shapes_cross_ring", False)],
)
def test_looks_like_photo_samples(arg: str, photo: bool) -> None:
    assert looks_like_photo(arg) is photo


@pytest.mark.parametrize(("name", "size", "photo"), [("a.jpg", (64, 64), True), ("b.png", (80, 60), True), ("c.png", (64, 64), False)])
def test_looks_like_photo_files(tmp_path: Path, name: str, size: tuple[int, int], photo: bool) -> None:
    Image.new("RGB", size, (10, 20, 30)).save(tmp_path / name)
    assert looks_like_photo(str(tmp_path / name)) is photo


def test_photo_on_shapes_model_warns_once_in_one_line(tmp_path: Path) -> None:
    # a real process: what the user's terminal shows (pytest records warnings instead of printing them)
    code = (
        "import sys; from saliency_widget.cli import main; "
        f"main(['render', 'sample:cat', 'sample:coffee', '--methods', 'gradient', '--out', {str(tmp_path / 'a.png')!r}]); "
        f"sys.exit(main(['render', 'sample:cat', '--methods', 'gradient', '--out', {str(tmp_path / 'b.png')!r}]))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr  # once per condition, one line
    assert lines[0].startswith("saliency-widget: warning: sample:cat (and 1 more) looks like a photo")
    assert "--weights none" in lines[0] and lines[0].endswith("(OutOfDomainWarning)")


def test_photo_warning_is_a_named_warning_class(tmp_path: Path) -> None:
    with pytest.warns(OutOfDomainWarning, match="looks like a photo"):
        main(["render", "sample:cat", "--methods", "gradient", "--out", str(tmp_path / "a.png")])


def test_no_warning_for_shapes_scenes_or_another_model(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    assert main(["render", "sample:shapes_star", "--methods", "gradient", "--out", str(tmp_path / "a.png")]) == 0
    assert main(["render", "sample:cat", "--model", "shapes", "--weights", "none", "--methods", "gradient", "--out", str(tmp_path / "b.png")]) == 0
    assert not [w for w in recwarn if issubclass(w.category, OutOfDomainWarning)]


@pytest.mark.slow
def test_weights_none_renders_resnet18_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty hub cache: nothing to load
    out = tmp_path / "r.png"
    assert main(["render", "sample:cat", "--model", "torchvision:resnet18", "--weights", "none", "--methods", "gradient", "--out", str(out)]) == 0
    assert Image.open(out).width > 150
