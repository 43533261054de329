"""The interactive report's viewer (js/viewer.js) in headless Chromium: decoding and rendering equal Python's, bit for bit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from saliency_widget.viz import render as R
from saliency_widget.viz.bundle import Packer, decode, map_planes
from tests.browser.harness import js_modules_page

PAGE = "<!doctype html><html><body></body></html>"


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    # viewer.js imports the one renderer and the one plane decoder
    with js_modules_page(PAGE, ("viewer.js", "render.js", "planes.js"), {"V": "viewer.js"}) as pg:
        yield pg


def _luts() -> dict[str, list[int]]:
    return {name: R.colormap_lut(name).reshape(-1).tolist() for name in R.COLORMAPS}


@pytest.mark.browser
def test_rint_rounds_halves_to_even_like_numpy(page: Any) -> None:
    xs = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.49, 254.5, 255.5, 127.50000001, 0.0]
    assert page.evaluate("xs => xs.map(V.rint)", xs) == np.rint(xs).tolist()


@pytest.mark.browser
@pytest.mark.parametrize("p", [0.0, 37.3, 90.0, 99.0, 99.5, 100.0])
def test_percentile_equals_numpy(page: Any, p: float) -> None:
    v = np.abs(np.random.default_rng(1).standard_normal(397)) ** 3
    assert page.evaluate("([v, p]) => V.percentile(v, p)", [v.tolist(), p]) == float(np.percentile(v, p))


@pytest.mark.browser
def test_decode_and_inflate_equal_the_python_side(page: Any) -> None:
    rng = np.random.default_rng(2)
    packer = Packer()
    refs = [
        packer.add(rng.integers(0, 256, (3, 5), dtype=np.uint8), "inputs"),
        packer.add_plane(np.abs(rng.standard_normal((4, 6))), "u2", "maps"),
        packer.add_plane(rng.standard_normal((7,)) * 1e-6, "i2", "maps"),
        *packer.add_map(np.broadcast_to(rng.standard_normal((5, 6)), (3, 5, 6)), "maps").values(),  # abs read from sum's bytes
    ]
    raw = packer.raw()
    got = page.evaluate(
        """async ([b64, refs]) => {
            const buf = await V.inflate(b64);
            return {n: buf.byteLength, arrays: refs.map((r) => Array.from(V.decodeRef(buf, r)))};
        }""",
        [packer.payload_base64(), refs],
    )
    assert got["n"] == len(raw)
    for ref, arr in zip(refs, got["arrays"]):
        assert arr == decode(raw, ref).reshape(-1).tolist()  # exactly: q * s in float64 on both sides


CASES = [(sign, cmap) for sign in R.SIGNS for cmap in R.COLORMAPS]


@pytest.mark.browser
@pytest.mark.parametrize(("sign", "cmap"), CASES)
def test_render_map_is_pixel_identical_to_python(page: Any, sign: str, cmap: str) -> None:
    raw = np.random.default_rng(3).standard_normal((3, 13, 17))
    packer = Packer()
    a, s = map_planes(raw)
    ref = packer.add_plane(a if sign == "absolute" else s, "u2" if sign == "absolute" else "i2", "maps")
    plane = decode(packer.raw(), ref)
    want = R.render_map(plane, sign=sign, clip_percentile=98.0, cmap=cmap)
    got = page.evaluate(
        """([plane, sign, cmap, luts]) => {
            const r = V.renderMap(Float64Array.from(plane), {sign, clip: 98, cmap}, luts, ['coolwarm', 'bwr']);
            return {rgba: Array.from(r.rgba), vmax: r.vmax};
        }""",
        [plane.reshape(-1).tolist(), sign, cmap, _luts()],
    )
    assert want.rgb is not None
    rgba = np.asarray(got["rgba"], np.uint8).reshape(13, 17, 4)
    np.testing.assert_array_equal(rgba[..., :3], want.rgb)
    assert (rgba[..., 3] == 255).all() and got["vmax"] == want.vmax


@pytest.mark.browser
def test_all_zero_part_gives_the_same_message(page: Any) -> None:
    plane = -np.arange(6, dtype=np.float64).reshape(2, 3)
    want = R.render_map(plane, sign="positive")
    got = page.evaluate("(p) => V.prepareMap(Float64Array.from(p), 'positive', 99).message", plane.reshape(-1).tolist())
    assert got == want.message == "the positive part is all zeros; nothing to show"


@pytest.mark.browser
@pytest.mark.parametrize("sign", ["absolute", "signed", "negative"])
def test_flat_map_gives_the_same_message(page: Any, sign: str) -> None:
    plane = np.full((2, 3), -7.45e-9)  # one value everywhere: a flat colour would look like a map
    want = R.render_map(plane, sign=sign)
    got = page.evaluate("([p, s]) => V.prepareMap(Float64Array.from(p), s, 99).message", [plane.reshape(-1).tolist(), sign])
    assert want.message is not None and got == want.message


@pytest.mark.browser
@pytest.mark.parametrize("alpha", [0.0, 0.35, 0.6, 1.0])
def test_overlay_and_box_are_pixel_identical_to_python(page: Any, alpha: float) -> None:
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    heat = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    weight = rng.random((9, 11))
    rgba = lambda x: np.concatenate([x, np.full((*x.shape[:2], 1), 255, np.uint8)], axis=-1).reshape(-1).tolist()  # noqa: E731
    got = page.evaluate(
        """([b, h, w, a]) => {
            const o = V.overlay(Uint8ClampedArray.from(b), Uint8ClampedArray.from(h), a, Float64Array.from(w));
            return {over: Array.from(o), box: Array.from(V.drawBox(o, 9, 11, [-2, 3, 7, 20]))};
        }""",
        [rgba(base), rgba(heat), weight.reshape(-1).tolist(), alpha],
    )
    over = R.overlay(base, heat, alpha, weight)
    np.testing.assert_array_equal(np.asarray(got["over"], np.uint8).reshape(9, 11, 4)[..., :3], over)
    boxed = R.draw_box(over, (-2, 3, 7, 20), (0, 255, 0), 2)
    np.testing.assert_array_equal(np.asarray(got["box"], np.uint8).reshape(9, 11, 4)[..., :3], boxed)


@pytest.mark.browser
def test_number_format_follows_python_g(page: Any) -> None:
    values = [0.0637, 8.939, 1.2345e-05, 123456.0, 0.000123, 1.0, 100.0, 2.5e10, -3.14159]
    assert page.evaluate("vs => vs.map((v) => V.fmtG(v, 3))", values) == [f"{v:.3g}" for v in values]
    assert page.evaluate("vs => vs.map((v) => V.fmtG(v, 4))", values) == [f"{v:.4g}" for v in values]


@pytest.mark.browser
def test_nearest_spot(page: Any) -> None:
    spots = [{"p": [5, 5]}, {"p": [1, 1]}, {"p": [1, 6]}]
    assert page.evaluate("(s) => [V.nearestSpot(s, 0, 0), V.nearestSpot(s, 2, 7), V.nearestSpot(s, 4, 4)]", spots) == [1, 2, 0]
