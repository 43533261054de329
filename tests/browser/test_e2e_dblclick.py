"""End to end: a double-click on the feature map jumps to the filter's strongest activation.

In JupyterLab and in Notebook 7 (the README and the quickstart promise it). The browser sends
the double-click's first click as a state update and the double-click as a command; ipywidgets
holds a state update back while an earlier one is unanswered, so the click could reach the
kernel after the command and win. Each try double-clicks another weak cell and then checks that
the kernel's last render (and the caption the browser shows) sits on the strongest cell, after
everything the browser sent has been handled.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from .explorer_steps import SETUP, Events, first_render
from .frontends import notebook7, require_module, run_notebook_in_notebook7
from .harness import browser_page, chromium_path
from .jupyterlab import jupyterlab, run_notebook_in_lab

TRIES = 6

# The feature map's cells, brightest first (viridis green grows with the value).
_CELLS = """() => { const c = document.querySelector('canvas.sw-fm-canvas');
    const [gh, gw] = c.dataset.grid.split(',').map(Number);
    const ctx = c.getContext('2d'); const cells = [];
    for (let y = 0; y < gh; y++) for (let x = 0; x < gw; x++) {
      const px = ctx.getImageData(Math.floor((x + 0.5) * c.width / gw), Math.floor((y + 0.5) * c.height / gh), 1, 1).data;
      cells.push([px[1], y, x]); }
    cells.sort((a, b) => b[0] - a[0]);
    return [gh, gw, cells.map(c => [c[1], c[2]])]; }"""


def _strongest(page: Any) -> tuple[int, int]:
    """The strongest cell as the caption states it ("max v at (y, x) ...")."""
    text = page.text_content(".sw-fm-caption") or ""
    m = re.search(r"at \((\d+), (\d+)\)", text)
    assert m, text
    return int(m.group(1)), int(m.group(2))


def _settled(events: Events, quiet_s: float = 1.5, timeout: float = 60.0) -> dict[str, Any]:
    """The last render record once no new one came for ``quiet_s`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = events.last_seq(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = events.last_seq()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return events.all()[-1]
    raise AssertionError(f"renders never settled: {events.all()[-3:]}")


def double_clicks(page: Any, events: Events, tries: int = TRIES) -> int:
    """Double-click ``tries`` weak cells (each another one); return how many ended on the strongest."""
    canvas = page.locator("canvas.sw-fm-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    gh, gw, cells = page.evaluate(_CELLS)
    target = _strongest(page)
    weak = [tuple(c) for c in cells if tuple(c) != target][-tries:]  # the weakest cells: far from the strongest
    assert len(weak) == tries, cells
    hits = 0
    for cy, cx in weak:
        seq = events.last_seq()
        page.mouse.dblclick(box["x"] + box["width"] * (cx + 0.5) / gw, box["y"] + box["height"] * (cy + 0.5) / gh)
        events.wait_for(lambda _r: True, after=seq, what="double-click")
        last = _settled(events)
        shown = f"selected ({target[0]}, {target[1]})"
        page.wait_for_timeout(300)  # the caption of the last render
        ok = last["state"]["position"] == list(target) and shown in (page.text_content(".sw-fm-caption") or "")
        print(f"double-click on ({cy}, {cx}): kernel position {last['state']['position']}, strongest {list(target)}: {'ok' if ok else 'KEPT'}")
        hits += ok
    return hits


@pytest.mark.browser
@pytest.mark.slow
def test_double_click_jumps_to_the_strongest_in_jupyterlab(tmp_path: Path) -> None:
    chromium_path()
    with jupyterlab(tmp_path) as lab, browser_page(viewport={"width": 1366, "height": 1100}) as page:
        events = Events(lab.root / "events.jsonl")
        run_notebook_in_lab(page, lab, "dbl.ipynb", [SETUP])
        first_render(page, events)
        hits = double_clicks(page, events)
        print(f"JupyterLab: {hits} of {TRIES} double-clicks ended on the strongest activation")
        assert hits == TRIES


@pytest.mark.browser
@pytest.mark.slow
def test_double_click_jumps_to_the_strongest_in_notebook7(tmp_path: Path) -> None:
    chromium_path()
    require_module("notebook", minversion="7")
    with notebook7(tmp_path) as srv, browser_page(viewport={"width": 1366, "height": 1100}) as page:
        events = Events(srv.root / "events.jsonl")
        run_notebook_in_notebook7(page, srv, "dbl.ipynb", [SETUP])
        first_render(page, events)
        hits = double_clicks(page, events)
        print(f"Notebook 7: {hits} of {TRIES} double-clicks ended on the strongest activation")
        assert hits == TRIES
