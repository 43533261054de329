"""The explorer fits a laptop (issue 17, item 4): at 1366x768 in JupyterLab no horizontal overflow,
the method selector on one row, the input and the feature map on screen together, and the map
does not move between renders (a long class name, a zero activation, another method); at
1920x1080 the images grow with the width.

Screenshots: artifacts/e2e_layout_1366.png, artifacts/e2e_layout_1366_zero.png,
artifacts/e2e_layout_1920.png; numbers in artifacts/e2e_layout.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .harness import browser_page, chromium_path
from .jupyterlab import jupyterlab, run_notebook_in_lab
from .renderlog import Events
from .test_e2e_jupyterlab import ARTIFACTS

LONG = "a remarkably long class name that would never fit on one title line"
SETUP = f'''\
from saliency_widget.data import CLASSES
from saliency_widget.models import shapes_cnn
from saliency_widget.widget import explore
labels = list(CLASSES)
labels[4] = {LONG!r}  # one long class name
w = explore(shapes_cnn(pretrained=True), labels=labels)
w.log_events("events.jsonl")
w
'''

# Geometry of the explorer, measured in the page: the map's box relative to the explorer's top
# left corner, overflow, and the method buttons' rows.
GEOMETRY = """() => {
  const ex = document.querySelector('.sw-explorer');
  const r = ex.getBoundingClientRect();
  const box = (sel) => { const b = document.querySelector(sel).getBoundingClientRect();
                         return [b.left - r.left, b.top - r.top, b.width, b.height]; };
  const area = ex.closest('.jp-OutputArea-output') || ex.parentElement;
  const tops = [...document.querySelectorAll('.sw-method button')].map(b => Math.round(b.getBoundingClientRect().top));
  return {
    map: box('.sw-map-image'), input: box('img.sw-input-image'), feature: box('canvas.sw-fm-canvas'),
    projection: box('.sw-projection-image'), explorer: [r.left, r.top, r.width, r.height],
    scroll_w: ex.scrollWidth, client_w: ex.clientWidth, area_right: area.getBoundingClientRect().right,
    right: r.right, method_rows: new Set(tops).size, page_scroll_w: document.documentElement.scrollWidth,
    viewport_w: window.innerWidth,
  };
}"""


def _settle(page: Any) -> dict[str, Any]:
    page.wait_for_function("() => !document.querySelector('.sw-map-image.sw-busy')", timeout=60000)
    page.wait_for_timeout(400)  # images decoded and laid out
    return page.evaluate(GEOMETRY)


def _no_overflow(g: dict[str, Any]) -> None:
    assert g["scroll_w"] <= g["client_w"] + 1, g  # nothing inside the explorer sticks out sideways
    assert g["right"] <= g["area_right"] + 1, g
    assert g["page_scroll_w"] <= g["viewport_w"], g
    assert g["method_rows"] == 1, g  # the method buttons never wrap onto two rows


@pytest.mark.browser
@pytest.mark.slow
def test_layout_at_1366_and_1920(tmp_path: Path) -> None:
    chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    numbers: dict[str, Any] = {}
    with jupyterlab(tmp_path) as lab:
        events = Events(lab.root / "events.jsonl")
        with browser_page(viewport={"width": 1366, "height": 768}) as page:
            run_notebook_in_lab(page, lab, "layout.ipynb", [SETUP])
            page.wait_for_selector(".sw-map-image", state="visible", timeout=120000)
            events.wait_for(lambda r: r["error"] is None, after=0, timeout=90, what="initial render")
            page.locator(".sw-explorer").scroll_into_view_if_needed()
            first = _settle(page)
            numbers["1366_first"] = first
            _no_overflow(first)
            page.screenshot(path=str(ARTIFACTS / "e2e_layout_1366.png"))
            # the input and the feature map side by side, both on screen (768 px high)
            assert abs(first["input"][1] - first["feature"][1]) < 30, first

            seen = [first]
            # another method
            seq = events.last_seq()
            page.click(".sw-method button:text-is('Grad-CAM')")
            events.wait_for(lambda r: r["state"]["method"] == "gradcam", after=seq, what="Grad-CAM")
            seen.append(_settle(page))
            # the long class name: its bar (the chart shows every class of the bundled model)
            # (the sample shows a star, class 4, renamed to the long name: the predicted class, bar 0)
            bars = page.locator(".sw-bars .bargroup")
            seq = events.last_seq()
            bars.nth(1).click()  # a short name ...
            rec = events.wait_for(lambda r: r["state"]["target"] not in (None, 4), after=seq, what="bar 1")
            seen.append(_settle(page))
            bars.nth(0).click()  # ... and the long one again
            events.wait_for(lambda r: r["state"]["target"] == 4, after=rec["seq"], what="bar 0, the long name")
            seen.append(_settle(page))
            assert page.locator(".sw-map-title").inner_text().startswith("Grad-CAM for a remarkably")
            # a zero activation: the darkest cell of the feature map -> an all-zero projection
            cell = page.evaluate(
                """() => { const c = document.querySelector('canvas.sw-fm-canvas');
                           const [gh, gw] = c.dataset.grid.split(',').map(Number);
                           const ctx = c.getContext('2d'); let best = null;
                           for (let y = 0; y < gh; y++) for (let x = 0; x < gw; x++) {
                             const px = ctx.getImageData(Math.floor((x + 0.5) * c.width / gw), Math.floor((y + 0.5) * c.height / gh), 1, 1).data;
                             if (!best || px[1] < best[0]) best = [px[1], y, x]; }
                           return [gh, gw, best[1], best[2]]; }"""
            )
            gh, gw, cy, cx = cell
            box = page.locator("canvas.sw-fm-canvas").bounding_box()
            seq = events.last_seq()
            page.mouse.click(box["x"] + box["width"] * (cx + 0.5) / gw, box["y"] + box["height"] * (cy + 0.5) / gh)
            rec = events.wait_for(lambda r: r["state"]["position"] == [cy, cx], after=seq, what="zero activation")
            seen.append(_settle(page))
            numbers["zero_activation_projection"] = not rec["nonblank"].get("projection", False)
            if numbers["zero_activation_projection"]:  # the frame stays, with the message on a placeholder
                page.wait_for_selector(".sw-projection-image .sw-mv-msg:not([hidden])", timeout=30000)
            page.screenshot(path=str(ARTIFACTS / "e2e_layout_1366_zero.png"))
            numbers["1366_renders"] = seen
            for g in seen:
                _no_overflow(g)
                assert g["map"] == first["map"], (g["map"], first["map"])  # not one pixel of shift
                assert g["projection"] == first["projection"], (g["projection"], first["projection"])

            page.set_viewport_size({"width": 1920, "height": 1080})
            wide = _settle(page)
            numbers["1920"] = wide
            _no_overflow(wide)
            page.screenshot(path=str(ARTIFACTS / "e2e_layout_1920.png"))
            assert wide["map"][2] > first["map"][2] and wide["map"][2] > 224, (wide["map"], first["map"])  # images grow
    (ARTIFACTS / "e2e_layout.json").write_text(json.dumps(numbers, indent=1))
