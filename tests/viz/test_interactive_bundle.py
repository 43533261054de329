"""The interactive report's encoding: quantisation, the two map planes, the packed payload."""

from __future__ import annotations

import base64
import zlib

import numpy as np
import pytest

from saliency_widget.errors import InputError
from saliency_widget.views.rawmap import RawMap
from saliency_widget.viz import render as R
from saliency_widget.viz.bundle import BundleSize, Packer, decode, map_planes, quantise, quantised_planes, single_channel


def test_quantise_uint16_hand_values() -> None:
    q, s = quantise(np.array([0.0, 1.0, 2.0]), "u2")
    assert s == 2.0 / 65535
    assert q.dtype == np.dtype("<u2")
    # 1 / (2 / 65535) = 32767.5 rounds half to even
    assert q.tolist() == [0, 32768, 65535]


def test_quantise_int16_hand_values() -> None:
    q, s = quantise(np.array([-3.0, 0.0, 1.5]), "i2")
    assert s == 3.0 / 32767
    assert q.tolist() == [-32767, 0, 16384]  # 16383.5 -> 16384 (even)


def test_quantise_all_zero_has_scale_zero() -> None:
    q, s = quantise(np.zeros((2, 3)), "i2")
    assert s == 0.0 and q.shape == (2, 3) and not q.any()


@pytest.mark.parametrize(("kind", "values", "match"), [
    ("u2", np.array([1.0, np.nan]), "non-finite"),
    ("i2", np.array([np.inf]), "non-finite"),
    ("u2", np.array([1.0, -0.5]), "non-negative"),
    ("u8", np.array([1.0]), "unknown quantisation 'u8'"),
])  # fmt: skip
def test_quantise_rejects_bad_input(kind: str, values: np.ndarray, match: str) -> None:
    with pytest.raises(InputError, match=match):
        quantise(values, kind)


