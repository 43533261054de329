"""Progressive maps in a real JupyterLab (issue 29, item 3): a slow occlusion on ResNet-18 shows
partial maps with their fraction before the final one, the title names the new method while it
computes, and the final pixels are those of the one-shot map.

Screenshot: artifacts/e2e_progressive_partial.png (a partial occlusion map, its badge and title).
Numbers: artifacts/e2e_progressive.json (first partial and final map after the click, in ms).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .harness import browser_page, chromium_path
from .jupyterlab import EXECUTE, jupyterlab, run_notebook_in_lab
from .renderlog import Events
from .test_e2e_busy import SETUP
from .test_e2e_jupyterlab import ARTIFACTS

# Every paint of the map canvas: its fraction ('' for a final map), when, and the map's title.
WATCH = """() => {
  const c = document.querySelector('.sw-map-image canvas.sw-mv-canvas');
  window.__paints = [];
  const title = () => (document.querySelector('.sw-map-title') || {}).textContent || '';
  new MutationObserver(() => window.__paints.push({f: c.dataset.fraction || '', n: Number(c.dataset.paints),
                                                   t: performance.now(), title: title()}))
    .observe(c, {attributes: true, attributeFilter: ['data-paints']});
  const b = [...document.querySelectorAll('.sw-method button')].find(b => b.textContent.trim() === 'Occlusion');
  window.__clicked = performance.now();
  b.click();
}"""

PIXELS = """() => { const c = document.querySelector('.sw-map-image canvas.sw-mv-canvas');
  return {w: c.width, h: c.height, rgba: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)}; }"""

# Run in the notebook's kernel after the final map: the one-shot occlusion map of the same
# explainer, rendered with the explorer's display options (the pixels js/render.js draws).
ONE_SHOT = """
import numpy as np
from saliency_widget.views.rawmap import RawMap
from saliency_widget.views.pipeline import WIDGET_OPTIONS
one = w.explainer.saliency(target=w._last.target, method="occlusion", **WIDGET_OPTIONS.get("occlusion", {}))
np.save("one_shot.npy", RawMap.from_map(one[0].detach().cpu().numpy()).render(w.display_options).rgb)
"""


@pytest.mark.browser
@pytest.mark.slow
def test_progressive_occlusion_in_jupyterlab(tmp_path: Path) -> None:
    chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    numbers: dict[str, Any] = {}
    with jupyterlab(tmp_path) as lab:
        events = Events(lab.root / "events.jsonl")
        with browser_page(viewport={"width": 1500, "height": 1300}) as page:
            run_notebook_in_lab(page, lab, "progressive.ipynb", [SETUP])
            page.wait_for_selector(".sw-map-image", state="visible", timeout=120000)
            events.wait_for(lambda r: r["error"] is None, after=0, timeout=60, what="initial render")
            seq = events.last_seq()
            page.evaluate(WATCH)
            page.wait_for_function("() => window.__paints.some(p => p.f !== '')", timeout=120000)
            page.locator(".sw-explorer").screenshot(path=str(ARTIFACTS / "e2e_progressive_partial.png"))
            events.wait_for(lambda r: r["state"]["method"] == "occlusion" and "map" in r["images"], after=seq, timeout=300, what="occlusion")
            page.wait_for_function("() => !document.querySelector('.sw-map-image.sw-busy') && window.__paints.length"
                                   " && window.__paints[window.__paints.length - 1].f === ''", timeout=120000)
            paints = page.evaluate("() => window.__paints")
            clicked = page.evaluate("() => window.__clicked")
            partial = [p for p in paints if p["f"]]
            final = paints[-1]
            assert partial and final["f"] == "" and partial[0]["t"] < final["t"], paints
            fractions = [float(p["f"]) for p in partial]
            assert fractions == sorted(fractions) and 0 < fractions[0] < 1, fractions
            assert all("Occlusion" in p["title"] and "% done" in p["title"] for p in partial), paints
            title = page.locator(".sw-map-title").inner_text()  # set with (not before) the final paint
            assert "Occlusion" in title and "% done" not in title, title
            assert page.locator(".sw-map-image .sw-mv-partial").is_hidden()  # the badge goes with the partial map
            numbers["first_partial_ms"] = partial[0]["t"] - clicked
            numbers["final_ms"] = final["t"] - clicked
            numbers["partials"] = len(partial)
            numbers["first_fraction"] = fractions[0]

            drawn = page.evaluate(PIXELS)
            assert page.evaluate(EXECUTE, ONE_SHOT) is None
            expected = np.load(lab.root / "one_shot.npy")
            got = np.asarray(drawn["rgba"], dtype=np.uint8).reshape(drawn["h"], drawn["w"], 4)[..., :3]
            np.testing.assert_array_equal(got, expected)  # the final pixels are the one-shot map's
    print("\nprogressive numbers:", json.dumps(numbers))
    (ARTIFACTS / "e2e_progressive.json").write_text(json.dumps(numbers, indent=1))
