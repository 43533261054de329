"""The atlas opened from file:// in headless Chromium: no console error, no request outside the folder, clicks reach pages.

Screenshots: artifacts/atlas/*.png.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import browser_page
from tests.helpers import REPO_ROOT

from .conftest import CHANNELS, LAYERS

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SHOTS = REPO_ROOT / "artifacts" / "atlas"


class Watch:
    """Every request and console error of a page."""

    def __init__(self, page: Any, site: Path) -> None:
        self.prefix = site.resolve().as_uri() + "/"
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def check(self) -> None:
        assert self.errors == []
        assert [u for u in self.requests if not u.startswith(self.prefix)] == []


def _images_ok(page: Any) -> None:
    broken = page.evaluate("() => [...document.images].filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.src)")
    assert broken == []


def test_every_page_opens_offline_without_errors(site: Path) -> None:
    man = json.loads((site / "atlas.json").read_text())
    pages = ["index.html"] + [v["page"] for v in man["layers"].values()] + [f["page"] for v in man["layers"].values() for f in v["filters"]]
    with browser_page(offline=True, viewport={"width": 1200, "height": 900}) as page:
        watch = Watch(page, site)
        for rel in pages:
            page.goto((site / rel).resolve().as_uri())
            _images_ok(page)
        watch.check()
    assert len(watch.requests) > len(pages)  # the pages' images were requested (and all from the folder)


def test_click_from_the_index_reaches_a_filter_page_and_the_jump_box_and_deep_links_work(site: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with browser_page(offline=True, viewport={"width": 1200, "height": 900}) as page:
        watch = Watch(page, site)
        page.goto((site / "index.html").resolve().as_uri())
        page.screenshot(path=str(SHOTS / "index.png"))
        page.click(f"section[id='{LAYERS[1]}'] a.cell >> nth=5")
        page.wait_for_url("**/layers/features.relu2/c0005.html")
        assert page.inner_text("h1") == "features.relu2 · filter 5"
        _images_ok(page)
        page.screenshot(path=str(SHOTS / "filter.png"), full_page=True)
        page.click("a[rel=next]")
        page.wait_for_url("**/c0006.html")
        page.keyboard.press("ArrowLeft")
        page.wait_for_url("**/c0005.html")
        page.select_option("select[name=layer]", LAYERS[0])
        page.fill("input[name=filter]", str(CHANNELS[LAYERS[0]]))  # one past the last filter
        page.click("form.jump button")
        assert page.inner_text("form.jump .msg") == f"filter 16 is not in {LAYERS[0]} (filters 0..15)"
        page.fill("input[name=filter]", "12")
        page.click("form.jump button")
        page.wait_for_url("**/layers/features.relu1/c0012.html")
        page.goto((site / "index.html").resolve().as_uri() + "#features.relu1/3")  # the hash deep link
        page.wait_for_url("**/layers/features.relu1/c0003.html")
        page.click("header nav a >> text=features.relu1")
        page.wait_for_url("**/layers/features.relu1/index.html")
        page.click("a.cell >> nth=2")
        page.wait_for_url("**/layers/features.relu1/c0002.html")
        watch.check()
