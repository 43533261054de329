"""Saved notebooks show the last view (issue 17, item 7), in a real JupyterLab: run, change the
view, save, reload the page with a fresh kernel (no widget models), and the cell shows the
picture of the last view instead of "Error displaying widget: model not found".

Screenshots: artifacts/e2e_saved_live.png (before saving), artifacts/e2e_saved_reloaded.png.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from saliency_widget.widget.saved import META_KEY

from .harness import browser_page, chromium_path
from .jupyterlab import jupyterlab, run_notebook_in_lab
from .renderlog import Events
from .test_e2e_jupyterlab import ARTIFACTS, SETUP


@pytest.mark.browser
@pytest.mark.slow
def test_saved_notebook_shows_the_last_view_after_a_reload(tmp_path: Path) -> None:
    chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    with jupyterlab(tmp_path) as lab:
        events = Events(lab.root / "events.jsonl")
        with browser_page(viewport={"width": 1366, "height": 900}) as page:
            run_notebook_in_lab(page, lab, "saved.ipynb", [SETUP])
            page.wait_for_selector(".sw-map-image", state="visible", timeout=120000)
            first = events.wait_for(lambda r: r["error"] is None, after=0, timeout=90, what="initial render")
            # the saved view is in the page but hidden while the widget lives
            page.wait_for_selector(".sw-saved-view", state="attached", timeout=30000)
            assert not page.locator(".sw-saved-view img").is_visible()

            seq = events.last_seq()
            page.click(".sw-method button:text-is('Grad-CAM')")
            events.wait_for(lambda r: r["state"]["method"] == "gradcam" and "map" in r["images"], after=seq, what="Grad-CAM")
            page.wait_for_function("() => !document.querySelector('.sw-map-image.sw-busy')", timeout=30000)
            page.wait_for_timeout(3500)  # the saved view follows once the view was still for 2 s, then reaches the notebook model
            page.locator(".sw-explorer").screenshot(path=str(ARTIFACTS / "e2e_saved_live.png"))
            page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
            page.wait_for_timeout(1500)

            nb = json.loads((lab.root / "saved.ipynb").read_text())
            saved = [o for o in nb["cells"][0]["outputs"] if META_KEY in o.get("metadata", {})]
            assert len(saved) == 1, nb["cells"][0]["outputs"]
            assert saved[0]["metadata"][META_KEY]["state"]["method"] == "gradcam"  # the last view, not the first
            png = saved[0]["data"]["image/png"]
            assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"

            # a fresh kernel: the widget models are gone, as after reopening without the kernel
            # (not awaited: the command's promise waits for the confirmation dialog)
            page.evaluate("() => { window.jupyterapp.commands.execute('kernelmenu:restart'); }")
            page.wait_for_timeout(500)
            if page.locator(".jp-Dialog button.jp-mod-accept").count():
                page.click(".jp-Dialog button.jp-mod-accept")
            page.wait_for_timeout(1500)
            page.reload(wait_until="domcontentloaded")
            page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=90000)
            img = page.locator(".sw-saved-view img")
            img.wait_for(state="visible", timeout=60000)
            assert png in (img.get_attribute("src") or "")
            page.wait_for_timeout(1000)
            visible_error = page.evaluate(
                "() => [...document.querySelectorAll('.jp-OutputArea-output')].some(e => e.offsetParent !== null"
                " && e.textContent.includes('model not found'))"
            )
            page.screenshot(path=str(ARTIFACTS / "e2e_saved_reloaded.png"))
            assert not visible_error
    assert first["state"]["method"] == "gradient"