@pytest.mark.parametrize("kind", ["u2", "i2"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decoded_values_are_within_half_a_step(kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((17, 23)) * 10.0 ** rng.uniform(-8, 3)  # any magnitude
    v = np.abs(v) if kind == "u2" else v
    packer = Packer()
    ref = packer.add_plane(v, kind, "maps")
    out = decode(packer.raw(), ref)
    assert out.shape == (17, 23) and out.dtype == np.float64
    step = float(ref["s"])
    assert step == pytest.approx(np.abs(v).max() / (65535 if kind == "u2" else 32767))
    assert np.abs(out - v).max() <= step / 2 * (1 + 1e-9)
    assert np.abs(out - v).max() <= np.abs(v).max() / 65534 * (1 + 1e-9)  # the documented bound


def test_zero_stays_exactly_zero() -> None:
    v = np.array([[0.0, -1e-3], [5.0, 0.0]])
    packer = Packer()
    ref = packer.add_plane(v, "i2", "maps")
    dec = decode(packer.raw(), ref)
    assert dec[0, 0] == 0.0 and dec[1, 1] == 0.0 and dec[1, 0] == 5.0


def test_packer_aligns_16_bit_arrays_and_keeps_shapes() -> None:
    packer = Packer()
    a = packer.add(np.arange(3, dtype=np.uint8), "inputs")
    b = packer.add(np.array([[1, 2], [3, 4]], dtype="<u2"), "maps", scale=0.5)
    c = packer.add(np.array([-1, 7], dtype="<i2"), "maps", scale=2.0)
    assert (a["o"], b["o"], c["o"]) == (0, 4, 12)  # one pad byte after the 3 uint8
    raw = packer.raw()
    assert decode(raw, a).tolist() == [0, 1, 2]
    assert decode(raw, b).tolist() == [[0.5, 1.0], [1.5, 2.0]]
    assert decode(raw, c).tolist() == [-2.0, 14.0]
    assert packer.sizes.parts == {"inputs": 3, "maps": 12}
    assert zlib.decompress(base64.b64decode(packer.payload_base64())) == raw
    assert packer.sizes.payload > 0


def test_packer_refuses_float_arrays() -> None:
    with pytest.raises(InputError, match="cannot pack dtype float64"):
        Packer().add(np.zeros(3), "maps")


@pytest.mark.parametrize("sign", R.SIGNS)
@pytest.mark.parametrize("shape", [(3, 9, 11), (1, 9, 11), (9, 11)])
def test_two_planes_render_exactly_like_the_full_map(sign: str, shape: tuple[int, ...]) -> None:
    raw = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    a, s = map_planes(raw)
    full = R.render_map(raw, sign=sign, clip_percentile=97.0, cmap="viridis")
    plane = R.render_map(a if sign == "absolute" else s, sign=sign, clip_percentile=97.0, cmap="viridis")
    assert full.rgb is not None and plane.rgb is not None
    np.testing.assert_array_equal(plane.rgb, full.rgb)
    assert plane.vmax == full.vmax


def test_map_planes_hand_values() -> None:
    g = np.array([[[1.0, -2.0]], [[-3.0, 0.5]]])  # (C=2, H=1, W=2)
    a, s = map_planes(g)
    assert a.tolist() == [[3.0, 2.0]] and s.tolist() == [[-2.0, -1.5]]


def test_size_summary_says_within_or_over_budget() -> None:
    size = BundleSize(parts={"maps": 2_000_000, "projections": 1_000_000}, payload=1_500_000, page=2_100_000)
    assert size.raw == 3_000_000
    assert size.summary(5_000_000).startswith("2.10 MB page (within the 5.00 MB budget); payload 1.50 MB compressed from 3.00 MB")
    assert "OVER the 2.00 MB budget" in size.summary(2_000_000)


@pytest.mark.parametrize("kind", ["u2", "i2"])
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (2, 4, 6)])
def test_filtered_arrays_round_trip_exactly(kind: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(5)
    lo, hi = (0, 65536) if kind == "u2" else (-32768, 32768)
    q = rng.integers(lo, hi, shape).astype("<u2" if kind == "u2" else "<i2")
    q.flat[0] = hi - 1  # the extremes: differences wrap modulo 2^16
    q.flat[-1] = lo
    packer = Packer()
    ref = packer.add(q, "maps", scale=1.0)
    assert ref["f"] == "sub" and ref["n"] == q.size and len(packer.raw()) == 2 * q.size
    np.testing.assert_array_equal(decode(packer.raw(), ref), q.astype(np.float64))


def test_filter_hand_values() -> None:
    # one row (3, 5, 4): differences (3, 2, -1 = 0xffff); low bytes (3, 2, 0xff), then high bytes (0, 0, 0xff)
    packer = Packer()
    packer.add(np.array([3, 5, 4], dtype="<i2"), "maps")
    assert packer.raw() == bytes([3, 2, 0xFF, 0, 0, 0xFF])


def test_filter_shrinks_a_smooth_map() -> None:
    y, x = np.mgrid[0:128, 0:128]
    smooth = np.exp(-((y - 60.0) ** 2 + (x - 70.0) ** 2) / 800.0)
    q, _ = quantise(smooth, "u2")
    plain = len(zlib.compress(q.astype("<u2").tobytes(), 9))
    packer = Packer()
    packer.add(q, "maps")
    assert len(zlib.compress(packer.raw(), 9)) < 0.6 * plain


@pytest.mark.parametrize(("shape", "channels"), [((9, 11), 1), ((1, 9, 11), 1), ((3, 9, 11), 3)])
def test_a_single_channel_map_stores_one_plane(shape: tuple[int, ...], channels: int) -> None:
    g = np.random.default_rng(6).standard_normal(shape[-2:])
    m = np.broadcast_to(g, shape).copy()
    assert single_channel(m) == channels
    aq, ascale, sq, sscale = quantised_planes(m)
    assert aq is None and ascale == sscale / channels
    packer = Packer()
    refs = packer.add_map(m, "maps")
    assert packer.sizes.parts == {"maps": 2 * 9 * 11}  # one plane
    assert refs["abs"]["o"] == refs["sum"]["o"] and refs["abs"]["m"] == "abs"
    a, s = map_planes(m)
    step = np.abs(a).max() / 65534
    np.testing.assert_allclose(decode(packer.raw(), refs["abs"]), a, rtol=0, atol=step * (1 + 1e-9))
    np.testing.assert_allclose(decode(packer.raw(), refs["sum"]), s, rtol=0, atol=channels * step * (1 + 1e-9))
    # the widget's planes are the page's, to the bit
    raw = RawMap.from_map(m)
    assert raw.single and len(raw.to_bytes()) == 2 * 9 * 11 and raw.meta()["single"] is True
    np.testing.assert_array_equal(raw.plane("absolute"), decode(packer.raw(), refs["abs"]))
    np.testing.assert_array_equal(raw.plane("signed"), decode(packer.raw(), refs["sum"]))


def test_a_map_with_different_channels_keeps_both_planes() -> None:
    m = np.random.default_rng(7).standard_normal((3, 4, 5))
    m[2] = m[0]  # two equal channels of three are not enough
    assert single_channel(m) == 0
    packer = Packer()
    refs = packer.add_map(m, "maps")
    assert "m" not in refs["abs"] and refs["abs"]["o"] != refs["sum"]["o"] and packer.sizes.parts == {"maps": 2 * 2 * 4 * 5}
    assert not RawMap.from_map(m).single
