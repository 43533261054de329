"""The feature-map canvas (anywidget ES module js/feature_map.js) in headless Chromium with a fake model."""

from __future__ import annotations

import io
import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from tests.browser.harness import browser_page
from tests.helpers import REPO_ROOT

JS = REPO_ROOT / "js" / "feature_map.js"

# A fake anywidget model: get/set/save_changes/on/off/send plus bookkeeping for asserts.
FAKE_MODEL = """
window.makeModel = (state) => {
  const listeners = {};
  const m = {
    state, sent: [], saved: [], setCalls: [],
    get(k) { return state[k]; },
    set(k, v) { state[k] = v; m.setCalls.push(k); },
    save_changes() { m.saved.push(JSON.parse(JSON.stringify(state.click || {}))); },
    on(ev, cb) { (listeners[ev] ||= new Set()).add(cb); },
    off(ev, cb) { listeners[ev] && listeners[ev].delete(cb); },
    send(msg) { m.sent.push(msg); },
    emit(ev, ...args) { for (const cb of [...(listeners[ev] || [])]) cb(...args); },
    listenerCount() { return Object.values(listeners).reduce((a, s) => a + s.size, 0); },
  };
  return m;
};
"""

PAGE = "<!doctype html><html><body><div id='host'></div><script>" + FAKE_MODEL + "</script></body></html>"


def _png(rgb: np.ndarray) -> list[int]:
    buf = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buf, format="PNG")
    return list(buf.getvalue())


@pytest.mark.browser
def test_feature_map_module_renders_clicks_and_cleans_up() -> None:
    grid = np.zeros((3, 4, 3), np.uint8)
    grid[..., 0] = np.arange(4)[None, :] * 60  # distinct colour per cell
    grid[..., 1] = np.arange(3)[:, None] * 100
    grid[1, 2] = (250, 250, 0)
    source = JS.read_text(encoding="utf-8")
    with browser_page() as page:
        page.route("http://sw.test/index.html", lambda r: r.fulfill(status=200, content_type="text/html", body=PAGE))
        page.route("http://sw.test/feature_map.js", lambda r: r.fulfill(status=200, content_type="text/javascript", body=source))
        page.goto("http://sw.test/index.html")
        page.evaluate(
            """async (png) => {
                const mod = await import('/feature_map.js');
                const bytes = new Uint8Array(png);
                window.model = makeModel({png: new DataView(bytes.buffer), grid: [3, 4], marker: [],
                                          caption: 'max 1 at (1, 2)', size: 200, click: {}});
                window.el = document.getElementById('host');
                window.cleanup = mod.default.render({model: window.model, el: window.el});
            }""",
            _png(grid),
        )
        page.wait_for_function("() => Number(document.querySelector('canvas.sw-fm-canvas')?.dataset.paints || 0) >= 1", timeout=10000)
        assert page.evaluate("typeof window.cleanup") == "function"
        # The canvas is not blank and shows the PNG's cells where they belong.
        info = page.evaluate(
            """() => {
                const c = document.querySelector('canvas.sw-fm-canvas');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                const colours = new Set();
                for (let i = 0; i < d.length; i += 4) colours.add(d[i] + ',' + d[i+1] + ',' + d[i+2]);
                const cw = c.width / 4, ch = c.height / 3;
                const at = (y, x) => Array.from(c.getContext('2d').getImageData(Math.floor((x + 0.5) * cw), Math.floor((y + 0.5) * ch), 1, 1).data.slice(0, 3));
                return {w: c.width, h: c.height, colours: colours.size, cell12: at(1, 2), cell00: at(0, 0)};
            }"""
        )
        assert info["w"] == 200 and info["h"] == 150
        assert info["colours"] >= 12
        assert info["cell12"] == [250, 250, 0] and info["cell00"] == [0, 0, 0]
        assert page.text_content(".sw-fm-caption") == "max 1 at (1, 2)"

        # A click on cell (y=1, x=2) sets the `click` trait and saves it.
        box = page.locator("canvas.sw-fm-canvas").bounding_box()
        page.mouse.click(box["x"] + box["width"] * (2.5 / 4), box["y"] + box["height"] * (1.5 / 3))
        page.wait_for_function("() => window.model.saved.length >= 1", timeout=5000)
        assert page.evaluate("window.model.state.click") == {"y": 1, "x": 2, "seq": 1}
        assert page.evaluate("window.model.saved") == [{"y": 1, "x": 2, "seq": 1}]

        # The caption is text, never HTML.
        page.evaluate("() => { model.state.caption = '<img src=x onerror=alert(1)>'; model.emit('change:caption'); }")
        assert page.locator(".sw-fm-caption img").count() == 0
        assert page.text_content(".sw-fm-caption") == "<img src=x onerror=alert(1)>"

        # Double-click sends a command with an id, naming the click it follows (its first click;
        # the second click sends nothing); an error reply is shown.
        page.locator("canvas.sw-fm-canvas").dblclick()
        page.wait_for_function("() => window.model.sent.length >= 1", timeout=5000)
        msg = page.evaluate("window.model.sent[0]")
        assert msg["type"] == "cmd" and msg["cmd"] == "strongest" and msg["id"]
        assert [c["seq"] for c in page.evaluate("window.model.saved")] == [1, 2]
        assert msg["after_click"] == 2
        page.evaluate("(id) => model.emit('msg:custom', {type: 'reply', id, ok: false, error: 'no layer'})", msg["id"])
        page.wait_for_function("() => document.querySelector('.sw-fm-caption').textContent.includes('no layer')", timeout=5000)

        # Cleanup removes model listeners, DOM listeners and the DOM.
        assert page.evaluate("window.model.listenerCount()") > 0
        saved_before = page.evaluate("window.model.saved.length")
        page.evaluate("() => { window.detached = document.querySelector('canvas.sw-fm-canvas'); window.cleanup(); }")
        assert page.evaluate("window.model.listenerCount()") == 0
        assert page.locator("canvas.sw-fm-canvas").count() == 0
        page.evaluate("() => window.detached.dispatchEvent(new MouseEvent('click', {clientX: 5, clientY: 5}))")
        assert page.evaluate("window.model.saved.length") == saved_before  # listener removed


