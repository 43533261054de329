"""The explorer fits a laptop (issue 17, item 4): at 1366x768 in JupyterLab no horizontal overflow,
every method button in sight (wrapped onto at most two rows, never a hidden sideways scroll), the input and the feature map on screen together, and the map
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

from saliency_widget.engine import available_methods

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
  const buttons = [...document.querySelectorAll('.sw-method button')];
  const tops = buttons.map(b => Math.round(b.getBoundingClientRect().top));
  // a method button is out of reach when it sticks out of the explorer or of its (scrolling) box
  const holder = document.querySelector('.sw-method > div').getBoundingClientRect();
  const out = buttons.filter(b => { const q = b.getBoundingClientRect();
    return q.width === 0 || q.left < Math.max(r.left, holder.left) - 1 || q.right > Math.min(r.right, holder.right) + 1; });
  return {
    map: box('.sw-map-image'), input: box('img.sw-input-image'), feature: box('canvas.sw-fm-canvas'),
    projection: box('.sw-projection-image'), explorer: [r.left, r.top, r.width, r.height],
    scroll_w: ex.scrollWidth, client_w: ex.clientWidth, area_right: area.getBoundingClientRect().right,
    right: r.right, method_rows: new Set(tops).size, page_scroll_w: document.documentElement.scrollWidth,
    method_count: buttons.length, method_out: out.map(b => b.textContent),
    method_scroll: [document.querySelector('.sw-method > div').scrollWidth, document.querySelector('.sw-method > div').clientWidth],
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
    # every method button in sight: none cut off or behind a sideways scroll, on at most two rows
    assert g["method_count"] == len(available_methods()) and g["method_out"] == [], g
    assert g["method_scroll"][0] <= g["method_scroll"][1] + 1, g
    assert g["method_rows"] <= 2, g


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
            page.locator("canvas.sw-fm-canvas").scroll_into_view_if_needed()  # a bar click may have scrolled it away
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


# ---------------------------------------------------------------------------------------------
# Issue 29 item 2: at 1366x768 in Lab with the file browser open, what talks to the user is on
# the first screen: the status line, the busy state (naming the new method) with its progress
# bar right above the map, an upload error next to the upload button, the whole class chart;
# and the channel grid selects a filter on a click.

SIDEBAR_SETUP = '''\
from saliency_widget.widget import explore
w = explore()
w.log_events("events.jsonl")
w
'''

# Rectangles (viewport coordinates) of what the user must see, and the notebook's visible box.
FIRST_SCREEN = """() => {
  const r = (e) => { if (!e) return null; const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
  const q = (s) => r(document.querySelector(s));
  const nb = document.querySelector('.jp-NotebookPanel-notebook');
  const side = document.querySelector('#jp-left-stack');
  return {
    notebook: r(nb), sidebar: side && !side.classList.contains('lm-mod-hidden') ? r(side) : null,
    filebrowser: !!document.querySelector('#filebrowser:not(.lm-mod-hidden)'),
    status: q('.sw-statusrow'), map: q('.sw-map-image'), upload: q('.sw-upload'), source: q('.sw-source'),
    bars: [...document.querySelectorAll('.sw-bars .bargroup')].map(r), layer: q('.sw-layer'),
    grid: q('.sw-cg-atlas'),
    methods: [...document.querySelectorAll('.sw-method button')].map(b => { const x = r(b);
      const hit = document.elementFromPoint((x[0] + x[2]) / 2, (x[1] + x[3]) / 2);
      return [...x, b.textContent.trim(), !!hit && b.contains(hit)]; }),
    method_scroll: [document.querySelector('.sw-method > div').scrollWidth, document.querySelector('.sw-method > div').clientWidth],
  };
}"""

# Click a button and record, the first moment the map is dimmed, its title, the status line and
# where the progress bar is (a MutationObserver sees even a brief state).
CLICK_SEE_BUSY = """async ([sel, label]) => {
  const b = [...document.querySelectorAll(sel + ' button')].find(b => b.textContent.trim() === label);
  const seen = {};
  return await new Promise((resolve, reject) => {
    const look = () => {
      const map = document.querySelector('.sw-map-image');
      if (map && map.classList.contains('sw-busy') && !seen.title) {
        seen.title = document.querySelector('.sw-map-title').innerText;
        seen.status = document.querySelector('.sw-status').innerText;
      }
      const p = document.querySelector('.sw-progress');
      if (p && p.offsetParent !== null && !seen.progress) {
        const b = p.getBoundingClientRect(); seen.progress = [b.left, b.top, b.right, b.bottom];
      }
      if (seen.title && seen.progress) { obs.disconnect(); resolve(seen); }
    };
    const obs = new MutationObserver(look);
    obs.observe(document.body, {subtree: true, attributes: true, childList: true, characterData: true});
    setTimeout(() => { obs.disconnect(); seen.title ? resolve(seen) : reject(new Error('no busy state within 20 s')); }, 20000);
    b.click();
  });
}"""


def _inside(box: list[float], screen: list[float]) -> bool:
    return box[1] >= screen[1] - 1 and box[3] <= screen[3] + 1 and box[0] >= screen[0] - 1 and box[2] <= screen[2] + 1


@pytest.mark.browser
@pytest.mark.slow
def test_first_screen_at_1366_with_the_file_browser_open(tmp_path: Path) -> None:
    import io

    from PIL import Image

    chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    numbers: dict[str, Any] = {}
    with jupyterlab(tmp_path) as lab:
        events = Events(lab.root / "events.jsonl")
        with browser_page(viewport={"width": 1366, "height": 768}) as page:
            run_notebook_in_lab(page, lab, "first_screen.ipynb", [SIDEBAR_SETUP])
            page.wait_for_selector(".sw-map-image", state="visible", timeout=120000)
            first = events.wait_for(lambda r: r["error"] is None, after=0, timeout=90, what="initial render")
            page.wait_for_selector(".sw-cg-atlas[src]", timeout=30000)
            if not page.evaluate(FIRST_SCREEN)["filebrowser"]:
                page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
            page.evaluate("() => document.querySelector('.sw-explorer').scrollIntoView({block: 'start'})")
            page.wait_for_timeout(600)
            g = page.evaluate(FIRST_SCREEN)
            numbers["first_screen"] = g
            page.screenshot(path=str(ARTIFACTS / "e2e_layout_1366_sidebar.png"))
            screen = g["notebook"]
            assert g["filebrowser"] and g["sidebar"] is not None and g["sidebar"][2] > 250, g  # the file browser is open
            for name in ("status", "map", "upload", "source", "layer"):
                assert _inside(g[name], screen), (name, g)
            assert g["status"][3] <= g["map"][1], g  # the status line is above the map
            # every method button on the first screen and clickable where it shows (no sideways scroll)
            assert len(g["methods"]) == len(available_methods()), g
            for m in g["methods"]:
                assert _inside(m[:4], screen) and m[5], (m, g)
            assert g["method_scroll"][0] <= g["method_scroll"][1] + 1, g
            numbers["method_rows"] = len({round(m[1]) for m in g["methods"]})
            assert len(g["bars"]) == 6 and all(_inside(b, screen) for b in g["bars"]), g  # every bar, none under the fold

            # the busy state names the method being computed, with its progress bar right above the map
            seq = events.last_seq()
            busy = page.evaluate(CLICK_SEE_BUSY, [".sw-view", "compare all"])
            numbers["busy_compare"] = busy
            assert "computing" in busy["status"] and "Gradient" in busy["title"] and "computing" in busy["title"], busy
            assert "progress" in busy and _inside(busy["progress"], screen) and busy["progress"][3] <= g["map"][1], busy
            events.wait_for(lambda r: r["state"]["view"] == "compare" and any(k.startswith("compare:") for k in r["images"]), after=seq, timeout=120, what="compare")
            page.wait_for_function("() => !document.querySelector('.sw-map-image.sw-busy')", timeout=60000)
            seq = events.last_seq()
            page.click(".sw-view button:text-is('single')")
            # the single view's render ends (it may recompute: a busy state starts after the click)
            events.wait_for(lambda r: r["state"]["view"] == "single", after=seq, timeout=120, what="single")
            page.wait_for_function("() => !document.querySelector('.sw-map-image.sw-busy')", timeout=60000)
            seq = events.last_seq()
            busy = page.evaluate(CLICK_SEE_BUSY, [".sw-method", "Occlusion"])
            numbers["busy_occlusion"] = busy
            assert busy["title"].startswith("Occlusion") and "Gradient" not in busy["title"], busy  # the new method, not the old one
            events.wait_for(lambda r: r["state"]["method"] == "occlusion" and r["error"] is None, after=seq, timeout=120, what="occlusion")
            page.wait_for_function("() => !document.querySelector('.sw-map-image.sw-busy')", timeout=60000)

            # an upload error shows next to the upload button, on the first screen, without a byte dump
            def upload(name: str, data: bytes) -> None:
                with page.expect_file_chooser() as chooser:
                    page.click("button.sw-upload")
                chooser.value.set_files(files=[{"name": name, "mimeType": "image/png", "buffer": data}])

            upload("notes.png", b"\x89PNG not really")
            page.wait_for_function("() => document.querySelector('.sw-source').innerText.includes('error')", timeout=30000)
            g = page.evaluate(FIRST_SCREEN)
            text = page.locator(".sw-source").inner_text()
            numbers["upload_error"] = {"text": text, "source": g["source"], "upload": g["upload"]}
            assert _inside(g["source"], screen) and abs(g["source"][1] - g["upload"][1]) < 12, g  # same row as the button
            assert "\\x" not in text and "b'" not in text, text
            # a good upload: its name and size there, no "(0)"/"(1)" count on the button
            buf = io.BytesIO()
            Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="PNG")
            seq = events.last_seq()
            upload("red.png", buf.getvalue())
            page.wait_for_function("() => document.querySelector('.sw-source').innerText.includes('red.png')", timeout=30000)
            events.wait_for(lambda r: r["error"] is None, after=seq, timeout=60, what="uploaded image")
            assert f"{len(buf.getvalue())} B" in page.locator(".sw-source").inner_text() or "KB" in page.locator(".sw-source").inner_text()
            label = page.evaluate("() => { const b = document.querySelector('button.sw-upload');"
                                  " return [getComputedStyle(b).fontSize, getComputedStyle(b, '::after').content]; }")
            assert label == ["0px", '"upload image"'], label

            # the channel grid: a click on the fourth thumbnail selects filter 3
            page.wait_for_function("() => !document.querySelector('.sw-map-image.sw-busy')", timeout=60000)
            page.wait_for_timeout(300)
            cols = page.evaluate("() => Number(document.querySelector('.sw-cg-info').innerText.split(' ')[0])")
            box = page.locator(".sw-cg-atlas").bounding_box()
            shape = page.evaluate("() => [...document.querySelectorAll('.sw-channel-grid')].map(e => e.dataset.count)")
            assert cols == 64 and shape == ["64"], (cols, shape)  # features.relu5 of the bundled model
            seq = events.last_seq()
            page.mouse.click(box["x"] + box["width"] * (3.5 / 16), box["y"] + 6)
            events.wait_for(lambda r: r["state"]["channel"] == 3, after=seq, timeout=60, what="filter 3 from the grid")
            page.wait_for_function("() => document.querySelector('.sw-channel-grid').dataset.selected === '3'", timeout=10000)
            numbers["first_render_ms"] = first["ms"]
    (ARTIFACTS / "e2e_layout_sidebar.json").write_text(json.dumps(numbers, indent=1))
