"""Robustness round 3 (issue 26) item 10: ``saliency-widget mine`` fails in one ``SaliencyError`` line naming the value or file.

``--limit 0`` (was ``KeyError: 'index'``), a decompression-bomb image in the mined folder (was
``DecompressionBombError``: only ``OSError`` was caught), a corrupt image read by DataLoader
workers (was the worker's whole traceback joined into one "line"). The folder is read by the
one decoder (:mod:`saliency_widget.data.decode`), so the same guards hold for every reader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from saliency_widget.analysis import mine
from saliency_widget.analysis.shards import worker_error
from saliency_widget.cli import main
from saliency_widget.data.decode import IMAGE_SUFFIXES, list_images
from saliency_widget.data.folders import ImageFolderData
from saliency_widget.errors import InputError, SaliencyError
from saliency_widget.models import shapes_cnn
from saliency_widget.viz.modelio import describe_model

LAYER = "features.relu1"


def _folder(root: Path, n: int = 4) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return root


def _mine_cli(data: Path | str, out: Path, *extra: str) -> list[str]:
    return ["mine", "--data", str(data), "--layers", LAYER, "--k", "2", "--batch-size", "2", "--out", str(out), "--quiet", *extra]


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("saliency-widget: error: ")
    assert "Traceback" not in err and "DataLoader worker" not in err and 'File "' not in err
    return lines[0]


# ---------------------------------------------------------------- item 10: --limit 0
@pytest.mark.parametrize("data", ["sample:shapes", "FOLDER"])
def test_item10_mine_limit_zero_is_one_line_naming_the_value(data: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = str(_folder(tmp_path / "imgs")) if data == "FOLDER" else data
    assert main(_mine_cli(src, tmp_path / "idx", "--limit", "0")) == 2
    assert "limit must be a positive int, got 0" in _one_error_line(capsys)
    assert not (tmp_path / "idx" / "manifest.json").exists()


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--limit", "-3", "limit must be a positive int, got -3"),
    ("--workers", "-1", "num_workers must be a non-negative int, got -1"),
    ("--checkpoint-every", "0", "checkpoint_every must be a positive int, got 0"),
    ("--project-batch", "0", "project_batch must be a positive int, got 0"),
    ("--limit", "two", "argument --limit: invalid int value: 'two'"),
])
def test_item10_mine_bad_counts_are_one_line(option: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_mine_cli("sample:shapes", tmp_path / "idx", option, value)) == 2
    assert message in _one_error_line(capsys)


def test_item10_mine_api_refuses_limit_zero(tmp_path: Path) -> None:
    model = shapes_cnn()
    data = ImageFolderData(_folder(tmp_path / "imgs"), describe_model(model).transform)
    with pytest.raises(InputError, match=r"^limit must be None \(every image\) or a positive int, got 0$"):
        mine(model, data, [LAYER], tmp_path / "idx", k=2, limit=0, progress=False)


# ---------------------------------------------------------------- item 10: a decompression bomb in the folder
@pytest.fixture()
def small_bomb_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """PIL's decompression-bomb limit lowered to 64 x 64 pixels, so a "bomb" is a small file."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64)
    return 64 * 64


@pytest.mark.parametrize("side", [70, 100], ids=["pil-warns-only", "pil-raises"])  # 4900 px: PIL warns; 10000 px > 2x: PIL raises
def test_item10_decompression_bomb_in_a_mined_folder_is_one_line_naming_the_file(
    side: int, small_bomb_limit: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path / "imgs")
    Image.new("1", (side, side)).save(folder / "zz_bomb.png")
    assert main(_mine_cli(folder, tmp_path / "idx")) == 2
    line = _one_error_line(capsys)
    assert "zz_bomb.png" in line and "too large to decode safely" in line and f"{side * side} pixels" in line
    assert f"MAX_IMAGE_PIXELS = {small_bomb_limit}" in line


# ---------------------------------------------------------------- item 10: a corrupt image read by workers
@pytest.mark.parametrize("workers", ["0", "2"])
def test_item10_corrupt_image_with_workers_is_one_line_naming_the_file(workers: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path / "imgs")
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not a png" * 10)
    assert main(_mine_cli(folder, tmp_path / "idx", "--workers", workers)) == 2
    line = _one_error_line(capsys)
    assert "bad.png" in line and "cannot decode" in line


def test_worker_error_keeps_the_original_line() -> None:
    wrapped = InputError(
        "Caught InputError in DataLoader worker process 1.\nOriginal Traceback (most recent call last):\n"
        '  File "/x/fetch.py", line 52, in fetch\n    data = [self.dataset[idx] for idx in possibly_batched_index]\n'
        "saliency_widget.errors.InputError: cannot decode '/d/bad.png' as an image: Truncated File Read. Use a PNG or JPEG file\n"
    )
    got = worker_error(wrapped)
    assert type(got) is InputError
    assert str(got) == "cannot decode '/d/bad.png' as an image: Truncated File Read. Use a PNG or JPEG file"


@pytest.mark.parametrize("err", [InputError("plain message"), ValueError("Caught nothing"), KeyError("index")])
def test_worker_error_leaves_other_errors_alone(err: Exception) -> None:
    assert worker_error(err) is err


# ---------------------------------------------------------------- one decoder for every folder reader
def _exif_rotated_jpeg(path: Path) -> None:
    """A 32 x 16 (W x H) JPEG whose EXIF says "rotate 90": upright it is 16 x 32."""
    im = Image.fromarray(np.full((16, 32, 3), 200, np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to view
    im.save(path, exif=exif.tobytes())


def test_mined_folder_images_are_read_upright_and_16_bit_scaled(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    _exif_rotated_jpeg(folder / "a.jpg")
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(folder / "b.png")
    seen: list[tuple[int, int, tuple[int, ...]]] = []

    def transform(im: Image.Image) -> torch.Tensor:
        seen.append((im.width, im.height, im.getpixel((0, 0))))  # type: ignore[arg-type]
        return torch.zeros(3, 4, 4)

    data = ImageFolderData(folder, transform)
    data[0], data[1]
    assert seen[0][:2] == (16, 32)  # EXIF orientation applied
    assert seen[1] == (8, 8, (255, 255, 255))  # 65535 is white, not clipped at 255


def test_mined_folder_refuses_an_elongated_image_by_name(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "imgs")
    Image.new("RGB", (2000, 10)).save(folder / "strip.png")
    data = ImageFolderData(folder, describe_model(shapes_cnn()).transform)
    with pytest.raises(SaliencyError, match=r"strip.png.*aspect ratio of 200:1"):
        data[data.paths.index("strip.png")]


def test_every_folder_reader_lists_the_same_files(tmp_path: Path) -> None:
    from saliency_widget.widget.datasource import choose_data

    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for i, suffix in enumerate(IMAGE_SUFFIXES):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(folder / ("sub" if i % 2 else ".") / f"f{i}{suffix.upper() if i == 3 else suffix}")
    (folder / "notes.txt").write_text("not an image")
    model = shapes_cnn()
    listed = [p.relative_to(folder).as_posix() for p in list_images(folder)]
    assert len(listed) == len(IMAGE_SUFFIXES)
    assert ImageFolderData(folder, describe_model(model).transform).paths == listed
    assert choose_data(model, "folder", folder=str(folder)).size == len(listed)
