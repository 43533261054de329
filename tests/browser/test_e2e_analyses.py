"""End to end: the analyses panel on a Hugging Face ViT (GELU, token layers) in JupyterLab at 1366x768.

The layer menu is the engine's inspectable layers (the ViT has no ``nn.ReLU``), the sanity check
offers only methods the model can run and runs the explorer's, faithfulness leaves no "computing"
row, the panel follows the explorer's layer until the user picks another in the panel, top-9 shows
the progress of its projections, and the pointing game's message never replaces the top-9 grid.
The panel's screenshot is saved as ``docs/analyses_vit.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .harness import browser_page, chromium_path
from .jupyterlab import jupyterlab, run_notebook_in_lab
from .renderlog import Events

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"

SETUP = '''\
import numpy as np, torch, transformers
from PIL import Image
from saliency_widget.widget import explore
torch.manual_seed(0)
cfg = transformers.ViTConfig(image_size=32, patch_size=8, num_hidden_layers=2, hidden_size=16, num_attention_heads=2,
                             intermediate_size=32, num_labels=3, id2label={0: "cat", 1: "dog", 2: "owl"},
                             label2id={"cat": 0, "dog": 1, "owl": 2})
rng = np.random.default_rng(0)
images = torch.tensor(rng.random((48, 3, 32, 32)), dtype=torch.float32) - 0.5
w = explore(transformers.ViTForImageClassification(cfg).eval(), Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)),
            data=images)
w.log_events("vit_events.jsonl")
w
'''


def _option_labels(page: Any, cls: str) -> list[str]:
    """A dropdown's option labels (ipywidgets' <option>s carry the label, not the Python value)."""
    return list(page.eval_on_selector_all(f".{cls} select option", "os => os.map(o => o.textContent.trim())"))


def _options(page: Any, cls: str) -> list[str]:
    """A layer menu's keys (each label starts with its key)."""
    return [label.split()[0] for label in _option_labels(page, cls)]


def _select_value(page: Any, cls: str) -> str:
    """The shown option's label ("key  (type, shape)": the key for a layer menu)."""
    label = str(page.eval_on_selector(f".{cls} select", "s => s.options[s.selectedIndex].textContent.trim()"))
    return label.split()[0]


def _below_top(page: Any) -> float:
    """How far the sanity button sits below the panel's top edge, in pixels (scrolling aside)."""
    return float(page.evaluate("() => document.querySelector('button.sw-an-sanity').getBoundingClientRect().top"
                               " - document.querySelector('.sw-analyses').getBoundingClientRect().top"))


def _pick(page: Any, cls: str, key: str) -> None:
    """Choose the option whose label starts with ``key`` (as a user does)."""
    label = next(label for label in _option_labels(page, cls) if label.split()[0] == key)
    page.select_option(f".{cls} select", label=label)


