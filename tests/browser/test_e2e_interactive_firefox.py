"""The interactive export in Firefox ESR (Debian's package), driven over WebDriver BiDi.

Playwright drives only its own patched Firefox, so this test talks WebDriver BiDi to the
system ``firefox-esr`` directly (``--remote-debugging-port``, one websocket). It opens the
export from file://, clicks a method, a class, a filter and an activation and changes the
colormap, and compares each panel with Python's render of the same state. Every request the
page makes is recorded (only the file itself may load); no console error may appear.

scripts/setup.sh installs ``firefox-esr`` from Debian's packages; with ``CI`` set a missing Firefox
fails (like Chromium), locally it skips. Screenshot: artifacts/interactive/firefox.png.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from saliency_widget.viz import render as R
from saliency_widget.viz.interactive import render_state
from saliency_widget.viz.interactive_report import interactive_report
from tests.helpers import REPO_ROOT, rgb_image, to_tensor
from tests.nets import sequential_cnn

from .harness import free_port, missing

SHOTS = REPO_ROOT / "artifacts" / "interactive"


class Bidi:
    """A minimal WebDriver BiDi session: commands in order, events kept."""

    def __init__(self, url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self.n = 0
        self.events: list[dict[str, Any]] = []

    def __call__(self, method: str, **params: Any) -> Any:
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.n:
                if msg.get("type") == "error":
                    raise AssertionError(f"{method}: {msg.get('error')}: {msg.get('message')}")
                return msg["result"]
            self.events.append(msg)


@contextmanager
def firefox() -> Iterator[Bidi]:
    exe = shutil.which("firefox-esr")
    if exe is None:  # scripts/setup.sh installs it: with CI set a missing Firefox fails, like Chromium
        missing("firefox-esr not found")
        raise AssertionError("unreachable")
    try:
        import websocket  # noqa: F401
    except ImportError:
        missing("Python package websocket-client is not installed")
    port, profile = free_port(), tempfile.mkdtemp(prefix="sw-ff-")
    env = {**os.environ, "HOME": profile, "MOZ_DISABLE_CONTENT_SANDBOX": "1"}
    proc = subprocess.Popen([exe, "--headless", "--no-remote", "--profile", profile, f"--remote-debugging-port={port}", "about:blank"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "WebDriver BiDi listening" in line:
                break
        session = Bidi(f"ws://127.0.0.1:{port}/session")
        session("session.new", capabilities={})
        yield session
    finally:
        proc.terminate()
        proc.wait(20)
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.browser
@pytest.mark.slow
def test_interactive_export_in_firefox_esr(tmp_path: Path) -> None:
    built = interactive_report([rgb_image(2)], sequential_cnn(), methods=["gradient", "guided_backprop", "gradcam"], transform=to_tensor,
                               names=["noise"], topk=2, layers=["4", "7"], grid=2, projection_rules=("gradient", "deconvnet", "guided_backprop"))
    path = tmp_path / "report.html"
    path.write_text(built.html, encoding="utf-8")
    image = built.manifest["images"][0]
    with firefox() as bidi:
        bidi("session.subscribe", events=["log.entryAdded", "network.beforeRequestSent"])
        ctx = bidi("browsingContext.getTree")["contexts"][0]["context"]
        bidi("browsingContext.setViewport", context=ctx, viewport={"width": 1300, "height": 1000})
        bidi("browsingContext.navigate", context=ctx, url=path.as_uri(), wait="complete")

        def js(expression: str) -> Any:
            res = bidi("script.evaluate", expression=expression, target={"context": ctx}, awaitPromise=True)
            assert res["type"] == "success", res
            return res["result"].get("value")

        for _ in range(120):
            if js("document.querySelector('.sw-viewer').dataset.swReady") in ("yes", "failed"):
                break
            time.sleep(0.25)
        assert js("document.querySelector('.sw-viewer').dataset.swReady") == "yes"

        def check(panels: tuple[str, ...]) -> None:
            st = json.loads(js("document.querySelector('.sw-viewer').dataset.state"))
            want = render_state(built.payload, image, st)
            for panel in panels:
                url = js(f"document.querySelector('.sw-viewer canvas[data-panel={panel}]').toDataURL('image/png')")
                np.testing.assert_array_equal(R.from_png(base64.b64decode(url.split(",", 1)[1])), want[panel], err_msg=panel)

        check(("map", "feature", "projection", "input"))
        js("document.querySelector('.sw-methods [data-method=guided_backprop]').click()")
        check(("map", "projection"))
        js(f"document.querySelector(\".sw-chart [data-class='{image['classes'][1]}']\").click()")
        check(("map",))
        js("document.querySelector(\".sw-layers [data-layer='4']\").click()")
        js("document.querySelector(\".sw-filters [data-channel='3']\").click()")
        check(("feature", "projection", "input"))
        layer = next(e for e in image["layers"] if e["key"] == "4")
        (y, x), (_, h, w) = layer["projections"][layer["channels"].index(3)][1]["p"], layer["shape"]
        js(f"""(() => {{ const c = document.querySelector('.sw-viewer canvas[data-panel=feature]'), r = c.getBoundingClientRect();
                c.dispatchEvent(new MouseEvent('click', {{clientX: r.left + r.width * {(x + 0.5) / w}, clientY: r.top + r.height * {(y + 0.5) / h},
                                                          bubbles: true}})); }})()""")
        assert json.loads(js("document.querySelector('.sw-viewer').dataset.state"))["position"] == 1
        check(("projection", "input"))
        js("(() => { const s = document.querySelector('select[data-control=cmap]'); s.value = 'hot'; s.dispatchEvent(new Event('change')); })()")
        assert json.loads(js("document.querySelector('.sw-viewer').dataset.state"))["cmap"] == "hot"
        check(("map", "projection"))
        SHOTS.mkdir(parents=True, exist_ok=True)
        shot = bidi("browsingContext.captureScreenshot", context=ctx, origin="document")
        (SHOTS / "firefox.png").write_bytes(base64.b64decode(shot["data"]))
    logs = [e["params"] for e in bidi.events if e.get("method") == "log.entryAdded"]
    urls = [e["params"]["request"]["url"] for e in bidi.events if e.get("method") == "network.beforeRequestSent"]
    assert [entry.get("text") for entry in logs if entry.get("level") in ("error", "warn")] == []
    assert set(urls) <= {path.as_uri()}, urls
