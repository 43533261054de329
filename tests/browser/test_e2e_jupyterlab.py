"""End to end: the explorer in a real JupyterLab, driven by headless Chromium.

The notebook logs one JSON line per render pass (``Explorer.log_events``); after each UI
action the test waits for a kernel-side record whose state reflects the action and whose
image hashes changed, so we know the event reached Python and produced a new picture.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest

from saliency_widget.engine import available_methods, get_method

from .harness import browser_page, chromium_path
from .jupyterlab import jupyterlab, run_notebook_in_lab
from .renderlog import Events, img_src, second_brightest_cell, wait_src_change

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"

SETUP = '''\
import torch, torch.nn as nn, numpy as np
from PIL import Image
from saliency_widget.widget import explore
try:  # the bundled model and sample when its checkpoint is present
    w = explore()
    print("model: bundled shapes_cnn")
except Exception as exc:  # fall back to a tiny random net so the UI can still be tested
    print("model: tiny random net (bundled model unavailable: %s)" % exc)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5)).eval()
    rng = np.random.RandomState(0)
    img = Image.fromarray((rng.rand(64, 64, 3) * 255).astype(np.uint8))
    w = explore(net, img, labels=["disc", "square", "triangle", "<img src=x onerror=alert(1)>", "ring"])
w.log_events("events.jsonl")
w
'''




@pytest.mark.browser
@pytest.mark.slow
def test_explorer_in_jupyterlab(tmp_path: Path) -> None:
    chromium_path()  # skip locally / fail in CI if missing, before starting a server
    ARTIFACTS.mkdir(exist_ok=True)
    with jupyterlab(tmp_path) as lab:
        events = Events(lab.root / "events.jsonl")
        latencies: list[float] = []

        with browser_page(viewport={"width": 1500, "height": 1300}) as page:
            run_notebook_in_lab(page, lab, "e2e.ipynb", [SETUP])
            page.wait_for_selector(".sw-map-image", state="visible", timeout=120000)
            page.wait_for_selector("canvas.sw-fm-canvas", timeout=60000)
            first = events.wait_for(lambda r: r["error"] is None, after=0, timeout=60, what="initial render")
            assert all(first["nonblank"].values()), first
            prev = first

            # 1. Every method toggle reaches Python and gives a new, non-blank map.
            methods = page.eval_on_selector_all(".sw-method button", "bs => bs.map(b => b.textContent.trim())")
            assert len(methods) >= 3, methods
            names = {get_method(n).label: n for n in available_methods()}  # buttons show labels
            assert set(methods) <= set(names), methods
            for m in methods[1:] + methods[:1]:
                old = img_src(page, "sw-map-image")
                seq = events.last_seq()
                t0 = time.perf_counter()
                page.click(f".sw-method button:text-is('{m}')")
                wait_src_change(page, "sw-map-image", old)
                latencies.append(time.perf_counter() - t0)
                rec = events.wait_for(
                    lambda r, n=names[m]: r["state"]["method"] == n and "map" in r["images"], after=seq, what=f"method {m}"
                )
                assert rec["nonblank"]["map"] and rec["images"]["map"] != prev["images"]["map"]
                prev = rec

            # 2. A click on a class bar changes the target class.
            bars = page.locator(".sw-bars .bargroup")  # one group per class (p + remainder)
            assert bars.count() >= 3
            old = img_src(page, "sw-map-image")
            seq = events.last_seq()
            t0 = time.perf_counter()
            bars.nth(2).click()
            wait_src_change(page, "sw-map-image", old)
            latencies.append(time.perf_counter() - t0)
            rec = events.wait_for(lambda r: r["state"]["target"] is not None, after=seq, what="bar click")
            assert rec["nonblank"]["map"] and rec["images"]["map"] != prev["images"]["map"]
            prev = rec

            # 2b. ...and a click on the top bar goes back to the predicted class (bqplot sends a
            # numpy selection, whose truth value once swallowed this click).
            target2 = rec["state"]["target"]
            old = img_src(page, "sw-map-image")
            seq = events.last_seq()
            bars.nth(0).click()
            wait_src_change(page, "sw-map-image", old)
            rec = events.wait_for(lambda r: r["state"]["target"] not in (None, target2), after=seq, what="top bar click")
            assert rec["images"]["map"] == first["images"]["map"]  # same method, the predicted class again
            bars.nth(2).click()
            rec = events.wait_for(lambda r: r["state"]["target"] == target2, after=rec["seq"], what="bar 2 again")
            prev = rec

            # 3. Moving the filter slider (keyboard on the handle) changes the feature map.
            channel0 = prev["state"]["channel"]
            handle = page.locator(".sw-filter .noUi-handle")
            handle.focus()
            seq = events.last_seq()
            page.keyboard.press("ArrowLeft" if channel0 > 0 else "ArrowRight")
            rec = events.wait_for(lambda r: r["state"]["channel"] != channel0, after=seq, what="filter slider")
            assert rec["nonblank"]["feature"] and rec["images"]["feature"] != prev["images"]["feature"]
            prev = rec

            # 4. A click on an activation projects it and draws its receptive field.
            # Pick the second-brightest cell (viridis green grows with the value): a zero
            # activation would rightly give an all-zero projection and a message instead.
            canvas = page.locator("canvas.sw-fm-canvas")
            box = canvas.bounding_box()
            gh, gw, cy, cx = second_brightest_cell(page)
            old = img_src(page, "sw-projection-image")
            seq = events.last_seq()
            t0 = time.perf_counter()
            page.mouse.click(box["x"] + box["width"] * (cx + 0.5) / gw, box["y"] + box["height"] * (cy + 0.5) / gh)
            rec = events.wait_for(lambda r: r["state"]["position"] == [cy, cx], after=seq, what="activation click")
            wait_src_change(page, "sw-projection-image", old)
            latencies.append(time.perf_counter() - t0)
            assert rec["error"] is None and rec["nonblank"]["projection"]
            assert rec["images"]["projection"] != prev["images"]["projection"]

            # The HTML-looking label stays inert text wherever it is shown.
            assert page.locator(".sw-explorer img[src='x']").count() == 0

            page.wait_for_timeout(300)  # let the last paint settle for the screenshot only
            shot = ARTIFACTS / "e2e_jupyterlab.png"
            page.locator(".sw-explorer").screenshot(path=str(shot))
            page.screenshot(path=str(ARTIFACTS / "e2e_jupyterlab_full.png"), full_page=True)

    median_ms = statistics.median(latencies) * 1000.0
    print(f"\nclick->image latency over {len(latencies)} interactions: median {median_ms:.0f} ms, "
          f"min {min(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
    (ARTIFACTS / "e2e_latency.json").write_text(json.dumps({"median_ms": median_ms, "samples_ms": [x * 1000 for x in latencies]}))


VIT_SETUP = '''\
import numpy as np, torch, transformers
from PIL import Image
from saliency_widget.widget import explore
torch.manual_seed(0)
cfg = transformers.ViTConfig(image_size=32, patch_size=8, num_hidden_layers=2, hidden_size=16, num_attention_heads=2,
                             intermediate_size=32, num_labels=3, id2label={0: "cat", 1: "dog", 2: "owl"},
                             label2id={"cat": 0, "dog": 1, "owl": 2})
rng = np.random.default_rng(0)
w = explore(transformers.ViTForImageClassification(cfg).eval(), Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)))
w.log_events("vit_events.jsonl")
w
'''


@pytest.mark.browser
@pytest.mark.slow
def test_transformer_explorer_in_jupyterlab(tmp_path: Path) -> None:
    """A Hugging Face ViT (GELU, token layers): methods render or say why, in a real browser."""
    chromium_path()
    pytest.importorskip("transformers")
    ARTIFACTS.mkdir(exist_ok=True)
    with jupyterlab(tmp_path) as lab:
        events = Events(lab.root / "vit_events.jsonl")
        with browser_page(viewport={"width": 1500, "height": 1300}) as page:
            run_notebook_in_lab(page, lab, "vit.ipynb", [VIT_SETUP])
            page.wait_for_selector(".sw-map-image", state="visible", timeout=120000)
            first = events.wait_for(lambda r: r["error"] is None, after=0, timeout=90, what="initial render")
            assert first["nonblank"]["map"], first
            # class names from config.id2label on the bars
            page.wait_for_function("() => document.querySelector('.sw-bars')?.textContent.includes('owl')", timeout=30000)

            # Grad-CAM renders a map on the token layers
            old = img_src(page, "sw-map-image")
            seq = events.last_seq()
            page.click(".sw-method button:text-is('Grad-CAM')")
            wait_src_change(page, "sw-map-image", old)
            rec = events.wait_for(lambda r: r["state"]["method"] == "gradcam", after=seq, what="Grad-CAM")
            assert rec["error"] is None and "map" in rec["images"]

            # DeconvNet says in one line why it is unavailable; no error in the status line
            seq = events.last_seq()
            page.click(".sw-method button:text-is('DeconvNet')")
            rec = events.wait_for(lambda r: r["state"]["method"] == "deconvnet", after=seq, what="DeconvNet")
            assert rec["error"] is None and "map" not in rec["images"]
            page.wait_for_function(
                "() => document.querySelector('.sw-map-message')?.textContent.includes('has no ReLU')", timeout=30000
            )
            status = page.locator(".sw-status").inner_text()
            assert not status.startswith(("error", "unexpected")), status
            page.wait_for_timeout(300)
            page.locator(".sw-explorer").screenshot(path=str(ARTIFACTS / "e2e_jupyterlab_vit.png"))