@pytest.mark.browser
@pytest.mark.slow
def test_analyses_panel_on_a_vit_in_jupyterlab(tmp_path: Path) -> None:
    chromium_path()
    pytest.importorskip("transformers")
    ARTIFACTS.mkdir(exist_ok=True)
    with jupyterlab(tmp_path) as lab, browser_page(viewport={"width": 1366, "height": 768}) as page:
        events = Events(lab.root / "vit_events.jsonl")
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        run_notebook_in_lab(page, lab, "vit.ipynb", [SETUP])
        page.wait_for_selector(".sw-map-image", state="visible", timeout=120000)
        first = events.wait_for(lambda r: r["error"] is None, after=0, timeout=90, what="initial render")
        explorer_layer = first["state"]["layer"]

        page.get_by_text("analyses: top-9 per filter").click()
        page.wait_for_selector(".sw-analyses .sw-an-layer select", timeout=60000)

        # 1. the layer menu: the engine's inspectable layers (token layers of a GELU model), on the explorer's layer
        layers = _options(page, "sw-an-layer")
        assert len(layers) > 20 and any(k.endswith("mlp.fc1") for k in layers), layers
        assert layers == _options(page, "sw-layer")  # as the explorer's menu
        assert _select_value(page, "sw-an-layer") == explorer_layer

        # 2. the sanity check offers only methods that run on the model, the explorer's first
        offered = _option_labels(page, "sw-an-sanity-method")
        assert "Gradient" in offered and "Guided Backprop" not in offered and "DeconvNet" not in offered, offered
        assert _select_value(page, "sw-an-sanity-method") == "Gradient"

        # 3. before any run: a one-line hint, no empty chart; every button above the results
        assert page.locator(".sw-an-faith-hint").is_visible() and page.locator(".sw-an-faith-chart").count() == 0
        sanity_y0 = _below_top(page)
        page.locator(".sw-analyses").screenshot(path=str(ARTIFACTS / "analyses_vit_before.png"))

        # 4. the panel follows the explorer's layer
        target = next(k for k in layers if k.endswith("1.mlp.fc1"))
        seq = events.last_seq()
        _pick(page, "sw-layer", target)
        events.wait_for(lambda r: r["state"]["layer"] == target, after=seq, what="explorer layer")
        page.wait_for_function(f"() => document.querySelector('.sw-an-layer select').value.startsWith('{target} ')", timeout=30000)

        # 5. faithfulness of the explorer's method: curves, and no row left "computing"
        page.click("button.sw-an-faith")
        page.wait_for_function("() => document.querySelector('.sw-an-faith-table')?.textContent.includes('random order')", timeout=120000)
        page.wait_for_function("() => !document.querySelector('.sw-an-faith-table').textContent.includes('computing')", timeout=120000)
        page.wait_for_function(  # the chart shows, with its curves drawn
            """() => { const c = document.querySelector('.sw-an-faith-chart');
                       return c && getComputedStyle(c).visibility !== 'hidden' && c.getBoundingClientRect().height > 100
                              && [...c.querySelectorAll('path')].filter(p => (p.getAttribute('d') || '').length > 20).length >= 2; }""",
            timeout=30000,
        )
        assert abs(_below_top(page) - sanity_y0) < 2  # the sanity button did not move

        # 6. the sanity check runs (no advice the panel cannot follow), with progress
        page.click("button.sw-an-sanity")
        page.wait_for_function("() => document.querySelector('.sw-an-sanity-out')?.textContent.includes('Gradient')", timeout=180000)
        out = page.locator(".sw-an-sanity-out").inner_text()
        assert "ReLU" not in out and "use method=" not in out, out

        # 6b. faithfulness of a method the model cannot run (DeconvNet on GELU): one error line, no stale row
        seq = events.last_seq()
        page.click(".sw-method button:text-is('DeconvNet')")
        events.wait_for(lambda r: r["state"]["method"] == "deconvnet", after=seq, what="DeconvNet")
        page.click("button.sw-an-faith")
        page.wait_for_function("() => document.querySelector('.sw-an-faith-status')?.textContent.includes('cannot run')", timeout=60000)
        assert "computing" not in page.locator(".sw-an-faith-table").inner_text()
        assert _select_value(page, "sw-an-sanity-method") == "Gradient"  # not offered there: the sanity method stays

        # 7. top-9 on the chosen layer of the given data, its projections with progress; the grid stays
        # when the pointing game says why it cannot run here
        _pick(page, "sw-an-layer", target)
        page.evaluate(  # every progress text the page shows (a burst of updates can pass within one frame)
            """() => { window.__texts = []; const el = document.querySelector('.sw-an-progress-text');
                       new MutationObserver(() => window.__texts.push(el.textContent)).observe(el, {subtree: true, childList: true, characterData: true}); }"""
        )
        page.click("button.sw-an-topk")
        page.wait_for_function("() => document.querySelector('.sw-analyses img')?.naturalWidth > 0", timeout=180000)
        page.wait_for_function("() => window.__texts.some(t => t.includes('top-9 done'))", timeout=60000)
        texts = page.evaluate("() => window.__texts")
        assert any("scanning" in t for t in texts) and any("projecting the winners (gradient)" in t for t in texts), texts
        grid = page.eval_on_selector(".sw-analyses img", "i => i.src")
        page.click("button.sw-an-pointing")
        page.wait_for_function("() => document.querySelector('.sw-an-pointing-out')?.textContent.includes('bundled')", timeout=60000)
        assert page.eval_on_selector(".sw-analyses img", "i => i.src") == grid

        # 8. a layer picked in the panel stops the following
        other = next(k for k in layers if k.endswith("0.layernorm_after"))
        _pick(page, "sw-an-layer", other)
        page.wait_for_function("() => !document.querySelector('.sw-an-follow input').checked", timeout=30000)
        seq = events.last_seq()
        _pick(page, "sw-layer", layers[-1])
        events.wait_for(lambda r: r["state"]["layer"] == layers[-1], after=seq, what="explorer layer 2")
        page.wait_for_timeout(500)
        assert _select_value(page, "sw-an-layer") == other

        # what a user sees at 1366x768: the panel from its top-9 row, then from its faithfulness row
        for name, anchor in (("analyses_vit.png", "button.sw-an-topk"), ("analyses_vit_faithfulness.png", "button.sw-an-faith")):
            page.eval_on_selector(anchor, "b => b.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(400)
            page.screenshot(path=str(ARTIFACTS / name))
        page.set_viewport_size({"width": 1366, "height": 2400})  # the whole panel, for the record
        page.wait_for_timeout(400)
        page.locator(".sw-analyses").screenshot(path=str(ARTIFACTS / "analyses_vit_panel.png"))
        assert not errors, errors
