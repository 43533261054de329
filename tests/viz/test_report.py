"""HTML reports (saliency_widget.viz.report): self-contained, render offline in Chromium, names escaped, captions."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from saliency_widget.cli import main
from saliency_widget.data import load_sample
from saliency_widget.viz.report import render_report


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


@pytest.mark.browser
def test_html_renders_offline_in_chromium(report_html: Path, tmp_path: Path) -> None:
    from tests.browser.harness import browser_page

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


def test_render_report_api_names_escaped(tmp_path: Path) -> None:
    img = load_sample("shapes_star")
    rep = render_report([img], names=["<img src=x onerror=alert(1)>"], methods=["deconvnet"], target="star")
    assert "<img src=x onerror" not in rep.html
    assert html.escape("<img src=x onerror=alert(1)>") in rep.html
    assert rep.save(tmp_path / "r.html").read_text() == rep.html


def test_report_captions_each_image_by_its_own_name() -> None:
    # regression: the class-label list once shadowed the captions from the second image on
    imgs = [load_sample("shapes_star"), load_sample("shapes_cross_ring"), load_sample("shapes_star_square")]
    rep = render_report(imgs, names=["first.png", "second.png", "third.png"], methods=["gradient"])
    for n in ("first.png", "second.png", "third.png"):
        assert f"<figcaption>{n}</figcaption>" in rep.html
