"""Reports and the command line: a self-contained HTML that renders offline, PNG grids, clear CLI errors."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from saliency_widget.cli import main
from saliency_widget.data import load_sample, sample_images
from saliency_widget.viz.report import render_report

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rep") / "report.html"
    assert main(["render", "sample:shapes_star", "sample:shapes_cross_ring", "--out", str(out)]) == 0
    return out


def test_html_is_self_contained(report_html: Path) -> None:
    text = report_html.read_text()
    assert text.startswith("<!DOCTYPE html>")
    srcs = re.findall(r'(?:src|href)="([^"]+)"', text)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script" not in text and "http://" not in text and "https://" not in text
    assert text.count("<img") == 2 * 4  # 2 images x (input + 3 methods)
    assert "star" in text and "guided_backprop" in text


def test_html_renders_offline_in_chromium(report_html: Path, tmp_path: Path) -> None:
    from browser.harness import browser_page

    requests: list[str] = []
    with browser_page(viewport={"width": 1100, "height": 900}, offline=True) as page:
        page.on("request", lambda r: requests.append(r.url))
        page.goto(report_html.as_uri())
        page.wait_for_load_state("load")
        loaded = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
    assert loaded and all(loaded), loaded
    left = [u for u in requests if not (u.startswith("file://") or u.startswith("data:"))]
    assert left == []
    a = np.asarray(Image.open(shot).convert("RGB"))
    assert a.std() > 10  # not blank


def test_png_grid(tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    assert main(["render", "sample:shapes_star", "--methods", "gradient,gradcam", "--out", str(out)]) == 0
    img = Image.open(out)
    assert img.format == "PNG" and img.width > 3 * 150 and img.height >= 160


def test_render_report_api_names_escaped(tmp_path: Path) -> None:
    img = load_sample("shapes_star")
    rep = render_report([img], names=["<img src=x onerror=alert(1)>"], methods=["deconvnet"], target="star")
    assert "<img src=x onerror" not in rep.html
    assert html.escape("<img src=x onerror=alert(1)>") in rep.html
    assert rep.save(tmp_path / "r.html").read_text() == rep.html


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
    res = subprocess.run([sys.executable, "-m", "saliency_widget.cli", "render", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0
    assert "sample:NAME" in res.stdout and "torchvision:NAME" in res.stdout and "--methods" in res.stdout


def test_cli_lists_samples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--list-samples"]) == 0
    assert set(capsys.readouterr().out.split()) == set(sample_images())


def test_explorer_to_html(tmp_path: Path) -> None:
    from saliency_widget.widget import explore

    w = explore()
    try:
        w.wait(60)
        page = w.to_html(tmp_path / "view.html")
        assert (tmp_path / "view.html").read_text() == page
        srcs = re.findall(r'src="([^"]+)"', page)
        assert len(srcs) >= 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
        assert "Class probabilities" in page and "<script" not in page
        for label in w.labels:
            assert html.escape(label) in page
    finally:
        w.close()


def test_report_captions_each_image_by_its_own_name() -> None:
    # regression: the class-label list once shadowed the captions from the second image on
    imgs = [load_sample("shapes_star"), load_sample("shapes_cross_ring"), load_sample("shapes_star_square")]
    rep = render_report(imgs, names=["first.png", "second.png", "third.png"], methods=["gradient"])
    for n in ("first.png", "second.png", "third.png"):
        assert f"<figcaption>{n}</figcaption>" in rep.html
