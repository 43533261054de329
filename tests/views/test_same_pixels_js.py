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
from saliency_widget.views.pipeline import CompareTile
from saliency_widget.views.rawmap import RawMap
from saliency_widget.viz import render as R
from saliency_widget.viz.bundle import Packer
from saliency_widget.widget.mapcanvas import CompareCanvas, MapCanvas
from tests.browser.harness import js_modules_page

PAGE = "<!doctype html><html><body><div id='host' style='width:224px'></div></body></html>"

def _mount_js(view: str, global_model: str, then: str) -> str:
    """JS that mounts ``window.<view>`` (a front-end module) on a fake anywidget model holding the traits, then runs ``then``."""
    return """async ([traits, b64]) => {
    const bytes = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
    const values = {...traits, planes: bytes(b64.planes), base: bytes(b64.base), luts: bytes(b64.luts)};
    const handlers = {};
    const model = {get: (k) => values[k], on: (e, f) => { for (const n of e.split(' ')) (handlers[n] ||= []).push(f); },
                   off: () => {}, set: (k, v) => { values[k] = v; for (const f of handlers['change:' + k] || []) f(); }};
    const host = document.getElementById('host');
    host.textContent = '';
    window.VIEW.default.render({model, el: host});
    window.GLOBAL = model;
    await new Promise((r) => setTimeout(r, 0));
    THEN
}""".replace("VIEW", view).replace("GLOBAL", global_model).replace("THEN", then)


MOUNT = _mount_js("MV", "mvModel", """const c = host.querySelector('canvas.sw-mv-canvas');
    if (c.hidden) return {message: host.querySelector('.sw-mv-msg').textContent};
    return {rgba: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data), h: c.height, w: c.width};""")


BINARY = ("planes", "base", "luts")


def _traits(canvas: Any) -> dict[str, Any]:
    """Every synced trait the front end reads, but the binary ones (sent base64 and decoded in the page)."""
    return {k: getattr(canvas, k) for k in canvas.keys if k not in BINARY and not k.startswith("_") and k not in ("layout", "tabbable", "tooltip")}


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    files = ("viewer.js", "render.js", "planes.js", "panel.js", "map_view.js", "compare_view.js")
    with js_modules_page(PAGE, files, {"V": "viewer.js", "MV": "map_view.js", "CV": "compare_view.js"}) as pg:
        yield pg


def _map(kind: str) -> np.ndarray:
    rng = np.random.default_rng(11)
    m = rng.standard_normal((3, 12, 16)) * 1e-3
    m[:, :3, :] = 0.0  # exact zeros: the signed map's midpoint (127.5 -> 128, half to even)
    m[:, 5, 5] = 0.2  # one extreme value, clipped by the percentile
    if kind == "unsigned":
        m = np.abs(m)
    if kind == "single":  # one channel repeated (as every CAM and occlusion): only the sum plane travels
        m = np.broadcast_to(m[0], m.shape).copy()
    return m


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


CASES = [
    (kind, DisplayOptions(sign=sign, cmap=cmap, clip=clip, overlay=overlay, alpha=0.45))
    for kind in ("signed", "unsigned", "single")
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
    canvas.set_options(opts)
    traits = _traits(canvas)
    widget = page.evaluate(MOUNT, [traits, {"planes": _b64(canvas.planes), "base": _b64(canvas.base), "luts": _b64(canvas.luts)}])
    canvas.close()

    # the offline page: the packed planes, decoded and drawn by js/viewer.js (js/render.js)
    packer = Packer()
    refs = packer.add_map(m, "maps")  # as the page stores a map (viz.interactive)
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
    traits = _traits(canvas)
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


COMPARE_MOUNT = _mount_js("CV", "cvModel", "return window.readTiles();")

READ_TILES = """() => { window.readTiles = () => Array.from(document.querySelectorAll('.sw-cv-tile')).map((t) => {
    const c = t.querySelector('canvas.sw-mv-canvas');
    if (c.hidden) return {method: t.dataset.method, message: t.querySelector('.sw-mv-msg').textContent};
    return {method: t.dataset.method, cmap: c.dataset.cmap, rgba: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)};
}); }"""


@pytest.mark.browser
@pytest.mark.parametrize(("kind", "opts"), CASES[:4], ids=[f"{k}-{o.sign}-{o.cmap}-{o.clip}-{o.overlay}" for k, o in CASES[:4]])
def test_a_compare_tile_draws_the_same_pixels_as_python(page: Any, kind: str, opts: DisplayOptions) -> None:
    raws = [RawMap.from_map(_map(kind)), RawMap.from_map(_map("single") * 3.0)]  # a single-plane tile after a two-plane one
    base = np.random.default_rng(12).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    canvas = CompareCanvas()
    canvas.show_tiles([CompareTile("gradient", "Gradient", raws[0], None), CompareTile("occlusion", "Occlusion", raws[1], None),
                       CompareTile("deconvnet", "DeconvNet", None, "DeconvNet needs ReLUs")], base)
    canvas.set_options(opts)
    page.evaluate(READ_TILES)
    got = page.evaluate(COMPARE_MOUNT, [_traits(canvas), {"planes": _b64(canvas.planes), "base": _b64(canvas.base), "luts": _b64(canvas.luts)}])
    assert [t["method"] for t in got] == ["gradient", "occlusion", "deconvnet"]
    assert got[2]["message"] == "DeconvNet needs ReLUs"
    for raw, tile in zip(raws, got[:2]):
        want = raw.render(opts, base)
        if want.rgb is None:
            assert tile["message"] == want.message
            continue
        np.testing.assert_array_equal(np.asarray(tile["rgba"], np.uint8).reshape(12, 16, 4)[..., :3], want.rgb)

    # a display change: every tile redrawn in the browser from the planes it holds, the same pixels as Python's
    changed = DisplayOptions(sign=opts.sign, cmap="viridis" if opts.cmap != "viridis" else "gray", clip=opts.clip,
                             overlay=opts.overlay, alpha=opts.alpha)
    again = page.evaluate(
        """async (i) => { window.cvModel.set('cmap_index', i); await new Promise((r) => setTimeout(r, 0));
            return {tiles: window.readTiles(), ms: Number(document.querySelector('.sw-cv-root').dataset.ms)}; }""",
        list(canvas.choices["cmap"]).index(changed.cmap),
    )
    canvas.close()
    print(f"compare grid (3 tiles of 12x16) redrawn in {again['ms']:.2f} ms")
    for raw, tile in zip(raws, again["tiles"][:2]):
        want = raw.render(changed, base)
        if want.rgb is not None:
            assert tile["cmap"] == want.cmap
            np.testing.assert_array_equal(np.asarray(tile["rgba"], np.uint8).reshape(12, 16, 4)[..., :3], want.rgb)
