"""One renderer: the widget's map panel, the offline page and Python draw the same pixels (headless Chromium).

The widget's front end (js/map_view.js, mounted on a stand-in model holding what
``MapCanvas`` sends), the offline page's viewer (js/viewer.js on the page's packed planes) and
Python (:meth:`RawMap.render`, i.e. ``viz.render.render_map`` on the same planes) are compared
on signed and unsigned maps, exact zeros included (the signed zero lands on the colormap's
half step, 127.5, rounded to even on every side).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from saliency_widget.views import DisplayOptions
from saliency_widget.views.rawmap import RawMap
from saliency_widget.viz import render as R
from saliency_widget.viz.bundle import Packer
from saliency_widget.widget.mapcanvas import MapCanvas
from tests.browser.harness import browser_page
from tests.helpers import REPO_ROOT

PAGE = "<!doctype html><html><body><div id='host' style='width:224px'></div></body></html>"

MOUNT = """async ([traits, b64]) => {
    const bytes = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
    const values = {...traits, planes: bytes(b64.planes), base: bytes(b64.base), luts: bytes(b64.luts)};
    const handlers = {};
    const model = {get: (k) => values[k], on: (e, f) => { for (const n of e.split(' ')) (handlers[n] ||= []).push(f); },
                   off: () => {}, set: (k, v) => { values[k] = v; for (const f of handlers['change:' + k] || []) f(); }};
    const host = document.getElementById('host');
    host.textContent = '';
    window.MV.default.render({model, el: host});
    window.mvModel = model;
    await new Promise((r) => setTimeout(r, 0));
    const c = host.querySelector('canvas.sw-mv-canvas');
    if (c.hidden) return {message: host.querySelector('.sw-mv-msg').textContent};
    return {rgba: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data), h: c.height, w: c.width};
}"""


def _serve(body: str) -> Any:
    return lambda route: route.fulfill(status=200, content_type="text/javascript", body=body)


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with browser_page() as pg:
        pg.route("http://sw.test/index.html", lambda r: r.fulfill(status=200, content_type="text/html", body=PAGE))
        for name in ("viewer.js", "render.js", "map_view.js"):
            body = (REPO_ROOT / "js" / name).read_text(encoding="utf-8")
            pg.route(f"http://sw.test/{name}", _serve(body))
        pg.goto("http://sw.test/index.html")
        pg.evaluate("async () => { window.V = await import('/viewer.js'); window.MV = await import('/map_view.js'); }")
        yield pg


def _map(kind: str) -> np.ndarray:
    rng = np.random.default_rng(11)
    m = rng.standard_normal((3, 12, 16)) * 1e-3
    m[:, :3, :] = 0.0  # exact zeros: the signed map's midpoint (127.5 -> 128, half to even)
    m[:, 5, 5] = 0.2  # one extreme value, clipped by the percentile
    if kind == "unsigned":
        m = np.abs(m)
    return m


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


CASES = [
    (kind, DisplayOptions(sign=sign, cmap=cmap, clip=clip, overlay=overlay, alpha=0.45))
    for kind in ("signed", "unsigned")
    for sign, cmap, clip, overlay in [
        ("absolute", "magma", 99.0, False), ("signed", "coolwarm", 99.0, False), ("signed", "viridis", 95.0, False),
        ("positive", "hot", 100.0, False), ("negative", "gray", 98.0, False), ("signed", "bwr", 99.5, True),
        ("absolute", "viridis", 90.0, True),
    ]
]


@pytest.mark.browser
@pytest.mark.parametrize(("kind", "opts"), CASES, ids=[f"{k}-{o.sign}-{o.cmap}-{o.clip}-{o.overlay}" for k, o in CASES])
def test_widget_page_and_python_draw_the_same_pixels(page: Any, kind: str, opts: DisplayOptions) -> None:
    m = _map(kind)
    base = np.random.default_rng(12).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    raw = RawMap.from_map(m)
    want = raw.render(opts, base)

    # the widget: what MapCanvas sends, drawn by js/map_view.js
    canvas = MapCanvas()
    canvas.show_map(raw, base)
    canvas.set_options(opts.sign, opts.cmap, opts.clip, opts.overlay, opts.alpha)
    traits = {k: getattr(canvas, k) for k in ("meta", "cmaps", "signs", "diverging", "sign_index", "cmap_index", "clip", "overlay", "alpha", "size")}
    widget = page.evaluate(MOUNT, [traits, {"planes": _b64(canvas.planes), "base": _b64(canvas.base), "luts": _b64(canvas.luts)}])
    canvas.close()

    # the offline page: the packed planes, decoded and drawn by js/viewer.js (js/render.js)
    packer = Packer()
    refs = {"abs": packer.add_plane(raw.plane("absolute"), "u2", "maps"), "sum": packer.add_plane(raw.plane("signed"), "i2", "maps")}
    luts = {name: R.colormap_lut(name).reshape(-1).tolist() for name in R.COLORMAPS}
    offline = page.evaluate(
        """([b64, refs, opts, luts, base]) => {
            const buf = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
            const planes = {abs: V.decodeRef(buf, refs.abs), sum: V.decodeRef(buf, refs.sum)};
            const r = V.renderView(planes, opts, luts, ['coolwarm', 'bwr'], V.rgbToRgba(Uint8Array.from(base)));
            return r.rgba ? {rgba: Array.from(r.rgba)} : {message: r.message};
        }""",
        [_b64(packer.raw()), refs, opts.as_dict(), luts, base.reshape(-1).tolist()],
    )

    if want.rgb is None:
        assert widget["message"] == offline["message"] == want.message
        return
    assert "message" not in widget and "message" not in offline
    np.testing.assert_array_equal(np.asarray(widget["rgba"], np.uint8).reshape(12, 16, 4)[..., :3], want.rgb)
    np.testing.assert_array_equal(np.asarray(offline["rgba"], np.uint8).reshape(12, 16, 4)[..., :3], want.rgb)


def test_the_page_and_the_widget_quantise_the_same_planes() -> None:
    m = _map("signed")
    raw = RawMap.from_map(m)
    packer = Packer()
    ref = packer.add_plane(raw.plane("signed"), "i2", "maps")
    from saliency_widget.viz.bundle import decode

    np.testing.assert_array_equal(decode(packer.raw(), ref), raw.plane("signed"))
    assert raw.plane("signed")[0, 0] == 0.0 and raw.render(DisplayOptions(sign="signed", cmap="coolwarm")).rgb is not None


@pytest.mark.browser
def test_a_display_change_redraws_without_new_planes(page: Any) -> None:
    raw = RawMap.from_map(_map("signed"))
    canvas = MapCanvas()
    canvas.show_map(raw, np.zeros((12, 16, 3), np.uint8))
    traits = {k: getattr(canvas, k) for k in ("meta", "cmaps", "signs", "diverging", "sign_index", "cmap_index", "clip", "overlay", "alpha", "size")}
    first = page.evaluate(MOUNT, [traits, {"planes": _b64(canvas.planes), "base": _b64(canvas.base), "luts": _b64(canvas.luts)}])
    got = page.evaluate(
        """async (i) => { window.mvModel.set('cmap_index', i); await new Promise((r) => setTimeout(r, 0));
            const c = document.querySelector('canvas.sw-mv-canvas');
            return {rgba: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data), cmap: c.dataset.cmap};
        }""",
        list(R.COLORMAPS).index("viridis"),
    )
    canvas.close()
    want = raw.render(DisplayOptions(cmap="viridis"))
    assert got["cmap"] == "viridis" and got["rgba"] != first["rgba"]
    assert want.rgb is not None
    np.testing.assert_array_equal(np.asarray(got["rgba"], np.uint8).reshape(12, 16, 4)[..., :3], want.rgb)
