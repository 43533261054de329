"""LRP's settings in a real JupyterLab: the composite menu and α appear with LRP, a browser change recomputes the map.

The explorer on the bundled model: a click on the LRP button shows its settings (composite,
first layer, ε; no α or γ), choosing ``alpha_beta`` in the composite menu shows α and draws
the engine's α-β map (the pixels the kernel renders from ``explainer.saliency(method="lrp",
composite="alpha_beta", ...)`` with the explorer's box bounds), and moving α redraws again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .harness import browser_page, chromium_path
from .jupyterlab import EXECUTE, jupyterlab, run_notebook_in_lab
from .renderlog import Events

SETUP = '''\
from saliency_widget.widget import explore
w = explore()
w.log_events("events.jsonl")
w
'''

PIXELS = """() => { const c = document.querySelector('.sw-map-image canvas.sw-mv-canvas');
  return {w: c.width, h: c.height, rgba: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)}; }"""

SHOWN = """() => ['lrp-composite', 'lrp-first', 'lrp-epsilon', 'lrp-gamma', 'lrp-alpha'].filter((n) => {
  const e = document.querySelector('.sw-' + n); return e && e.offsetParent !== null; })"""

# In the kernel: the engine's map with the explorer's LRP settings, rendered with its display options.
BY_HAND = """
import numpy as np
from saliency_widget.views.rawmap import RawMap
io = w.model_io
opts = w.method_settings.engine_options("lrp", w.explainer.inputs, io.mean, io.std)
m = w.explainer.saliency(target=w._last.target, method="lrp", **opts)
np.save("lrp.npy", RawMap.from_map(m[0].detach().cpu().numpy()).render(w.display_options).rgb)
"""


def _drawn(page: Any) -> np.ndarray:
    d = page.evaluate(PIXELS)
    return np.asarray(d["rgba"], dtype=np.uint8).reshape(d["h"], d["w"], 4)[..., :3]


def _idle(page: Any) -> None:
    page.wait_for_function("() => !document.querySelector('.sw-map-image.sw-busy')", timeout=120000)


@pytest.mark.browser
@pytest.mark.slow
def test_lrp_settings_in_jupyterlab(tmp_path: Path) -> None:
    chromium_path()
    with jupyterlab(tmp_path) as lab:
        events = Events(lab.root / "events.jsonl")
        with browser_page(viewport={"width": 1500, "height": 1300}) as page:
            run_notebook_in_lab(page, lab, "lrp.ipynb", [SETUP])
            page.wait_for_selector(".sw-map-image", state="visible", timeout=120000)
            events.wait_for(lambda r: r["error"] is None, after=0, timeout=60, what="initial render")
            assert page.evaluate(SHOWN) == []  # Gradient has no settings

            seq = events.last_seq()
            page.click(".sw-method button:text-is('LRP')")
            events.wait_for(lambda r: r["state"]["method"] == "lrp" and "map" in r["images"], after=seq, timeout=120, what="LRP")
            _idle(page)
            assert page.evaluate(SHOWN) == ["lrp-composite", "lrp-first", "lrp-epsilon"]
            default = _drawn(page)

            seq = events.last_seq()
            page.select_option(".sw-lrp-composite select", label="alpha_beta")
            events.wait_for(lambda r: r["state"]["lrp_composite"] == "alpha_beta" and "map" in r["images"], after=seq,
                            timeout=120, what="alpha_beta")
            _idle(page)
            page.wait_for_function("() => document.querySelector('.sw-lrp-alpha').offsetParent !== null", timeout=30000)
            assert page.evaluate(SHOWN) == ["lrp-composite", "lrp-first", "lrp-epsilon", "lrp-alpha"]
            page.wait_for_timeout(500)  # the map panel paints on the next frame after the new planes
            alpha_beta = _drawn(page)
            assert not np.array_equal(alpha_beta, default)
            assert page.evaluate(EXECUTE, BY_HAND) is None
            np.testing.assert_array_equal(alpha_beta, np.load(lab.root / "lrp.npy"))

            seq = events.last_seq()
            page.locator(".sw-lrp-alpha .slider-container, .sw-lrp-alpha .noUi-target").first.click()  # somewhere on α's track
            events.wait_for(lambda r: r["state"]["lrp_alpha"] != 2.0 and "map" in r["images"], after=seq, timeout=120, what="alpha")
            _idle(page)
            page.wait_for_timeout(500)
            assert page.evaluate(EXECUTE, BY_HAND) is None
            np.testing.assert_array_equal(_drawn(page), np.load(lab.root / "lrp.npy"))
