"""End to end: "what excites this filter" in the explorer, in JupyterLab at 1366x900 (headless Chromium).

A user clicks the feature-visualization button under the maps; the optimised image of the
current filter appears in the page (a real PNG, not blank), with a caption naming the filter, and
the same button for a class follows. The screenshot is saved in ``artifacts/`` (copied by hand
to ``docs/explorer_featviz.png`` after looking at it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import browser_page, chromium_path
from .jupyterlab import jupyterlab, run_notebook_in_lab
from .renderlog import Events

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"

SETUP = '''\
from saliency_widget.widget import explore
w = explore()
w.log_events("featviz_events.jsonl")
w
'''

# Size and spread of the panel's image as the browser decoded it (its pixels drawn on a canvas).
IMAGE_STATS = """() => {
  const img = document.querySelector('.sw-featviz .sw-featviz-image');
  if (!img || !img.complete || img.naturalWidth === 0 || img.offsetParent === null) return null;
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let n = 0, s = 0, s2 = 0;
  for (let i = 0; i < d.length; i += 4) { const v = (d[i] + d[i + 1] + d[i + 2]) / 3; n++; s += v; s2 += v * v; }
  return {w: c.width, h: c.height, std: Math.sqrt(s2 / n - (s / n) ** 2), src: img.src.slice(0, 40)};
}"""


def _image_after(page: object, button: str, previous: str | None) -> dict[str, object]:
    """Click ``button`` in the explorer's feature-visualization box and wait for a new image."""
    page.locator(".sw-featviz button", has_text=button).first.click()  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "(prev) => { const i = document.querySelector('.sw-featviz .sw-featviz-image');"
        " return i && i.offsetParent !== null && i.complete && i.naturalWidth > 0 && i.src !== prev; }",
        arg=previous or "", timeout=180000,
    )
    stats = page.evaluate(IMAGE_STATS)  # type: ignore[attr-defined]
    stats["full_src"] = page.eval_on_selector(".sw-featviz .sw-featviz-image", "i => i.src")  # type: ignore[attr-defined]
    return dict(stats)


@pytest.mark.browser
@pytest.mark.slow
def test_what_excites_this_filter_in_jupyterlab(tmp_path: Path) -> None:
    chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    with jupyterlab(tmp_path) as lab, browser_page(viewport={"width": 1366, "height": 900}) as page:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        run_notebook_in_lab(page, lab, "featviz.ipynb", [SETUP])
        page.wait_for_selector(".sw-map-image canvas.sw-mv-canvas", state="visible", timeout=180000)
        events = Events(lab.root / "featviz_events.jsonl")
        first = events.wait_for(lambda r: r["error"] is None, after=0, timeout=120, what="initial render")
        layer, channel = first["state"]["layer"], first["state"]["channel"]
        # before a click: a hint, no (broken) image
        box = page.locator(".sw-featviz")
        assert "press a button" in box.inner_text()
        assert not page.locator(".sw-featviz .sw-featviz-image").is_visible()

        got = _image_after(page, "what excites this filter", None)
        assert got["w"] >= 32 and got["h"] >= 32 and float(got["std"]) > 5.0, got  # an image, not a flat square
        caption = box.inner_text()
        assert f"filter {channel}" in caption and str(layer) in caption, caption
        page.locator(".sw-featviz").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "e2e_featviz_1366.png"))

        cls = _image_after(page, "what the model sees as this class", str(got["full_src"]))
        assert float(cls["std"]) > 5.0 and cls["full_src"] != got["full_src"], cls
        assert "class" in box.inner_text()
        assert not errors, errors
