"""``saliency-widget visualize``: PNGs and a page; one-line errors with exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from saliency_widget.cli import main
from saliency_widget.cli.visualize import parse_channels
from saliency_widget.errors import InputError


def test_filters_of_a_layer_become_pngs_and_a_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "relu2"
    assert main(["visualize", "--layer", "features.relu2", "--channels", "0-2,5", "--steps", "2", "--size", "32", "--out", str(out)]) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [f"features.relu2-c000{c}.png" for c in (0, 1, 2, 5)]
    assert Image.open(out / pngs[0]).size == (32, 32)
    page = (out / "index.html").read_text()
    assert "channel(&#x27;features.relu2&#x27;, 5)" in page and 'src="features.relu2-c0005.png"' in page
    assert "wrote" in capsys.readouterr().out


def test_class_models_are_named_by_class(tmp_path: Path) -> None:
    assert main(["visualize", "--classes", "--steps", "1", "--size", "32", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "class-004-star.png").exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--layer", "nope"], ["'nope'", "features.relu5"]),
        (["--layer", "features.relu1", "--channels", "3-40"], ["'3-40'", "0..15"]),
        (["--layer", "features.relu1", "--classes"], ["--layer", "--classes"]),
        ([], ["--layer", "--classes"]),
        (["--layer", "features.relu1", "--steps", "0"], ["steps=0"]),
    ],
)
def test_errors_are_one_line_with_exit_status_2(argv: list[str], words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["visualize", "--out", str(tmp_path), "--size", "32", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("saliency-widget: error:")
    for w in words:
        assert w in err, err


def test_parse_channels() -> None:
    assert parse_channels("0-2, 7,1", 8) == [0, 1, 2, 7]
    assert parse_channels(None, 3) == [0, 1, 2]
    with pytest.raises(InputError, match="'x'"):
        parse_channels("x", 3)


def test_grid_png_tiles_or_captions_the_images() -> None:
    import io

    import torch

    from saliency_widget.featviz.result import Visualization
    from saliency_widget.viz.featviz_page import grid_png

    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    vis = Visualization(images, images, torch.zeros(3), torch.zeros(1, 3), ["a", "b", "c"])
    tiled = Image.open(io.BytesIO(grid_png(vis, cols=2, cell=16)))
    assert tiled.size[0] >= 2 * 16 and tiled.size[1] >= 2 * 16
    row = Image.open(io.BytesIO(grid_png(vis, titles=["a", "b", "c"], cell=32)))
    assert row.size[0] >= 3 * 32
