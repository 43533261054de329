"""Every bad input to the explorer gets ONE error of our family, raised or shown on the status line, and the
explorer renders a new image on the next good action; a rejected value never becomes the state.

The "event storm" requirement (50 rapid filter changes -> at most 2 stale renders, final
view = final state) is covered exactly by ``tests/widget/test_explorer.py::
test_rapid_filter_changes_are_coalesced`` and is not duplicated here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from saliency_widget import (
    InputError,
    LayerError,
    MethodError,
    ModelError,
    SaliencyError,
)
from saliency_widget.viz import render as R
from saliency_widget.widget import Explorer, explore
from tests.helpers import (
    SIDE,
    assert_unchanged,
    encode,
    rgb_image,
    settle,
    small_explorer,
    snapshot,
    to_tensor,
    upload,
)
from tests.nets import MLP, ReturnsTuple, TrainModeBNDropout, seeded, small_cnn

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
GOOD_PNG = encode(rgb_image(0))


def big_png(side: int) -> bytes:
    # A 1-bit image compresses to almost nothing: a cheap stand-in for a decompression bomb.
    return encode(Image.new("1", (side, side)), optimize=True)


@pytest.fixture
def small_bomb_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """Lower PIL's decompression-bomb limit so a bomb test decodes nothing big."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64)
    return 64 * 64


@pytest.fixture
def w() -> Iterator[Explorer]:
    widget = small_explorer()
    yield widget
    widget.close()


def assert_recovers(widget: Explorer) -> None:
    """A good action after the bad one renders a new, error-free image."""
    settle(widget)
    n, before = widget.computations, widget.images.get("input")
    with widget.hold_trait_notifications():
        widget.target, widget.position = None, None
        widget.channel = 0
    widget.set_image(rgb_image(seed=widget.computations + 11))
    settle(widget)
    assert widget.computations > n
    assert widget.render_log[-1].error is None, widget.render_log[-1].error
    assert not widget.status.startswith(("error", "unexpected")), widget.status
    assert widget.images["input"] != before
    assert not R.is_blank(R.from_png(widget.images["map"]))


def _empty_file(tmp: Path) -> Path:
    p = tmp / "empty.png"
    p.write_bytes(b"")
    return p


def _text_file(tmp: Path) -> Path:
    p = tmp / "notes.png"
    p.write_text("not an image")
    return p


