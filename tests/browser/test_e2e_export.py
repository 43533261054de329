"""The export button in a real JupyterLab gives a browser download of the current view's PNG (issue 17, item 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import browser_page, chromium_path
from .jupyterlab import jupyterlab, run_notebook_in_lab
from .renderlog import Events
from .test_e2e_jupyterlab import ARTIFACTS, SETUP


@pytest.mark.browser
@pytest.mark.slow
def test_export_button_downloads_the_view_in_jupyterlab(tmp_path: Path) -> None:
    chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    with jupyterlab(tmp_path) as lab:
        events = Events(lab.root / "events.jsonl")
        with browser_page(viewport={"width": 1500, "height": 1300}, accept_downloads=True) as page:
            run_notebook_in_lab(page, lab, "export.ipynb", [SETUP])
            page.wait_for_selector(".sw-map-image", state="visible", timeout=120000)
            events.wait_for(lambda r: r["error"] is None, after=0, timeout=60, what="initial render")
            with page.expect_download(timeout=30000) as info:
                page.click(".sw-export")
            download = info.value
            assert download.suggested_filename.startswith("saliency_") and download.suggested_filename.endswith(".png")
            target = ARTIFACTS / "e2e_export_download.png"
            download.save_as(str(target))
            assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            page.wait_for_function("() => document.querySelector('.sw-status')?.textContent.includes('downloaded the view')", timeout=10000)
    # nothing was written into the kernel's folder
    assert not list(lab.root.glob("saliency_*.png"))