def test_esm_found_in_source_checkout() -> None:
    from saliency_widget.widget.canvas import FeatureMapCanvas, esm_path

    p = esm_path()
    assert p.is_file() and p.read_text(encoding="utf-8").strip()
    assert "export default" in FeatureMapCanvas._esm


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_esm_imports_under_node_and_exports_render() -> None:
    # The module is plain ESM with no imports: Node can load it without a DOM or a build step.
    code = "const m = (await import(process.argv[1])).default;" "console.log(JSON.stringify({keys: Object.keys(m), render: typeof m.render}))"
    out = subprocess.run(["node", "--input-type=module", "-e", code, JS.as_uri()], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == {"keys": ["render"], "render": "function"}


def test_esm_is_type_checked_with_jsdoc() -> None:
    # `// @ts-check` must stay the first line for editors and tsc --checkJs to check the JSDoc types.
    assert JS.read_text(encoding="utf-8").splitlines()[0] == "// @ts-check"


@pytest.mark.browser
def test_download_message_saves_the_bytes_as_a_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    png = _png(np.full((2, 3, 3), 7, np.uint8))
    source = JS.read_text(encoding="utf-8")
    with browser_page(accept_downloads=True) as page:
        page.route("http://sw.test/index.html", lambda r: r.fulfill(status=200, content_type="text/html", body=PAGE))
        page.route("http://sw.test/feature_map.js", lambda r: r.fulfill(status=200, content_type="text/javascript", body=source))
        page.goto("http://sw.test/index.html")
        page.evaluate(
            """async () => {
                const mod = await import('/feature_map.js');
                window.model = makeModel({png: null, grid: [1, 1], marker: [], caption: '', size: 50, click: {}});
                window.cleanup = mod.default.render({model: window.model, el: document.getElementById('host')});
            }"""
        )
        with page.expect_download(timeout=10000) as info:
            page.evaluate(
                """(png) => model.emit('msg:custom', {type: 'download', filename: 'view.png', mime: 'image/png'},
                                      [new DataView(new Uint8Array(png).buffer)])""",
                png,
            )
        download = info.value
        assert download.suggested_filename == "view.png"
        target = tmp_path / "view.png"
        download.save_as(str(target))
        assert list(target.read_bytes()) == png
        # other custom messages (command replies) are not downloads
        page.evaluate("() => model.emit('msg:custom', {type: 'reply', id: 'x', ok: true})")
        assert page.locator("a.sw-download-link").count() <= 1  # the link of the download above, removed after 1 s
        page.evaluate("() => window.cleanup()")
        assert page.evaluate("window.model.listenerCount()") == 0


# The caption the pipeline writes (views/pipeline.py feature_png), at the narrowest panel (style.PANEL_MIN).
CAPTION = "max 9.342 at (2, 4)   selected (2, 4) = 9.342"
LONG_CAPTION = "max 9.342 at (2, 4)   selected (12, 13) = -0.0001234"


@pytest.mark.browser
def test_caption_fits_a_narrow_panel_on_two_lines_with_the_full_text_on_hover() -> None:
    # Issue 29: at 1366 px the caption was cut to "max 9.342 at (2, 4)   selected…".
    from saliency_widget.widget.style import PANEL_MIN

    source = JS.read_text(encoding="utf-8")
    with browser_page() as page:
        page.route("http://sw.test/index.html", lambda r: r.fulfill(status=200, content_type="text/html", body=PAGE))
        page.route("http://sw.test/feature_map.js", lambda r: r.fulfill(status=200, content_type="text/javascript", body=source))
        page.goto("http://sw.test/index.html")
        page.evaluate(
            """async ([caption, width]) => {
                const mod = await import('/feature_map.js');
                const host = document.getElementById('host');
                host.style.width = width + 'px';
                window.model = makeModel({png: null, grid: [1, 1], marker: [], caption, size: width, click: {}});
                window.cleanup = mod.default.render({model: window.model, el: host});
            }""",
            [CAPTION, PANEL_MIN],
        )
        shown = """() => { const c = document.querySelector('.sw-fm-caption');
                           const parts = [...c.querySelectorAll('.sw-fm-part')];
                           return {text: c.textContent, title: c.title, height: c.getBoundingClientRect().height,
                                   width: c.getBoundingClientRect().width,
                                   parts: parts.map(p => [p.textContent, p.scrollWidth <= p.clientWidth + 1,
                                                          Math.round(p.getBoundingClientRect().top - c.getBoundingClientRect().top)])}; }"""
        got = page.evaluate(shown)
        assert got["text"] == CAPTION and got["title"] == CAPTION, got  # the full text, also on hover
        # as wide as the canvas (and its 1 px border), of fixed height: the rows below never move
        assert got["width"] <= PANEL_MIN + 2 and got["height"] == 34, got
        # both parts whole (no ellipsis), the second on the second line
        assert got["parts"] == [["max 9.342 at (2, 4)", True, 0], ["selected (2, 4) = 9.342", True, 17]], got
        # a part too wide for the narrowest panel ends in an ellipsis; the full text is the tooltip
        page.evaluate("(c) => { model.state.caption = c; model.emit('change:caption'); }", LONG_CAPTION)
        got = page.evaluate(shown)
        assert got["title"] == LONG_CAPTION and got["height"] == 34, got
        assert got["parts"] == [["max 9.342 at (2, 4)", True, 0], ["selected (12, 13) = -0.0001234", False, 17]], got
        # a short caption stays on one line, same height
        page.evaluate("() => { model.state.caption = 'this filter is all zeros on this image'; model.emit('change:caption'); }")
        got = page.evaluate(shown)
        assert got["height"] == 34 and got["title"] == "this filter is all zeros on this image", got
        page.evaluate("() => window.cleanup()")
