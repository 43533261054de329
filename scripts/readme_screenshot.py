"""Take README's explorer screenshot (docs/explorer_1366.png): explore() on the bundled model in
JupyterLab + headless Chromium at 1366x768. Run: python scripts/readme_screenshot.py"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.harness import browser_page  # noqa: E402
from tests.browser.jupyterlab import jupyterlab, run_notebook_in_lab  # noqa: E402

SETUP = """\
from saliency_widget.widget import explore
w = explore()
w
"""


def main() -> None:
    """Start Lab, run the notebook, wait for the first map, save the screenshot."""
    with tempfile.TemporaryDirectory() as tmp, jupyterlab(Path(tmp)) as lab:
        with browser_page(viewport={"width": 1366, "height": 768}) as page:
            run_notebook_in_lab(page, lab, "explorer.ipynb", [SETUP])
            page.wait_for_selector(".sw-map-image", state="visible", timeout=120000)
            page.wait_for_function("() => !document.querySelector('.sw-map-image.sw-busy')", timeout=60000)
            page.wait_for_selector("canvas.sw-fm-canvas", timeout=60000)
            page.wait_for_timeout(1500)  # images decoded and laid out
            page.locator(".sw-explorer").scroll_into_view_if_needed()
            out = ROOT / "docs" / "explorer_1366.png"
            page.screenshot(path=str(out))
            print(f"wrote {out}")


if __name__ == "__main__":
    main()
