"""End to end: ``explore()`` as a Voilà dashboard (``voila notebook.ipynb``), in headless Chromium.

Voilà runs the notebook on the server and shows only its outputs; the widgets (ipywidgets,
bqplot and the anywidget feature map) must still round-trip every click to the kernel.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .explorer_steps import SETUP, Events, all_three
from .frontends import require_module, voila, write_notebook
from .harness import browser_page, chromium_path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"


@pytest.mark.browser
@pytest.mark.slow
def test_explorer_in_voila(tmp_path: Path) -> None:
    chromium_path()
    require_module("voila")
    ARTIFACTS.mkdir(exist_ok=True)
    root = tmp_path / "root"
    root.mkdir()
    nb = write_notebook(root / "dashboard.ipynb", [SETUP])
    with voila(tmp_path, nb) as srv:
        events = Events(root / "events.jsonl")
        with browser_page(viewport={"width": 1366, "height": 1300}) as page:
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(srv.url + "/", wait_until="domcontentloaded", timeout=180000)
            all_three(page, events)
            # a dashboard: outputs only, the source cell is not shown
            assert page.get_by_text("log_events").count() == 0
            page.wait_for_timeout(300)
            page.locator(".sw-explorer").screenshot(path=str(ARTIFACTS / "e2e_voila.png"))
            page.screenshot(path=str(ARTIFACTS / "e2e_voila_full.png"), full_page=True)
            assert not errors, errors