# (id, action(widget, tmp_path), error class, message pattern): the action raises at once.
WIDGET_RAISES: list[tuple[str, Callable[[Explorer, Path], Any], type[SaliencyError], str]] = [
    ("set-image-empty-bytes", lambda w, t: w.set_image(b""), InputError, r"empty \(0 bytes\)"),
    ("set-image-truncated-png", lambda w, t: w.set_image(GOOD_PNG[: len(GOOD_PNG) // 2]), InputError, r"truncated.*PNG or JPEG"),
    ("set-image-non-image-bytes", lambda w, t: w.set_image(b"hello, world"), InputError, r"b'hello, world'.*not in an image format"),
    ("set-image-svg", lambda w, t: w.set_image(SVG), InputError, r"SVG.*export it to PNG"),
    ("set-image-zero-size-array", lambda w, t: w.set_image(np.zeros((0, 5, 3), np.uint8)), InputError, r"zero size.*\(0, 5, 3\)"),
    ("set-image-zero-size-pil", lambda w, t: w.set_image(Image.new("RGB", (0, 0))), InputError, r"zero size \(0x0\)"),
    ("set-image-directory", lambda w, t: w.set_image(t), InputError, r"is a directory"),
    ("set-image-missing-path", lambda w, t: w.set_image(t / "nope.png"), InputError, r"not found: '.*nope.png'"),
    ("set-image-empty-file", lambda w, t: w.set_image(_empty_file(t)), InputError, r"empty.png' is empty"),
    ("set-image-text-file", lambda w, t: w.set_image(_text_file(t)), InputError, r"notes.png'.*not in an image format"),
    ("set-image-int-tensor", lambda w, t: w.set_image(torch.zeros(3, SIDE, SIDE, dtype=torch.int64)), InputError, r"float \(C, H, W\).*torch.int64"),
    ("set-image-rank-2-tensor", lambda w, t: w.set_image(torch.zeros(SIDE, SIDE)), InputError, r"\(C, H, W\).*\(24, 24\)"),
    ("set-image-rank-5-tensor", lambda w, t: w.set_image(torch.zeros(1, 1, 3, SIDE, SIDE)), InputError, r"\(1, 1, 3, 24, 24\)"),
    ("set-image-array-5-channels", lambda w, t: w.set_image(np.zeros((SIDE, SIDE, 5), np.uint8)), InputError, r"\(H, W, 3\).*\(24, 24, 5\)"),
    ("set-image-nan-array", lambda w, t: w.set_image(np.full((SIDE, SIDE, 3), np.nan, np.float32)), InputError, r"NaN/Inf"),
    ("set-image-wrong-type", lambda w, t: w.set_image(42), InputError, r"got int"),
    ("method-unknown", lambda w, t: setattr(w, "method", "shap"), MethodError, r"'shap'.*'gradient'"),
    ("layer-unknown", lambda w, t: setattr(w, "layer", "features.9"), LayerError, r"'features.9'.*'features.1'"),
    ("sign-unknown", lambda w, t: setattr(w, "sign", "both"), InputError, r"'both'.*'absolute'"),
    ("cmap-unknown", lambda w, t: setattr(w, "cmap", "jet"), InputError, r"'jet'.*'magma'"),
    ("view-unknown", lambda w, t: setattr(w, "view", "grid"), InputError, r"'grid'.*'compare'"),
    # the filter slider is bounded, so an out-of-range filter can only come from Python: refused at once
    ("channel-out-of-range", lambda w, t: setattr(w, "channel", 99), InputError, r"filter 99 is out of range for layer 'features.4': valid filters are 0..5"),
]


@pytest.mark.parametrize(("action", "exc", "pattern"), [c[1:] for c in WIDGET_RAISES], ids=[c[0] for c in WIDGET_RAISES])
def test_widget_bad_action_raises_then_recovers(w: Explorer, tmp_path: Path, action: Any, exc: type, pattern: str) -> None:
    state = w.state()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(SaliencyError, match=pattern) as info:
            action(w, tmp_path)
    assert type(info.value) is exc
    assert w.state() == state  # a rejected value never becomes the state
    assert_recovers(w)


# (id, action, pattern): the action is a UI event; the error goes to the status line.
WIDGET_STATUS: list[tuple[str, Callable[[Explorer], Any], str]] = [
    ("upload-empty", lambda w: upload(w, b""), r"empty \(0 bytes\)"),
    ("upload-truncated-png", lambda w: upload(w, GOOD_PNG[:40]), r"cannot decode.*PNG or JPEG"),
    ("upload-non-image", lambda w: upload(w, b"GIF89a-not-really"), r"cannot decode"),
    ("upload-svg", lambda w: upload(w, SVG, name="vector.svg"), r"SVG"),
    ("upload-over-size-cap", lambda w: upload(w, b"\0" * (20 * 2**20 + 1), name="huge.png"), r"'huge.png' is 20\.0 MiB; the limit is 20 MiB"),
    ("upload-declared-size-over-cap", lambda w: upload(w, GOOD_PNG, name="liar.png", size=50 * 2**20), r"'liar.png' is 50\.0 MiB"),
    ("set-image-nan-tensor", lambda w: w.set_image(torch.full((3, SIDE, SIDE), float("nan"))), r"NaN or Inf"),
    ("set-image-one-channel-tensor", lambda w: w.set_image(torch.zeros(1, SIDE, SIDE)), r"1 channel.*expects 3"),
    ("target-out-of-range", lambda w: setattr(w, "target", 7), r"target 7 out of range for 3 classes"),
    ("target-negative", lambda w: setattr(w, "target", -1), r"target -1 out of range"),
    ("position-out-of-range", lambda w: w.click_activation(500, 0), r"position \(500, 0\) outside"),
    ("position-negative", lambda w: w.click_activation(0, -3), r"position \(0, -3\) outside"),
]


@pytest.mark.parametrize(("action", "pattern"), [c[1:] for c in WIDGET_STATUS], ids=[c[0] for c in WIDGET_STATUS])
def test_widget_bad_event_shows_one_error_then_recovers(w: Explorer, action: Any, pattern: str) -> None:
    import re

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        action(w)
        settle(w)
    assert w.status.startswith("error: "), w.status  # one of our errors, not "unexpected ..."
    assert "\n" not in w.status and re.search(pattern, w.status), w.status
    assert w.w_trace_box.layout.display == ""
    assert_recovers(w)


@pytest.mark.parametrize("kind", ["warning-zone", "error-zone"])
@pytest.mark.parametrize("via", ["set_image", "upload", "path"])
def test_decompression_bomb_is_our_input_error(w: Explorer, tmp_path: Path, small_bomb_limit: int, kind: str, via: str) -> None:
    # PIL only *warns* between MAX_IMAGE_PIXELS and twice that (and then decodes it all);
    # both zones must become our InputError, and no PIL warning may escape.
    side = 72 if kind == "warning-zone" else 100  # 5184 (< 2 * 4096) and 10000 pixels
    data = big_png(side)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if via == "set_image":
            with pytest.raises(InputError, match=r"too large.*MAX_IMAGE_PIXELS = 4096.*Downscale"):
                w.set_image(data)
        elif via == "path":
            p = tmp_path / "bomb.png"
            p.write_bytes(data)
            with pytest.raises(InputError, match=r"bomb.png'.*too large"):
                w.set_image(p)
        else:
            upload(w, data, name="bomb.png")
            settle(w)
            assert w.status.startswith("error: ") and "too large" in w.status
    assert_recovers(w)


# ----------------------------------------------------------------------------- explore()
def _ts_model() -> nn.Module:
    return torch.jit.script(small_cnn())


EXPLORE_BAD: list[tuple[str, Callable[[], Any], type[SaliencyError], str]] = [
    ("labels-too-short", lambda: explore(small_cnn(), rgb_image(), labels=["a", "b"], transform=to_tensor), InputError, r"2 labels but the model has 3 classes"),
    ("labels-too-long", lambda: explore(small_cnn(), rgb_image(), labels=list("abcd"), transform=to_tensor), InputError, r"4 labels but the model has 3"),
    ("labels-a-string", lambda: explore(small_cnn(), rgb_image(), labels="abc", transform=to_tensor), InputError, r"list of class names.*got str 'abc'"),
    ("labels-a-number", lambda: explore(small_cnn(), rgb_image(), labels=3, transform=to_tensor), InputError, r"list of class names.*got int"),
    ("model-torchscript", lambda: explore(_ts_model(), rgb_image(), transform=to_tensor), ModelError, r"TorchScript"),
    ("model-half", lambda: explore(small_cnn().half(), rgb_image(), transform=to_tensor), ModelError, r"float16 on the CPU"),
    ("model-meta", lambda: explore(small_cnn().to("meta"), rgb_image(), transform=to_tensor), ModelError, r"'meta' device"),
    ("model-returns-tuple", lambda: explore(ReturnsTuple().eval(), rgb_image(), transform=to_tensor), ModelError, r"logits of shape \(N, K\).*tuple"),
    ("model-not-a-module", lambda: explore("resnet18", rgb_image(), transform=to_tensor), ModelError, r"nn.Module, got str"),
    ("model-mlp-no-spatial-layer", lambda: explore(MLP().eval(), rgb_image(side=8), transform=lambda im: to_tensor(im)[:, :8, :8]), ModelError, r"no layer with a \(C, H, W\) output"),
    ("image-wrong-channels-for-model", lambda: explore(small_cnn(), rgb_image(), transform=lambda im: to_tensor(im)[:1]), InputError, r"1 channel.*expects 3"),
    ("image-bytes-garbage", lambda: explore(small_cnn(), b"\x89PNG garbage", transform=to_tensor), InputError, r"cannot decode"),
    ("transform-returns-array", lambda: explore(small_cnn(), rgb_image(), transform=lambda im: np.zeros((3, 8, 8))), InputError, r"transform must return a tensor, got ndarray"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), [c[1:] for c in EXPLORE_BAD], ids=[c[0] for c in EXPLORE_BAD])
def test_explore_bad_arguments(call: Callable[[], Any], exc: type, pattern: str) -> None:
    with pytest.raises(SaliencyError, match=pattern) as info:
        call()
    assert type(info.value) is exc
    assert "\n" not in str(info.value)
    # and a good call right after works
    w2 = small_explorer()
    try:
        assert "map" in w2.images
    finally:
        w2.close()


def test_explore_train_mode_model_is_restored() -> None:
    model = seeded(TrainModeBNDropout).train()
    before = snapshot(model)
    widget = explore(model, rgb_image(), transform=to_tensor)
    try:
        widget.method = "guided_backprop"
        settle(widget)
        assert widget.render_log[-1].error is None
    finally:
        widget.close()
    assert_unchanged(model, before)
