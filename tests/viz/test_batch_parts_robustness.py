"""Robustness round 3 (issue 26), batch reports: a part file is untrusted input to ``merge_parts``.

A part names its page and grid by a path relative to the output folder; a hand-edited, truncated
or hostile part must be one ``SaliencyError`` line naming the file or value, and must never make
the index read (and publish) a file outside the folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from saliency_widget.data.paths import contained
from saliency_widget.errors import InputError, SaliencyError
from saliency_widget.viz.batch import PART_VERSION, merge_parts, write_part

PNG = b"\x89PNG\r\n\x1a\nrow"


def _report(out: Path, grids: list[str] | None = None, n: int = 2) -> Path:
    """A merged-ready output folder: ``n`` images, their grid PNGs under pages/, one part of one process."""
    grids = grids or [f"pages/{i}.png.png" for i in range(n)]
    (out / "pages").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (out / "pages" / f"{i}.png.png").write_bytes(PNG)
    images = [{"index": i, "path": f"{i}.png", "page": f"pages/{i}.png.html", "grid": g} for i, g in enumerate(grids)]
    write_part(out, {"version": PART_VERSION, "rank": 0, "world": 1, "n": n, "identity": "x", "settings": {},
                     "images": images, "seconds": 0.5})
    return out


def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    assert isinstance(err.value, SaliencyError)
    text = str(err.value)
    assert "\n" not in text
    return text


def test_merge_parts_accepts_a_consistent_folder(tmp_path: Path) -> None:
    text = merge_parts(_report(tmp_path)).read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 2


@pytest.mark.parametrize("grid", ["../secret.txt", "pages/../../secret.txt", "/etc/passwd", "C:\\secret.txt", "\\\\host\\share\\x.png",
                                  "pages\\..\\..\\secret.txt", ""])
def test_merge_parts_never_reads_a_grid_outside_the_output_folder(tmp_path: Path, grid: str) -> None:
    """Item 1: a part with ``"grid": "../secret.txt"`` must not embed the secret into index.html."""
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    out = _report(tmp_path / "out", ["pages/0.png.png", grid])
    with pytest.raises(InputError) as err:
        merge_parts(out)
    assert repr(grid) in _one_line(err) and "rank-0-of-1.json" in str(err.value)
    assert not (out / "index.html").exists()


def test_merge_parts_never_follows_a_symlink_out_of_the_output_folder(tmp_path: Path) -> None:
    """Item 1: a grid inside the folder that is a symlink to a file outside it is refused too."""
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    out = _report(tmp_path / "out")
    os.symlink(tmp_path / "secret.txt", out / "pages" / "link.png")
    os.symlink(tmp_path, out / "pages" / "up")
    for grid in ("pages/link.png", "pages/up/secret.txt"):
        _report(out, ["pages/0.png.png", grid])
        with pytest.raises(InputError, match="resolves outside its folder") as err:
            merge_parts(out)
        assert repr(grid) in _one_line(err)
    assert not (out / "index.html").exists()


def test_merge_parts_refuses_a_page_link_outside_the_output_folder(tmp_path: Path) -> None:
    out = _report(tmp_path)
    part = json.loads((out / "parts" / "rank-0-of-1.json").read_text())
    part["images"][1]["page"] = "../../elsewhere.html"
    write_part(out, part)
    with pytest.raises(InputError, match=r"image 1 'page' '../../elsewhere.html' points outside") as err:
        merge_parts(out)
    _one_line(err)


def test_merge_parts_names_a_truncated_part_file(tmp_path: Path) -> None:
    """Item 11: a part JSON cut short (a killed writer, a full disk) is one line naming the file."""
    out = _report(tmp_path)
    f = out / "parts" / "rank-0-of-1.json"
    f.write_bytes(f.read_bytes()[:40])
    with pytest.raises(InputError, match=r"part file '.*rank-0-of-1.json' cannot be read \(") as err:
        merge_parts(out)
    _one_line(err)


def test_merge_parts_names_a_missing_grid_file(tmp_path: Path) -> None:
    """Item 11: a part whose grid PNG is gone (deleted, never written) is one line naming that grid."""
    out = _report(tmp_path)
    (out / "pages" / "1.png.png").unlink()
    with pytest.raises(InputError, match=r"the grid 'pages/1.png.png' of image 1 \('1.png'\) cannot be read") as err:
        merge_parts(out)
    _one_line(err)
    assert not (out / "index.html").exists()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: [], "holds list, not a JSON object"),
    (lambda p: p | {"rank": 1}, "says rank 1 of 1, its name rank 0 of 1"),
    (lambda p: p | {"n": "2"}, "lacks a valid 'n' (int)"),
    (lambda p: p | {"images": {"0": 1}}, "'images' (list)"),
    (lambda p: p | {"images": [None, None]}, "image entry 0 (None) needs an int 'index'"),
    (lambda p: p | {"images": [{"index": "0", "path": "0.png", "page": "p", "grid": "g"}]}, "image entry 0"),
    (lambda p: p | {"images": [{"index": 0, "path": "0.png", "page": "p", "grid": 7}]}, "image 0 'grid' 7 is not a relative file path"),
    (lambda p: p | {"seconds": "fast"}, "has 'seconds' 'fast'; expected a number"),
    (lambda p: p | {"n": 10**12}, "exactly once; missing [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]"),
])
def test_merge_parts_hand_edited_part_is_one_line(tmp_path: Path, edit: object, message: str) -> None:
    """A part edited by hand (wrong types, a lie about its rank, a hostile n) is one line, not a KeyError/TypeError/MemoryError."""
    out = _report(tmp_path)
    f = out / "parts" / "rank-0-of-1.json"
    f.write_text(json.dumps(edit(json.loads(f.read_text()))))  # type: ignore[operator]
    with pytest.raises(InputError) as err:
        merge_parts(out)
    assert message in _one_line(err)


def test_merge_parts_hostile_world_in_a_file_name_costs_nothing(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / f"rank-0-of-{10**12}.json").write_text("{}")
    with pytest.raises(InputError, match=r"rank\(s\) \[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\] of 1000000000000 are missing") as err:
        merge_parts(tmp_path)
    _one_line(err)


@pytest.mark.parametrize("rel", ["a.png", "pages/a b/x.png", "./pages/x.png"])
def test_contained_accepts_paths_inside(tmp_path: Path, rel: str) -> None:
    assert contained(tmp_path, rel) == tmp_path / rel


@pytest.mark.parametrize(("rel", "message"), [
    ("..", "points outside"), ("a/../../b", "points outside"), ("/abs", "points outside"), ("a\0b", "points outside"),
    (None, "is not a relative file path"), (" ", "is not a relative file path"), (["a"], "is not a relative file path"),
])
def test_contained_refuses_paths_outside(tmp_path: Path, rel: object, message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        contained(tmp_path, rel, "grid")
    assert _one_line(err).startswith(f"grid {rel!r} ")


def test_contained_refuses_a_symlink_loop(tmp_path: Path) -> None:
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    with pytest.raises(InputError, match="resolves outside its folder"):
        contained(tmp_path, "loop/x.png")


@pytest.mark.parametrize("world", [0, -1, "1", 1.0, True])
def test_merge_parts_refuses_a_world_that_is_not_a_positive_int(tmp_path: Path, world: object) -> None:
    with pytest.raises(InputError, match=r"world must be None .* or a positive int") as err:
        merge_parts(_report(tmp_path), world)  # type: ignore[arg-type]
    _one_line(err)
