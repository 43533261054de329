"""Display-only changes are drawn by the browser; method switches stay quick (JupyterLab, headless Chromium).

A benchmark as much as a test: it asserts what must hold (new pixels, nothing computed or
encoded in the kernel, the saved view following once the display is still) and prints the
medians (display change; method switch click-to-image on the bundled model and on ResNet-18).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from .harness import browser_page, chromium_path
from .jupyterlab import jupyterlab, run_notebook_in_lab
from .renderlog import Events

# The kernel writes what it did (colormaps applied, PNGs encoded, renders, saved-view updates)
# to kernel.json every 50 ms, so the test reads it without running a cell.
PROBE = '''
import json, os, threading, time
from saliency_widget.viz import render as R
w.log_events("events.jsonl")
def _probe():
    while True:
        with open("kernel.json.tmp", "w") as fh:
            json.dump({"counts": dict(R.COUNTS), "computations": w.computations, "saved": w._saved.updates}, fh)
        os.replace("kernel.json.tmp", "kernel.json")
        time.sleep(0.05)
threading.Thread(target=_probe, daemon=True).start()
w
'''

BUNDLED = "from saliency_widget.widget import explore\nw = explore()\n" + PROBE
RESNET = (
    "import torch, torchvision\nfrom saliency_widget.widget import explore\ntorch.manual_seed(0)\n"
    "w = explore(torchvision.models.resnet18(weights=None).eval())\n" + PROBE
)

# Change a control in the page (once the canvas has stopped repainting) and resolve with the
# milliseconds until the map canvas has painted new pixels; `changed` is false if 10 s of
# paints never changed a pixel.
CHANGE_UNTIL_PAINT = """async ([kind, sel, value]) => {
  const canvas = document.querySelector('.sw-map-image canvas.sw-mv-canvas');
  const sum = () => { const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                      let h = 0; for (let i = 0; i < d.length; i++) h = (h * 31 + d[i]) | 0; return h; };
  // settle first: a late echo of the previous change may still repaint the same pixels
  let last = Number(canvas.dataset.paints || 0), still = performance.now();
  while (performance.now() - still < 250) {
    await new Promise((r) => setTimeout(r, 25));
    const now = Number(canvas.dataset.paints || 0);
    if (now !== last) { last = now; still = performance.now(); }
  }
  const paints = Number(canvas.dataset.paints || 0), before = sum();
  const t0 = performance.now();
  if (kind === 'select') { // an option's value is its label ("bwr (diverging)"): pick it by the name it starts with
    const s = document.querySelector(sel), o = [...s.options].find((x) => x.value === value || x.value.startsWith(value + ' '));
    s.value = o ? o.value : value; s.dispatchEvent(new Event('change', {bubbles: true})); }
  else if (kind === 'click') { document.querySelector(sel).click(); }
  else if (kind === 'button') { [...document.querySelectorAll(sel)].find((b) => b.textContent.trim() === value).click(); }
  return await new Promise((resolve, reject) => {
    const give_up = setTimeout(() => reject(new Error('no paint after ' + kind + ' ' + value)), 120000);
    const poll = () => {
      // the first paint with new pixels; a repaint of the old ones (an echo) keeps waiting, 10 s at most
      const painted = Number(canvas.dataset.paints || 0) > paints, changed = painted && sum() !== before;
      if (changed || (painted && performance.now() - t0 > 10000)) {
        clearTimeout(give_up);
        resolve({ms: performance.now() - t0, changed});
      } else requestAnimationFrame(poll);
    };
    poll();
  });
}"""


def _kernel(root: Path) -> dict[str, Any]:
    for _ in range(100):
        try:
            return dict(json.loads((root / "kernel.json").read_text()))
        except (OSError, ValueError):
            time.sleep(0.05)
    raise AssertionError("the kernel probe wrote no kernel.json")


def _open(page: Any, lab: Any, cells: list[str]) -> Events:
    run_notebook_in_lab(page, lab, "speed.ipynb", cells)
    page.wait_for_selector(".sw-map-image canvas.sw-mv-canvas", state="visible", timeout=180000)
    events = Events(lab.root / "events.jsonl")
    events.wait_for(lambda r: r["error"] is None, after=0, timeout=120, what="initial render")
    page.wait_for_function("() => !document.querySelector('.sw-map-image.sw-busy')", timeout=120000)
    return events


def _method_switches(page: Any, methods: list[str]) -> list[float]:
    out = []
    for m in methods:
        got = page.evaluate(CHANGE_UNTIL_PAINT, ["button", ".sw-method button", m])
        out.append(float(got["ms"]))
        page.wait_for_function("() => !document.querySelector('.sw-map-image.sw-busy')", timeout=120000)
    return out


@pytest.mark.browser
@pytest.mark.slow
def test_display_changes_are_drawn_in_the_browser(tmp_path: Path) -> None:
    chromium_path()
    with jupyterlab(tmp_path) as lab, browser_page(viewport={"width": 1500, "height": 1300}) as page:
        _open(page, lab, [BUNDLED])
        page.wait_for_timeout(2500)  # the saved view of the first render is written
        before = _kernel(lab.root)
        changes = [
            ("select", ".sw-cmap select", "viridis"), ("select", ".sw-sign select", "signed"),
            ("select", ".sw-cmap select", "bwr"), ("select", ".sw-sign select", "positive"),
            ("select", ".sw-cmap select", "hot"), ("click", ".sw-overlay input", ""),
            ("select", ".sw-sign select", "absolute"), ("select", ".sw-cmap select", "gray"),
            ("click", ".sw-overlay input", ""), ("select", ".sw-cmap select", "magma"),
        ]
        times = []
        for kind, sel, value in changes:
            got = page.evaluate(CHANGE_UNTIL_PAINT, [kind, sel, value])
            assert got["changed"], (kind, sel, value)  # new pixels on the map canvas
            times.append(float(got["ms"]))
        page.wait_for_timeout(400)
        after = _kernel(lab.root)
        # nothing computed, no colormap applied and no PNG encoded in the kernel for 10 display changes
        assert after["computations"] == before["computations"], (before, after)
        assert after["counts"] == before["counts"], (before, after)
        page.wait_for_timeout(3000)  # idle >= 2 s: now the saved view follows (one kernel-side PNG)
        idle = _kernel(lab.root)
        assert idle["saved"] > after["saved"] and idle["computations"] == before["computations"], (after, idle)

        methods = page.eval_on_selector_all(".sw-method button", "bs => bs.map(b => b.textContent.trim())")
        cold = _method_switches(page, methods[1:] + methods[:1])
        warm = _method_switches(page, methods[1:] + methods[:1])
    med = statistics.median(times)
    print(f"\ndisplay-only change, change->new pixels: median {med:.1f} ms over {len(times)} changes "
          f"(max {max(times):.1f} ms); kernel: 0 renders, 0 colormaps, 0 PNGs")
    print(f"method switch click->image, bundled model: median {statistics.median(cold):.0f} ms first visit "
          f"({len(cold)} methods), {statistics.median(warm):.0f} ms revisited")


@pytest.mark.browser
@pytest.mark.slow
def test_method_switch_on_resnet18(tmp_path: Path) -> None:
    chromium_path()
    pytest.importorskip("torchvision")
    with jupyterlab(tmp_path) as lab, browser_page(viewport={"width": 1500, "height": 1300}) as page:
        _open(page, lab, [RESNET])
        fast = ["DeconvNet", "Guided Backprop", "Grad-CAM", "Gradient"]
        methods = page.eval_on_selector_all(".sw-method button", "bs => bs.map(b => b.textContent.trim())")
        chosen = [m for m in fast if m in methods]
        cold = _method_switches(page, chosen)
        warm = _method_switches(page, chosen)
    print(f"\nmethod switch click->image, ResNet-18 (weights=None, CPU): median {statistics.median(cold):.0f} ms first visit, "
          f"{statistics.median(warm):.0f} ms revisited ({', '.join(chosen)})")


# Change a control (once the grid has stopped repainting) and resolve with the milliseconds until
# the compare grid has painted new pixels; `changed` is false if 10 s of paints changed none.
CHANGE_COMPARE = """async ([sel, value]) => {
  const root = document.querySelector('.sw-compare-image .sw-cv-root');
  const canvas = root.querySelector('.sw-cv-tile canvas.sw-mv-canvas:not([hidden])');
  const sum = () => { const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                      let h = 0; for (let i = 0; i < d.length; i++) h = (h * 31 + d[i]) | 0; return h; };
  let last = Number(root.dataset.paints || 0), still = performance.now();
  while (performance.now() - still < 250) { // settle: a late echo may still repaint the same pixels
    await new Promise((r) => setTimeout(r, 25));
    const now = Number(root.dataset.paints || 0);
    if (now !== last) { last = now; still = performance.now(); }
  }
  const paints = Number(root.dataset.paints || 0), before = sum();
  const t0 = performance.now();
  const s = document.querySelector(sel), o = [...s.options].find((x) => x.value === value || x.value.startsWith(value + ' '));
  s.value = o ? o.value : value; s.dispatchEvent(new Event('change', {bubbles: true}));
  return await new Promise((resolve, reject) => {
    const give_up = setTimeout(() => reject(new Error('no compare paint after ' + value)), 60000);
    const poll = () => {
      const painted = Number(root.dataset.paints || 0) > paints, changed = painted && sum() !== before;
      if (changed || (painted && performance.now() - t0 > 10000)) {
        clearTimeout(give_up);
        resolve({ms: performance.now() - t0, changed, tiles: root.querySelectorAll('.sw-cv-tile').length});
      } else requestAnimationFrame(poll);
    };
    poll();
  });
}"""


@pytest.mark.browser
@pytest.mark.slow
def test_compare_view_display_changes_are_drawn_in_the_browser(tmp_path: Path) -> None:
    chromium_path()
    with jupyterlab(tmp_path) as lab, browser_page(viewport={"width": 1500, "height": 1300}) as page:
        events = _open(page, lab, [BUNDLED])
        seq = events.last_seq()
        page.locator(".sw-view button", has_text="compare all").click()
        rec = events.wait_for(lambda r: r["state"]["view"] == "compare" and r["error"] is None and not r["cancelled"], after=seq,
                              timeout=300, what="compare view")
        assert sum(k.startswith("compare:") for k in rec["images"]) >= 10  # every method's raw map, no PNG
        page.wait_for_function("() => document.querySelectorAll('.sw-compare-image .sw-cv-tile canvas.sw-mv-canvas:not([hidden])')"
                               ".length >= 10 && !document.querySelector('.sw-compare-image.sw-busy')", timeout=120000)
        page.wait_for_timeout(500)
        before = _kernel(lab.root)
        times = []
        for value in ("viridis", "hot", "gray", "magma"):
            got = page.evaluate(CHANGE_COMPARE, [".sw-cmap select", value])
            assert got["changed"] and got["tiles"] >= 10, got  # new pixels in the tiles
            times.append(float(got["ms"]))
        page.wait_for_timeout(400)
        after = _kernel(lab.root)
        # the compare grid follows the colormap in the browser: no render, no colormap, no PNG in the kernel
        assert after["computations"] == before["computations"], (before, after)
        assert after["counts"] == before["counts"], (before, after)
    print(f"\ncompare view ({got['tiles']} tiles), colormap change->new pixels: median {statistics.median(times):.1f} ms "
          f"(max {max(times):.1f} ms); kernel: {after['computations'] - before['computations']} renders, 0 colormaps, 0 PNGs")
