"""``saliency-widget render --interactive``: one page to click offline, its size printed; bad flags are one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from saliency_widget.cli import main


@pytest.mark.slow
def test_render_interactive_writes_the_page_and_prints_its_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "star.html"
    args = ["render", "sample:shapes_star", "--interactive", "--methods", "gradient,gradcam", "--topk", "2",
            "--layers", "features.relu5", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr()
    assert f"wrote {out}" in printed.out
    assert re.search(r"size: \d+\.\d\d MB page \(within the 5\.00 MB budget\)", printed.out)
    assert "shapes_star: gradient x 2 classes" in printed.err  # progress goes to stderr
    page = out.read_text(encoding="utf-8")
    manifest = json.loads(re.search(r"<script type='application/json' class='sw-manifest'>(.*?)</script>", page).group(1))  # type: ignore[union-attr]
    image = manifest["images"][0]
    assert image["methods"] == ["gradient", "gradcam"] and len(image["classes"]) == 2
    assert [e["key"] for e in image["layers"]] == ["features.relu5"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "grid.png"], "--interactive writes an HTML page; give --out a name ending in .html, not 'grid.png'"),
        (["--topk", "0"], "--topk must be at least 1, got 0"),
    ],
)
def test_bad_interactive_flags_are_one_line_errors(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["render", "sample:shapes_star", "--interactive", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
