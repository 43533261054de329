"""The docs site (issue 30): ``bash scripts/docs.sh`` builds it offline; it opens from file:// with no request outside it.

The build runs once per module (executed notebooks are shared with tests/tools/test_notebooks.py,
see scripts/docs_notebooks.py); it prints its time and size. The browser test opens every page in
headless Chromium with every request recorded and anything outside the site's folder refused, and
checks the explorer's saved views in the notebook pages, the embedded interactive report (a click
changes its map) and, when the ``saliency-widget atlas`` command exists, the embedded atlas.
Screenshots: artifacts/docs/*.png.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import browser_page, in_ci
from tests.helpers import REPO_ROOT

SITE = REPO_ROOT / "docs" / "_build" / "html"
SHOTS = REPO_ROOT / "artifacts" / "docs"
GUIDE = sorted(p.stem for p in (REPO_ROOT / "docs").glob("*.md") if p.stem != "index")
NOTEBOOKS = sorted(p.stem for p in (REPO_ROOT / "example_notebooks").glob("*.ipynb"))


def _atlas_command() -> bool:
    res = subprocess.run([sys.executable, "-m", "saliency_widget.cli", "atlas", "--help"], capture_output=True, timeout=120)
    return res.returncode == 0


@pytest.fixture(scope="module")
def site() -> Path:
    try:
        import furo  # noqa: F401
        import myst_nb  # noqa: F401
        import sphinx  # noqa: F401
    except ImportError as e:
        if in_ci():
            pytest.fail(f"the docs extra is not installed ({e}); scripts/setup.sh test installs it")
        pytest.skip(f"the docs extra is not installed ({e}): .venv/bin/pip install -e '.[docs]'")
    t0 = time.perf_counter()
    res = subprocess.run(["bash", "scripts/docs.sh"], cwd=REPO_ROOT, env={**os.environ, "PYTHON": sys.executable},
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, f"scripts/docs.sh failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    size = sum(f.stat().st_size for f in SITE.rglob("*") if f.is_file())
    print(f"\ndocs build: {time.perf_counter() - t0:.0f} s, {size / 1e6:.1f} MB, "
          f"{sum(1 for _ in SITE.rglob('*.html'))} HTML files\n{res.stdout[-1500:]}")
    return SITE


def _pages(site: Path) -> list[Path]:
    skip = {"_modules", "_sources", "_static", "report", "atlas"}
    return sorted(p for p in site.rglob("*.html") if not skip & set(p.relative_to(site).parts))


@pytest.mark.slow
def test_site_has_the_guide_the_api_and_the_executed_notebooks(site: Path) -> None:
    assert (site / "index.html").exists()
    index = (site / "index.html").read_text()
    assert "The engine in five lines" in index and "explorer_1366.png" in index  # the README, with its screenshot
    for name in GUIDE:
        assert (site / f"{name}.html").exists(), f"docs/{name}.md has no page"
        assert f'href="{name}.html"' in index, f"the navigation misses {name}"
    api = (site / "api.html").read_text()
    for obj in ("saliency_widget.engine.saliency", "saliency_widget.engine.Explainer", "saliency_widget.explore",
                "saliency_widget.analysis.mine", "saliency_widget.viz.report.render_report", "saliency_widget.errors.InputError"):
        assert f'id="{obj}"' in api, f"the API reference misses {obj}"
    assert "Parameters" in api and "Returns" in api  # numpy sections rendered
    for nb in NOTEBOOKS:
        page = site / "_generated" / "notebooks" / f"{nb}.html"
        assert page.exists(), f"{nb} has no page"
        assert 'class="cell_output' in page.read_text(), f"{nb}'s page shows no outputs (not executed?)"
    quick = (site / "_generated" / "notebooks" / "01_quickstart.html").read_text()
    assert quick.count("saved view of the saliency explorer") >= 1 and "data:image/png;base64," in quick
    assert "widget-state+json" not in quick  # the explorer's views need bqplot / anywidget: its saved view shows it
    for nb in ("02_relu_rules", "03_transposed_convolution"):  # ipywidgets only: drawn from the saved state
        page = (site / "_generated" / "notebooks" / f"{nb}.html").read_text()
        assert "widget-state+json" in page and "_static/widgets/embed.js" in page
    assert (site / "report" / "star.html").exists()


@pytest.mark.slow
def test_no_page_or_stylesheet_names_an_outside_resource(site: Path) -> None:
    """Scripts, stylesheets, images, frames and fonts all come from the site's folder (links to papers are fine)."""
    outside = re.compile(r"""(?:<script[^>]*\ssrc|<link[^>]*\shref|<img[^>]*\ssrc|<iframe[^>]*\ssrc|<source[^>]*\ssrc)=["']?(?:https?:)?//""", re.I)
    css_url = re.compile(r"""url\(\s*["']?(?:https?:)?//""", re.I)
    bad = []
    for f in site.rglob("*"):
        if f.suffix in (".html", ".css") and f.is_file():
            text = f.read_text(errors="replace")
            if (outside if f.suffix == ".html" else css_url).search(text) or (f.suffix == ".html" and "<style" in text and css_url.search(text)):
                bad.append(str(f.relative_to(site)))
    assert bad == []


