"""``saliency-widget render --data DIR --out OUT_DIR``: batch reports over a folder, sharded, merged into index.html.

Six seeded 12 px PNGs in a nested folder, the bundled shapes model, the three default methods.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from saliency_widget.cli import main, render_folder
from saliency_widget.errors import InputError
from saliency_widget.viz.batch import PART_VERSION, merge_parts, read_parts, write_part
from saliency_widget.viz.report import render_report
from tests.helpers import REPO_ROOT

FILES = ("a/1.png", "a/b/2.png", "a/b/3.png", "c/4.png", "c/5.png", "6.png")
ORDER = ["6.png", "a/1.png", "a/b/2.png", "a/b/3.png", "c/4.png", "c/5.png"]  # sorted relative paths
ROW = re.compile(r"<tr id='img-(\d+)'><td>\d+</td><td><a href=\"([^\"]+)\">([^<]+)</a></td><td><img src=\"data:image/png;base64,([^\"]+)\"")


def _folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(root / rel)
    return root


def _rows(index: Path) -> list[tuple[int, str, str, bytes]]:
    """(index, href, path, PNG bytes) of every row of an index page."""
    return [(int(i), href, path, base64.b64decode(b64)) for i, href, path, b64 in ROW.findall(index.read_text(encoding="utf-8"))]


def _without_timings(text: str) -> str:
    text = re.sub(r"made by saliency-widget on [^;]+;", "", text)
    return re.sub(r"<p class='sw-timing'[^>]*>[^<]*</p>", "", text)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _folder(tmp_path_factory.mktemp("imgs"))


@pytest.fixture(scope="module")
def single(images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One process through the command line."""
    out = tmp_path_factory.mktemp("one") / "report"
    assert main(["render", "--data", str(images), "--out", str(out)]) == 0
    return out


