"""End to end: the two classroom explorers in a real JupyterLab, edited from the browser.

Each edit must reach the kernel and come back as new HTML computed by Python (the error line
for mismatched shapes; the output size when the padding changes), so a passing test shows the
round trip works, not only that the page rendered.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import browser_page, chromium_path
from .jupyterlab import jupyterlab, run_notebook_in_lab

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"


@pytest.mark.browser
@pytest.mark.slow
def test_classroom_explorers_in_jupyterlab(tmp_path: Path) -> None:
    chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    with jupyterlab(tmp_path) as lab:
        with browser_page(viewport={"width": 1400, "height": 2200}) as page:
            run_notebook_in_lab(page, lab, "classroom.ipynb", [
                "from saliency_widget.classroom.explorers import relu_rules_explorer\nrelu_rules_explorer()",
                "from saliency_widget.classroom.explorers import transposed_conv_explorer\ntransposed_conv_explorer()",
            ])
            # ReLU explorer: the default 2x2 example is shown, with the three rules
            page.get_by_text("deconvnet: relu(R)").wait_for(timeout=120000)
            page.get_by_text("guided_backprop: R·[x>0]·[R>0]").wait_for()
            # Transposed-convolution explorer: TF conv2d_transpose's 4x4 output and a passing live check
            page.get_by_text("4×4", exact=True).wait_for(timeout=60000)
            page.get_by_text("equals the input-gradient of conv2d(x, w)").wait_for()

            # Edit x in the browser: a shape mismatch with R comes back from Python as one line
            x_box = page.locator("textarea").nth(0)
            x_box.fill("3 -1 0")
            x_box.press("Tab")
            page.get_by_text("they must have the same shape").wait_for(timeout=30000)
            r_box = page.locator("textarea").nth(1)
            r_box.fill("-1 2 5")
            r_box.press("Tab")
            page.get_by_text("they must have the same shape").wait_for(state="detached", timeout=30000)

            # Change the padding to TF "valid": Python recomputes a 5x5 output
            page.locator(".widget-dropdown select").first.select_option(label="TF valid")
            page.get_by_text("5×5", exact=True).wait_for(timeout=30000)
            assert page.get_by_text("4×4", exact=True).count() == 0
            page.screenshot(path=str(ARTIFACTS / "e2e_classroom.png"), full_page=True)
