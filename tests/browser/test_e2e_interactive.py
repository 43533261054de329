"""The interactive export opened from file:// in headless Chromium with the network off.

Each click (a method, a class, a layer's filter, an activation, the colormap, the sign)
must show the image precomputed for that state: the canvas pixels equal Python's render of
the page's values exactly, and the widget's own render (``compute_view``) within quantisation.
No request may leave the page and the console must stay free of errors.

Screenshots: artifacts/interactive/*.png.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from saliency_widget.data import load_sample
from saliency_widget.engine import Explainer
from saliency_widget.models import shapes_cnn
from saliency_widget.views.pipeline import Snapshot, compute_view
from saliency_widget.viz import render as R
from saliency_widget.viz.images import describe_model, to_model_input
from saliency_widget.viz.interactive import render_state
from saliency_widget.viz.interactive_report import interactive_report
from tests.helpers import REPO_ROOT

from .harness import browser_page

SHOTS = REPO_ROOT / "artifacts" / "interactive"
METHODS = ["gradient", "deconvnet", "guided_backprop", "gradcam"]
RULES = ("gradient", "deconvnet", "guided_backprop")


def _pixels(page: Any, panel: str) -> np.ndarray:
    """The canvas of ``panel`` at its own resolution (read as PNG: exact for opaque pixels)."""
    url = page.evaluate(
        """(panel) => {
            const c = document.querySelector(`.sw-viewer canvas[data-panel="${panel}"]`);
            return c.hidden ? null : c.toDataURL('image/png');
        }""",
        panel,
    )
    assert url is not None, f"the {panel} panel shows a message instead of an image"
    return R.from_png(base64.b64decode(url.split(",", 1)[1]))


def _state(page: Any) -> dict[str, Any]:
    return json.loads(page.evaluate("() => document.querySelector('.sw-viewer').dataset.state"))


class Check:
    """Compares the page's panels with Python's render of the same state."""

    def __init__(self, page: Any, built: Any, ex: Explainer, io: Any) -> None:
        self.page, self.built, self.ex, self.io = page, built, ex, io
        self.image = built.manifest["images"][0]
        self.n = 0

    def __call__(self, name: str, panels: tuple[str, ...]) -> dict[str, np.ndarray]:
        st = _state(self.page)
        want = render_state(self.built.payload, self.image, st)
        layer = next(e for e in self.image["layers"] if e["key"] == st["layer"])
        spot = layer["projections"][layer["channels"].index(st["channel"])][st["position"]]
        snap = Snapshot(version=0, method=st["method"], target=st["target"], layer=st["layer"], channel=st["channel"],
                        position=tuple(spot["p"]), sign=st["sign"], clip=st["clip"], cmap=st["cmap"],
                        overlay=st["overlay"], alpha=st["alpha"], view="single")
        widget = compute_view(self.ex, snap, labels=self.io.labels, mean=self.io.mean, std=self.io.std)
        got = {}
        for panel in panels:
            got[panel] = _pixels(self.page, panel)
            np.testing.assert_array_equal(got[panel], want[panel], err_msg=f"{name}: {panel}")  # JS == Python, exactly
            if panel in ("map", "projection"):  # == the widget, which draws the same 16-bit planes
                png, _ = widget.png(panel, snap.options)
                assert png is not None
                np.testing.assert_array_equal(got[panel], R.from_png(png))
            else:
                np.testing.assert_array_equal(got[panel], R.from_png(widget.panels[panel]))
        self.n += 1
        self.page.locator(".sw-viewer").screenshot(path=str(SHOTS / f"{self.n:02d}_{name}.png"))
        return got


@pytest.mark.browser
@pytest.mark.slow
def test_interactive_export_clicks_offline_from_file(tmp_path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    model, image = shapes_cnn(), load_sample("shapes_star")
    built = interactive_report(
        [image], model, names=["shapes_star"], methods=METHODS, topk=3,
        layers=["features.relu4", "features.relu5"], channels={"features.relu4": list(range(8)), "features.relu5": list(range(16))},
        grid=2, projection_rules=RULES,
    )
    path = tmp_path / "report.html"
    path.write_text(built.html, encoding="utf-8")
    io = describe_model(model)
    ex = Explainer(model, to_model_input(image, io.transform).unsqueeze(0))
    requests: list[str] = []
    problems: list[str] = []
    with browser_page(offline=True, viewport={"width": 1300, "height": 1000}) as page:
        page.context.route("**/*", lambda r: (requests.append(r.request.url), r.continue_() if r.request.url == path.as_uri() else r.abort()))
        page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.goto(path.as_uri())
        page.wait_for_selector(".sw-viewer[data-sw-ready=yes]", timeout=30000)
        check = Check(page, built, ex, io)
        first = check("opened", ("map", "feature", "projection", "input"))
        st = _state(page)
        assert (st["method"], st["layer"]) == ("gradient", "features.relu5")

        page.click(".sw-methods [data-method=guided_backprop]")
        after = check("method_guided_backprop", ("map", "projection"))
        assert not np.array_equal(after["map"], first["map"]) and not np.array_equal(after["projection"], first["projection"])

        second = check.image["classes"][1]
        page.click(f".sw-chart [data-class='{second}']")
        cls = check("class_" + check.image["labels"][str(second)], ("map",))
        assert _state(page)["target"] == second and not np.array_equal(cls["map"], after["map"])

        page.click(".sw-layers [data-layer='features.relu4']")
        page.click(".sw-filters [data-channel='5']")
        filt = check("layer4_filter5", ("feature", "projection", "input"))
        assert (_state(page)["layer"], _state(page)["channel"]) == ("features.relu4", 5)

        layer = next(e for e in check.image["layers"] if e["key"] == "features.relu4")
        target_spot = next(i for i, s in enumerate(layer["projections"][5]) if i > 0)
        y, x = layer["projections"][5][target_spot]["p"]
        box = page.locator(".sw-viewer canvas[data-panel=feature]").bounding_box()
        _, fh, fw = layer["shape"]
        page.mouse.click(box["x"] + (x + 0.5) * box["width"] / fw, box["y"] + (y + 0.5) * box["height"] / fh)
        assert _state(page)["position"] == target_spot
        act = check("activation", ("projection", "input"))
        assert not np.array_equal(act["projection"], filt["projection"]) and not np.array_equal(act["input"], filt["input"])

        page.select_option(".sw-controls select[data-control=cmap]", "viridis")
        cm = check("colormap_viridis", ("map", "projection"))
        assert not np.array_equal(cm["map"], cls["map"])

        page.select_option(".sw-controls select[data-control=sign]", "signed")
        check("sign_signed", ("map", "projection"))
        page.check(".sw-controls input[data-control=overlay]")
        check("overlay", ("map", "projection"))
        page.click(".sw-compare figure:nth-child(4)")  # a compare thumbnail selects its method
        assert _state(page)["method"] == "gradcam"
        check("compare_gradcam", ("map",))
        page.screenshot(path=str(SHOTS / "full_page.png"), full_page=True)
    assert requests == [path.as_uri()]  # the page itself, nothing else
    assert problems == []


@pytest.mark.browser
@pytest.mark.parametrize("how", ["src", "srcdoc"])
def test_interactive_export_works_inside_an_iframe(tmp_path: Path, how: str) -> None:
    from tests.helpers import rgb_image, to_tensor
    from tests.nets import sequential_cnn

    SHOTS.mkdir(parents=True, exist_ok=True)
    built = interactive_report([rgb_image(4)], sequential_cnn(), methods=["gradient", "gradcam"], transform=to_tensor,
                               names=["noise"], topk=2, layers=["7"])
    (tmp_path / "report.html").write_text(built.html, encoding="utf-8")
    frame = "src='report.html'" if how == "src" else f"srcdoc=\"{html.escape(built.html, quote=True)}\""
    host = tmp_path / "host.html"
    host.write_text(f"<!doctype html><html><body><h1>A course page</h1><iframe {frame} width='1200' height='900'></iframe></body></html>")
    requests: list[str] = []
    problems: list[str] = []
    allowed = {host.as_uri(), (tmp_path / "report.html").as_uri()}
    with browser_page(offline=True) as page:
        page.context.route("**/*", lambda r: (requests.append(r.request.url), r.continue_() if r.request.url in allowed else r.abort()))
        page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.goto(host.as_uri())
        inner = page.frame_locator("iframe")
        inner.locator(".sw-viewer[data-sw-ready=yes]").wait_for(timeout=30000)
        inner.locator(".sw-methods [data-method=gradcam]").click()
        state = json.loads(inner.locator(".sw-viewer").get_attribute("data-state") or "{}")
        assert state["method"] == "gradcam"
        page.screenshot(path=str(SHOTS / f"iframe_{how}.png"))
    assert set(requests) <= allowed and host.as_uri() in requests
    assert problems == []


@pytest.mark.browser
def test_a_second_image_has_its_own_views(tmp_path: Path) -> None:
    from tests.helpers import rgb_image, to_tensor
    from tests.nets import sequential_cnn

    built = interactive_report([rgb_image(5), rgb_image(6)], sequential_cnn(), methods=["gradient", "deconvnet"], transform=to_tensor,
                               names=["first", "second"], topk=2, layers=["4", "7"])
    path = tmp_path / "two.html"
    path.write_text(built.html, encoding="utf-8")
    problems: list[str] = []
    with browser_page(offline=True) as page:
        page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.goto(path.as_uri())
        page.wait_for_selector(".sw-viewer[data-sw-ready=yes]", timeout=30000)
        page.click(".sw-images [data-image='1']")
        st = _state(page)
        second = built.manifest["images"][1]
        seven = second["layers"][1]
        assert (st["image"], st["target"], st["layer"]) == (1, second["target"], "7")  # the layer shown before
        assert st["channel"] == seven["channels"][int(np.argmax(seven["hi"]))]
        want = render_state(built.payload, second, st)
        for panel in ("map", "feature", "projection", "input"):
            np.testing.assert_array_equal(_pixels(page, panel), want[panel], err_msg=panel)
    assert problems == []


@pytest.mark.browser
def test_faithfulness_scoreboard_below_the_viewer_breaks_no_csp_rule(tmp_path: Path) -> None:
    from saliency_widget.viz.report import render_report
    from tests.helpers import LABELS, rgb_image, to_tensor
    from tests.nets import small_cnn

    rep = render_report([rgb_image(0)], small_cnn(), ["gradient", "deconvnet"], labels=LABELS, transform=to_tensor,
                        interactive=True, topk=1, faithfulness=True)
    path = rep.save(tmp_path / "faith.html")
    problems: list[str] = []
    with browser_page(offline=True, viewport={"width": 1300, "height": 1400}) as page:
        page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.goto(path.as_uri())
        page.wait_for_selector(".sw-viewer[data-sw-ready=yes]", timeout=30000)
        board = page.locator(".sw-extra .sw-scoreboard")
        assert board.count() == 1 and board.is_visible()
        # the inline style attributes apply (allowed by hash): the curves sit side by side
        assert page.locator(".sw-extra .sw-curves").evaluate("e => getComputedStyle(e).display") == "flex"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "faithfulness_below_viewer.png"), full_page=True)
    assert problems == []
