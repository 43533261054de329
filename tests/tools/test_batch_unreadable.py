"""Robustness round 3 (issue 26), ``render --data``: unreadable images are listed, every readable one is rendered.

Five seeded 12 px PNGs, one of them corrupt (the second in folder order, so images after it must
still be rendered), the bundled model, one fast method.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from saliency_widget.cli import main, render_folder
from saliency_widget.viz.batch import read_parts, unreadable

ORDER = ["a.png", "b.png", "c.png", "d.png", "e.png"]
ROW = re.compile(r"<tr id='img-(\d+)'><td>\d+</td><td><a href=\"[^\"]+\">([^<]+)</a></td><td><img src=\"data:image/png;base64,([^\"]+)\"")


def _folder(root: Path, bad: dict[str, bytes]) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for rel in ORDER:
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(root / rel)
    for rel, raw in bad.items():
        (root / rel).write_bytes(raw)
    return root


def _truncated(root: Path) -> bytes:
    return (root / "c.png").read_bytes()[:60]


def test_render_data_with_one_corrupt_image_among_five_renders_the_others_lists_it_and_exits_non_zero(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Item 5: the corrupt file is named on stderr and in index.html; the four others (also after it) are rendered."""
    folder = _folder(tmp_path / "imgs", {"b.png": b"\x89PNG\r\n\x1a\n this is not an image"})
    out = tmp_path / "report"
    assert main(["render", "--data", str(folder), "--out", str(out), "--methods", "gradient"]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("saliency-widget: error: 1 image(s) of --data") and "'b.png'" in last and "index.html" in last
    assert "b.png: unreadable, skipped (cannot decode" in err
    text = (out / "index.html").read_text(encoding="utf-8")
    rows = ROW.findall(text)
    assert [(int(i), path) for i, path, _b64 in rows] == [(0, "a.png"), (2, "c.png"), (3, "d.png"), (4, "e.png")]
    assert all(base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n" for _i, _p, b64 in rows)
    assert "Unreadable images (1)" in text and "<td>b.png</td><td>cannot decode" in text
    assert text.index("Unreadable images") < text.index("<h2>Images (4)</h2>")
    assert sorted(p.name for p in (out / "pages").glob("*.html")) == ["a.png.html", "c.png.html", "d.png.html", "e.png.html"]
    assert "1 could not be read" in text


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # the page's own PNGs exceed the lowered limit
@pytest.mark.parametrize("kind", ["truncated", "empty", "text", "bomb"])
def test_render_folder_lists_each_kind_of_unreadable_file(tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A truncated PNG, an empty file, text named .png and a decompression bomb: all one line each, none stops the batch."""
    folder = _folder(tmp_path / "imgs", {})
    if kind == "bomb":
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200)  # the 12x12 images pass (144), a 20x20 one is a "bomb"
        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(folder / "d.png")
    else:
        raw = {"truncated": _truncated(folder), "empty": b"", "text": b"hello, not a picture\n"}[kind]
        (folder / "d.png").write_bytes(raw)
    out = tmp_path / "report"
    index = render_folder(folder, out, methods=["gradient"])
    assert index is not None
    failed = unreadable(read_parts(out))
    assert [(e["index"], e["path"]) for e in failed] == [(3, "d.png")]
    assert "\n" not in failed[0]["error"] and "d.png" in failed[0]["error"]
    assert [int(i) for i, _p, _b in ROW.findall(index.read_text(encoding="utf-8"))] == [0, 1, 2, 4]


def test_two_shards_with_an_unreadable_image_merge_to_the_same_index(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "imgs", {"c.png": b"garbage"})
    one, two = tmp_path / "one", tmp_path / "two"
    render_folder(folder, one, methods=["gradient"])
    assert render_folder(folder, two, methods=["gradient"], shard=(0, 2)) is None
    from saliency_widget.viz.batch import merge_parts

    with pytest.raises(Exception, match=r"rank\(s\) \[1\] of 2 are missing"):
        merge_parts(two)
    render_folder(folder, two, methods=["gradient"], shard=(1, 2))
    strip = lambda t: re.sub(r"<p class='sw-timing'[^>]*>[^<]*</p>|made by saliency-widget on [^;]+;", "", t)  # noqa: E731
    assert strip(merge_parts(two).read_text(encoding="utf-8")) == strip((one / "index.html").read_text(encoding="utf-8"))


def test_render_data_refuses_an_out_inside_the_data_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The report's PNGs under --data would be rendered as images by the next run."""
    folder = _folder(tmp_path / "imgs", {})
    assert main(["render", "--data", str(folder), "--out", str(folder / "report"), "--methods", "gradient"]) == 2
    err = capsys.readouterr().err
    assert "is inside --data" in err and err.count("\n") == 1
    assert not (folder / "report" / "index.html").exists()