def _watch(page: Any, site: Path, requests: list[str], problems: list[str]) -> None:
    root = site.as_uri() + "/"
    page.context.route("**/*", lambda r: (requests.append(r.request.url),
                                          r.continue_() if r.request.url.startswith(root) else r.abort()))
    page.on("console", lambda m: problems.append(f"{page.url}: {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"{page.url}: pageerror: {e}"))


@pytest.mark.slow
@pytest.mark.browser
def test_site_opens_from_file_offline(site: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    requests: list[str] = []
    problems: list[str] = []
    pages = _pages(site)
    with browser_page(offline=True, viewport={"width": 1280, "height": 900}) as page:
        _watch(page, site, requests, problems)
        for p in pages:  # every page of the site: no console error, nothing from outside
            page.goto(p.as_uri(), wait_until="load")

        # the explorer's saved view: the picture of its last state, drawn in the notebook page
        page.goto((site / "_generated" / "notebooks" / "01_quickstart.html").as_uri(), wait_until="load")
        views = page.locator(".sw-saved-view img")
        assert views.count() >= 1
        for i in range(views.count()):
            img = views.nth(i)
            img.scroll_into_view_if_needed()
            assert img.evaluate("i => i.complete && i.naturalWidth > 100"), "a saved view did not decode"
            assert img.bounding_box()["height"] > 100, "a saved view is hidden"
        page.screenshot(path=str(SHOTS / "notebook_01.png"))

        # the classroom explorers (ipywidgets' own models): drawn from their saved state by the bundled manager
        for nb in ("02_relu_rules", "03_transposed_convolution"):
            page.goto((site / "_generated" / "notebooks" / f"{nb}.html").as_uri(), wait_until="load")
            widget = page.locator(".cell_output .jupyter-widgets.widget-vbox").first
            widget.wait_for(timeout=30000)
            widget.scroll_into_view_if_needed()
            box = widget.bounding_box()
            assert box is not None and box["height"] > 150, f"{nb}: the saved widget view did not render"
            assert page.locator(".cell_output .widget-html-content table, .cell_output .widget-html-content svg, "
                                ".cell_output .widget-html-content img").count() > 0, f"{nb}: the widget shows no grid"
            page.screenshot(path=str(SHOTS / f"notebook_{nb[:2]}.png"))

        # the embedded interactive report: it renders, and a click changes its state and its map
        page.goto((site / "embedded.html").as_uri(), wait_until="load")
        report = page.frame_locator("#sw-report")
        report.locator(".sw-viewer[data-sw-ready=yes]").wait_for(timeout=30000)
        before = report.locator(".sw-viewer canvas[data-panel=map]").evaluate("c => c.toDataURL()")
        report.locator(".sw-methods [data-method=deconvnet]").click()
        assert '"method":"deconvnet"' in report.locator(".sw-viewer").get_attribute("data-state").replace(" ", "")
        assert report.locator(".sw-viewer canvas[data-panel=map]").evaluate("c => c.toDataURL()") != before
        page.locator("#sw-report").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "embedded_report.png"))

        # the embedded atlas, once the command exists; until then the page says so
        if _atlas_command():
            assert (site / "atlas" / "index.html").exists()
            atlas = page.frame_locator("#sw-atlas")
            thumb = atlas.locator("a.cell img").first
            thumb.wait_for(timeout=30000)
            assert thumb.evaluate("i => i.decode().then(() => i.naturalWidth > 0)"), "an atlas thumbnail did not decode"
            page.locator("#sw-atlas").scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "embedded_atlas.png"))
            frame = page.frame(url=re.compile(r"/atlas/index\.html"))
            assert frame is not None
            frame.locator("a.cell").first.click()  # a filter's thumbnail in the index
            frame.wait_for_url(re.compile(r"/atlas/.+/c\d{4}\.html$"), timeout=30000)
            frame.wait_for_load_state("load")
            assert frame.locator("img").count() >= 9, "the filter page shows no top-9"
            page.screenshot(path=str(SHOTS / "embedded_atlas_filter.png"))
        else:
            assert "This build has no atlas" in page.content()
    outside = [u for u in requests if not u.startswith(site.as_uri() + "/")]
    assert outside == [], f"requests outside the site: {sorted(set(outside))[:10]}"
    assert problems == []
    assert len(pages) >= len(GUIDE) + len(NOTEBOOKS)
