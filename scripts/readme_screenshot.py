"""Take the explorer screenshots of the docs: JupyterLab + headless Chromium at 1366x768 with the
file browser open, as a laptop user sees it.

* docs/explorer_1366.png: explore() on the bundled model;
* docs/explorer_vit.png: explore() on a timm ViT-Tiny with random weights (no download).

Run: python scripts/readme_screenshot.py [bundled|vit ...]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.harness import browser_page  # noqa: E402
from tests.browser.jupyterlab import jupyterlab, run_notebook_in_lab  # noqa: E402

SHOTS = {
    "bundled": ("explorer_1366.png", "from saliency_widget.widget import explore\nw = explore()\nw\n"),
    "vit": (
        "explorer_vit.png",
        "import timm\nfrom saliency_widget.widget import explore\n"
        "vit = timm.create_model('vit_tiny_patch16_224', pretrained=False).eval()  # random weights, offline\n"
        "w = explore(vit)\nw\n",
    ),
}


def shoot(name: str) -> Path:
    """Start Lab, run the notebook of ``name``, wait for the first map and the filter grid, save the screenshot."""
    file, cell = SHOTS[name]
    with tempfile.TemporaryDirectory() as tmp, jupyterlab(Path(tmp)) as lab:
        with browser_page(viewport={"width": 1366, "height": 768}) as page:
            run_notebook_in_lab(page, lab, "explorer.ipynb", [cell])
            page.wait_for_selector(".sw-map-image", state="visible", timeout=300000)
            page.wait_for_function("() => !document.querySelector('.sw-map-image.sw-busy')", timeout=300000)
            page.wait_for_selector(".sw-cg-atlas[src]", timeout=120000)
            if not page.evaluate("() => !!document.querySelector('#filebrowser:not(.lm-mod-hidden)')"):
                page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
            page.wait_for_timeout(1500)  # images decoded and laid out
            page.evaluate("() => document.querySelector('.sw-explorer').scrollIntoView({block: 'start'})")
            page.wait_for_timeout(500)
            out = ROOT / "docs" / file
            page.screenshot(path=str(out))
            return out


def main() -> None:
    """Take the screenshots named on the command line (default: all)."""
    for name in sys.argv[1:] or list(SHOTS):
        print(f"wrote {shoot(name)}")


if __name__ == "__main__":
    main()