def test_index_lists_every_image_once_in_folder_order(single: Path) -> None:
    rows = _rows(single / "index.html")
    assert [(i, href, path) for i, href, path, _ in rows] == [(i, f"pages/{rel}.html", rel) for i, rel in enumerate(ORDER)]
    assert len({png for *_, png in rows}) == 6
    assert all((single / href).is_file() for _, href, _, _ in rows)
    assert "<script" not in (single / "index.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in (single / "parts").iterdir()) == ["rank-0-of-1.json"]


@pytest.mark.parametrize("position", [0, 3])
def test_index_row_holds_that_images_maps(single: Path, images: Path, position: int) -> None:
    rel = ORDER[position]
    reference = render_report([images / rel], None, None, None, names=[rel], title=f"saliency-widget: {rel}")
    assert _rows(single / "index.html")[position][3] == reference.png
    page = (single / "pages" / f"{rel}.html").read_text(encoding="utf-8")
    assert _without_timings(page) == _without_timings(reference.html)


def test_two_shards_cover_every_image_once_and_merge_like_one(single: Path, images: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert render_folder(str(images), out, shard=(1, 2)) is None
    assert not (out / "index.html").exists()  # an explicit share never merges
    assert render_folder(str(images), out, shard=(0, 2)) is None
    parts = read_parts(out)
    assert [[e["index"] for e in p["images"]] for p in parts] == [[0, 2, 4], [1, 3, 5]]
    assert [[e["path"] for e in p["images"]] for p in parts] == [["6.png", "a/b/2.png", "c/4.png"], ["a/1.png", "a/b/3.png", "c/5.png"]]
    index = merge_parts(out)
    assert _without_timings(index.read_text(encoding="utf-8")) == _without_timings((single / "index.html").read_text(encoding="utf-8"))
    assert "on 2 process(es)" in index.read_text(encoding="utf-8")


def _part(rank: int, world: int, indices: list[int], n: int = 3, identity: str = "x") -> dict[str, object]:
    images = [{"index": i, "path": f"{i}.png", "page": f"pages/{i}.png.html", "grid": f"pages/{i}.png.png"} for i in indices]
    return {"version": PART_VERSION, "rank": rank, "world": world, "n": n, "identity": identity, "settings": {}, "images": images, "seconds": 0.0}


@pytest.mark.parametrize(
    ("parts", "world", "message"),
    [
        ([], None, "no part files (parts/rank-K-of-W.json)"),
        ([_part(0, 2, [0, 2])], None, "part files of rank(s) [1] of 2 are missing"),
        ([_part(0, 2, [0, 2]), _part(1, 2, [1, 2])], None, "exactly once; missing [], repeated [2]"),
        ([_part(0, 2, [0]), _part(1, 2, [1])], None, "exactly once; missing [2], repeated []"),
        ([_part(0, 2, [0, 2]), _part(1, 2, [1], identity="y")], None, "differ from rank 0 in 'identity'"),
        ([_part(0, 1, [0, 1, 2]), _part(0, 2, [0, 2]), _part(1, 2, [1])], None, "parts of runs on [1, 2] processes; pass world="),
        ([_part(0, 1, [0, 1, 2])], 2, "rank(s) [0, 1] of 2 are missing"),
    ],
)
def test_merge_refuses_incomplete_or_mixed_parts(parts: list[dict[str, object]], world: int | None, message: str, tmp_path: Path) -> None:
    for p in parts:
        write_part(tmp_path, p)
    with pytest.raises(InputError, match=re.escape(message)):
        merge_parts(tmp_path, world)


def test_merge_reads_a_consistent_mixed_world_folder_by_world(tmp_path: Path) -> None:
    for p in (_part(0, 1, [0, 1, 2]), _part(0, 2, [0, 2]), _part(1, 2, [1])):
        write_part(tmp_path, p)
    assert [[e["index"] for e in p["images"]] for p in read_parts(tmp_path, 2)] == [[0, 2], [1]]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("empty", "no image files (.jpg, .jpeg, .png"),
        ("file", "is not a folder; give a folder of images"),
        ("missing", "is not a folder; give a folder of images"),
        ("png-out", "with --data, --out is a folder (it gets index.html, pages/ and parts/), not"),
        ("file-out", "is a file; with --data give a folder"),
        ("both", "give either IMAGE arguments or --data DIR, not both"),
    ],
)
def test_folder_errors_are_one_line(case: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("x")
    data = {"empty": tmp_path / "empty", "file": tmp_path / "notes.txt", "missing": tmp_path / "nope"}.get(case, tmp_path / "empty")
    out = {"png-out": tmp_path / "grid.png", "file-out": tmp_path / "notes.txt"}.get(case, tmp_path / "out")
    extra = ["sample:shapes_star"] if case == "both" else []
    assert main(["render", *extra, "--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("saliency-widget: error: ") and message in err


def test_help_documents_data_and_torchrun(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    text = capsys.readouterr().out
    assert "--data DIR" in text and "torchrun --nproc_per_node=4 -m saliency_widget.cli render --data" in text


@pytest.mark.slow
def test_torchrun_two_processes_equal_one(single: Path, images: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "saliency_widget.cli", "render", "--data", str(images), "--out", str(out)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on 2 process(es)" in proc.stdout
    assert sorted(p.name for p in (out / "parts").iterdir()) == ["rank-0-of-2.json", "rank-1-of-2.json"]
    assert [len(json.loads((out / "parts" / f"rank-{r}-of-2.json").read_text())["images"]) for r in (0, 1)] == [3, 3]
    two, one = (_without_timings(p.read_text(encoding="utf-8")) for p in (out / "index.html", single / "index.html"))
    assert two == one
    assert [(out / "pages" / f"{rel}.png").read_bytes() for rel in ORDER] == [(single / "pages" / f"{rel}.png").read_bytes() for rel in ORDER]


def test_index_quotes_links_and_escapes_names(tmp_path: Path) -> None:
    rel = "a b/<x>#1.png"
    (tmp_path / "pages" / "a b").mkdir(parents=True)
    (tmp_path / "pages" / f"{rel}.png").write_bytes(b"PNG-bytes")
    write_part(tmp_path, _part(0, 1, [], n=1) | {"images": [{"index": 0, "path": rel, "page": f"pages/{rel}.html", "grid": f"pages/{rel}.png"}]})
    text = merge_parts(tmp_path).read_text(encoding="utf-8")
    assert '<a href="pages/a%20b/%3Cx%3E%231.png.html">a b/&lt;x&gt;#1.png</a>' in text
    assert 'src="data:image/png;base64,UE5HLWJ5dGVz" alt="a b/&lt;x&gt;#1.png"' in text  # base64 of b"PNG-bytes"
