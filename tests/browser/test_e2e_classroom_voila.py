"""End to end: `saliency-widget classroom` serves the classroom notebooks as Voilà dashboards.

Starts the real command (which starts Voilà), opens its start page and both dashboards in
headless Chromium, hovers an output element of the transposed-convolution explorer (its kernel
placements pop up) and checks that stopping the command stops Voilà too.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import pytest

from .frontends import isolated_env, require_module, serve
from .harness import browser_page, chromium_path, free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@pytest.mark.browser
@pytest.mark.slow
def test_classroom_command_serves_dashboards(tmp_path: Path) -> None:
    chromium_path()
    require_module("voila")
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    cmd = [sys.executable, "-m", "saliency_widget.cli", "classroom", "--no-browser", f"--port={port}", f"--dir={tmp_path / 'class'}"]
    with serve(cmd, isolated_env(tmp_path), tmp_path, tmp_path / "classroom.log", "/voila/files/ready-probe", port, timeout=180) as srv:
        with browser_page(viewport={"width": 1366, "height": 1000}) as page:
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            # the start page lists the two classroom notebooks
            from playwright.sync_api import TimeoutError as PlaywrightTimeout

            page.goto(srv.url + "/", wait_until="domcontentloaded")
            try:
                page.get_by_text("02_relu_rules.ipynb").wait_for(timeout=60000)
            except PlaywrightTimeout:  # seen once in a full CI run (the listing never came): one reload
                page.reload(wait_until="domcontentloaded")
                page.get_by_text("02_relu_rules.ipynb").wait_for(timeout=60000)
            page.get_by_text("03_transposed_convolution.ipynb").wait_for()

            # 03: the transposed-convolution explorer renders, with C for TF's asymmetric "same" padding
            page.goto(srv.url + "/voila/render/03_transposed_convolution.ipynb", wait_until="domcontentloaded", timeout=180000)
            page.get_by_text("equals the input-gradient of conv2d(x, w)").wait_for(timeout=180000)
            page.get_by_text("C: 4×16", exact=True).wait_for()
            assert page.get_by_text("transposed_conv_explorer()").count() == 0  # a dashboard: no code
            # hovering output element (2, 2) pops up the four kernel placements that sum to 10
            cell = page.locator("td.swc-cell").nth(2 * 4 + 2)
            pop = cell.locator(".swc-pop")
            assert not pop.is_visible()
            cell.hover()
            pop.wait_for(state="visible", timeout=5000)
            assert "= 10" in pop.inner_text() and "x[1,1]·w[0,0]" in pop.inner_text()
            page.screenshot(path=str(ARTIFACTS / "e2e_classroom_voila_hover.png"))
            # a control round-trips to the dashboard's kernel: TF "valid" gives a 5x5 output
            page.mouse.move(0, 0)
            page.locator(".widget-dropdown select").first.select_option(label="TF valid")
            page.get_by_text("5×5", exact=True).wait_for(timeout=60000)
            page.get_by_text("C: 4×25", exact=True).wait_for()
            page.locator(".widget-dropdown select").first.select_option(label="TF same")
            page.get_by_text("C: 4×16", exact=True).wait_for(timeout=60000)
            # Voilà scrolls inside its own container, so a tall viewport shows the whole dashboard
            page.set_viewport_size({"width": 1366, "height": 3600})
            page.screenshot(path=str(ARTIFACTS / "e2e_classroom_voila_transposed.png"))

            # 02: the ReLU-rules explorer and the class-correlation numbers on the bundled model
            page.set_viewport_size({"width": 1366, "height": 1000})
            page.goto(srv.url + "/voila/render/02_relu_rules.ipynb", wait_until="domcontentloaded", timeout=180000)
            page.get_by_text("deconvnet: relu(R)").wait_for(timeout=180000)
            page.get_by_text("correlation between the", exact=False).first.wait_for(timeout=120000)
            page.set_viewport_size({"width": 1366, "height": 3600})
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "e2e_classroom_voila_relu.png"))
            assert not errors, errors
    assert not _answers(f"http://127.0.0.1:{port}/voila/files/ready-probe")  # Voilà stopped with the command
