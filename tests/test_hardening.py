"""Issue 9 "Hardening": a catalogue of bad and odd inputs, and the security checks.

Every bad input gets ONE error of our family (``SaliencyError``) whose message names the bad
value and says what to do; afterwards the model is exactly as it was and the widget still
renders a new image on the next good action. "Odd but valid" images (16-bit, grayscale,
RGBA, CMYK, palette, 1x1, animated GIF, ...) must work, converted to RGB.

The "event storm" requirement (50 rapid filter changes -> at most 2 stale renders, final
view = final state) is covered exactly by ``tests/test_widget.py::
test_rapid_filter_changes_are_coalesced`` and is not duplicated here.
"""

from __future__ import annotations

import ast
import copy
import datetime
import io
import socket
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import saliency_widget as sw
from saliency_widget import InputError, LayerError, MethodError, ModelError, SaliencyError
from saliency_widget.widget import Explorer, explore
from saliency_widget.viz import render as R
from conftest import assert_unchanged, snapshot

XSS = "<img src=x onerror=alert(1)>"
LABELS = ["disc", "square", XSS]
SIDE = 24


# ----------------------------------------------------------------------------- models
class Tiny(nn.Module):
    """Conv-ReLU-pool CNN with 3 classes, small enough for fast widget tests."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU()
        )
        self.fc = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))


class TrainModeBNDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(F.relu(self.bn(self.conv(x)))).mean((2, 3)))


class NoReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)
        self.fc = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.tanh(self.conv(x)).mean((2, 3)))


class MLP(nn.Module):
    """No convolution at all: an MLP on flattened images."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3 * 8 * 8, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class ReturnsTuple(Tiny):
    # [models] (logits, ...) is read since issue 15; logits that are not first are still refused
    def forward(self, x: torch.Tensor) -> Any:  # type: ignore[override]
        return {"aux": 1}, super().forward(x)


class Returns4D(Tiny):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class Returns1D(Tiny):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).sum(1)


def tiny() -> Tiny:
    torch.manual_seed(0)
    return Tiny().eval()


M = tiny()
X = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


# ----------------------------------------------------------------------------- images
def rgb_image(seed: int = 0, side: int = SIDE) -> Image.Image:
    rng = np.random.RandomState(seed)
    a = (rng.rand(side, side, 3) * 255).astype(np.uint8)
    a[side // 4 : side // 2, side // 4 : 3 * side // 4] = (240, 30, 30)
    return Image.fromarray(a)


def encode(img: Image.Image, fmt: str = "PNG", **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def to_tensor(img: Image.Image) -> torch.Tensor:
    a = np.asarray(img.convert("RGB").resize((SIDE, SIDE)), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1) - 0.5


def png16() -> bytes:
    a = (np.random.RandomState(0).rand(SIDE, SIDE) * 65535).astype(np.uint16)
    img = Image.fromarray(a)
    assert img.mode.startswith("I;16") or img.mode == "I"
    return encode(img)


def gif_animation() -> bytes:
    a, b = rgb_image(1), rgb_image(2)
    return encode(a, "GIF", save_all=True, append_images=[b], duration=100, loop=0)


def big_png(side: int) -> bytes:
    # A 1-bit image compresses to almost nothing: a cheap stand-in for a decompression bomb.
    return encode(Image.new("1", (side, side)), optimize=True)


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
GOOD_PNG = encode(rgb_image(0))


@pytest.fixture
def small_bomb_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """Lower PIL's decompression-bomb limit so a bomb test decodes nothing big."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64)
    return 64 * 64


# ============================================================================= engine catalogue
def _meta_model() -> nn.Module:
    return copy.deepcopy(M).to("meta")


ENGINE_BAD: list[tuple[str, Callable[[nn.Module], Any], type[SaliencyError], str]] = [
    # inputs: values
    ("inf-input", lambda m: sw.saliency(m, X * float("inf")), InputError, r"NaN or Inf.*normalisation"),
    ("single-nan-pixel", lambda m: sw.saliency(m, X.clone().index_put_((torch.tensor([0]),), torch.tensor(float("nan")))), InputError, r"NaN or Inf"),
    ("explainer-neg-inf", lambda m: sw.Explainer(m, X - float("inf")), InputError, r"NaN or Inf"),
    ("layers-nan", lambda m: sw.layers(m, X * float("nan")), InputError, r"NaN or Inf"),
    # inputs: shape / dtype / type
    ("rank-2", lambda m: sw.saliency(m, X[0, 0]), InputError, r"4 dimensions.*\(8, 8\)"),
    ("explainer-rank-3", lambda m: sw.Explainer(m, X[0]), InputError, r"4 dimensions.*unsqueeze\(0\)"),
    ("project-rank-5", lambda m: sw.project(m, X[None], "features.1", 0), InputError, r"4 dimensions.*got 5"),
    ("one-channel-explainer", lambda m: sw.Explainer(m, X[:, :1]), InputError, r"1 channel.*expects 3.*convert"),
    ("four-channels-project", lambda m: sw.project(m, torch.cat([X, X[:, :1]], 1), "features.1", 0), InputError, r"4 channel.*expects 3"),
    ("int64-input", lambda m: sw.saliency(m, X.long()), InputError, r"floating-point.*torch.int64.*\.float\(\)"),
    ("bool-input", lambda m: sw.saliency(m, X > 0), InputError, r"torch.bool"),
    ("complex-input", lambda m: sw.saliency(m, X.to(torch.complex64)), InputError, r"complex64"),
    ("list-input", lambda m: sw.saliency(m, X.tolist()), InputError, r"torch.Tensor.*got list.*as_tensor"),
    ("meta-input", lambda m: sw.saliency(m, X.to("meta")), InputError, r"'meta' device"),
    # models
    ("meta-model", lambda m: sw.saliency(_meta_model(), X), ModelError, r"'meta' device.*to_empty"),
    ("meta-model-explainer", lambda m: sw.Explainer(_meta_model(), X), ModelError, r"'meta' device"),
    ("device-mismatch", lambda m: sw.Explainer(m, X, device="meta"), InputError, r"device meta.*parameters are on cpu"),
    ("half-model-explainer", lambda m: sw.Explainer(copy.deepcopy(m).half(), X), ModelError, r"float16 on the CPU.*model.float\(\)"),
    ("bfloat16-model", lambda m: sw.saliency(copy.deepcopy(m).bfloat16(), X), ModelError, r"bfloat16 on the CPU"),
    ("torchscript-traced", lambda m: sw.saliency(torch.jit.trace(m, X), X), ModelError, r"TorchScript.*original Python nn.Module"),
    ("torchscript-project", lambda m: sw.project(torch.jit.script(m), X, "features.1", 0), ModelError, r"TorchScript"),
    ("returns-tuple", lambda m: sw.saliency(ReturnsTuple().eval(), X), ModelError, r"logits of shape \(N, K\).*tuple"),
    ("returns-4d", lambda m: sw.saliency(Returns4D().eval(), X), ModelError, r"shape \(2, 6, 4, 4\).*class scores"),
    ("returns-1d", lambda m: sw.Explainer(Returns1D().eval(), X), ModelError, r"shape \(2,\)"),
    ("no-relu-guided", lambda m: sw.saliency(NoReLU().eval(), X, method="guided_backprop"), ModelError, r"ran no ReLU.*Tanh.*method='gradient'"),
    ("not-a-module", lambda m: sw.Explainer(m.state_dict(), X), ModelError, r"nn.Module, got OrderedDict"),
    # targets / layers / channels / positions / methods
    ("target-too-big-explainer", lambda m: sw.Explainer(m, X).saliency(target=3), InputError, r"target 3 .*3 classes.*0\.\.2"),
    ("target-string", lambda m: sw.saliency(m, X, target="cat"), InputError, r"target must be None, an int.*got str"),
    ("target-float-tensor", lambda m: sw.saliency(m, X, target=torch.tensor([0.5, 1.0])), InputError, r"integer class indices.*float32"),
    ("target-2d", lambda m: sw.saliency(m, X, target=torch.zeros(2, 1, dtype=torch.long)), InputError, r"1-D.*\(2, 1\)"),
    ("layer-int", lambda m: sw.project(m, X, 1, 0), LayerError, r"unknown layer 1.*'features.0'"),
    ("layer-typo-explainer", lambda m: sw.Explainer(m, X).project("features.l", 0), LayerError, r"'features.l'.*'features.1'"),
    ("channel-negative", lambda m: sw.project(m, X, "features.4", -1), InputError, r"channel -1 .*0\.\.5"),
    ("channel-too-big-explainer", lambda m: sw.Explainer(m, X).project("features.4", 6), InputError, r"channel 6 .*0\.\.5"),
    ("position-y-too-big", lambda m: sw.Explainer(m, X).project("features.4", 0, position=(4, 0)), InputError, r"y=4.*4x4.*0\.\.3"),
    ("call-too-big", lambda m: sw.project(m, X, "features.4", 0, call=2), LayerError, r"ran 1 time.*\[0\]"),
    ("method-wrong-case", lambda m: sw.saliency(m, X, method="Gradient"), MethodError, r"'Gradient'.*'gradient'"),
    ("method-explainer", lambda m: sw.Explainer(m, X).saliency(method="lrp"), MethodError, r"'lrp'.*'deconvnet'"),
    ("method-none", lambda m: sw.saliency(m, X, method=None), MethodError, r"None"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), [c[1:] for c in ENGINE_BAD], ids=[c[0] for c in ENGINE_BAD])
def test_engine_bad_input(call: Callable[[nn.Module], Any], exc: type[SaliencyError], pattern: str) -> None:
    model = tiny()
    before = snapshot(model)
    with pytest.raises(SaliencyError, match=pattern) as info:
        call(model)
    assert type(info.value) is exc, f"expected {exc.__name__}, got {type(info.value).__name__}: {info.value}"
    assert "\n" not in str(info.value)  # one clear line, no dumped traceback or repr soup
    assert_unchanged(model, before)
    # the model is still explainable, with the same result as an untouched copy
    torch.testing.assert_close(sw.saliency(model, X), sw.saliency(tiny(), X))


# ----------------------------------------------------------------------------- engine: odd but valid
def _train_mode_model() -> nn.Module:
    torch.manual_seed(0)
    return TrainModeBNDropout().train()


ENGINE_OK: list[tuple[str, Callable[[], nn.Module], torch.Tensor, str]] = [
    ("train-mode-bn-dropout-gradient", _train_mode_model, X, "gradient"),
    ("train-mode-bn-dropout-guided", _train_mode_model, X, "guided_backprop"),
    ("mlp-gradient", lambda: MLP().eval(), X, "gradient"),
    ("mlp-guided-backprop", lambda: MLP().eval(), X, "guided_backprop"),
    ("no-relu-gradient", lambda: NoReLU().eval(), X, "gradient"),
    ("float64-input", tiny, X.double(), "gradient"),
    ("channels-last-input", tiny, X.to(memory_format=torch.channels_last), "deconvnet"),
    ("non-contiguous-input", tiny, X.transpose(2, 3), "gradient"),
    ("requires-grad-input", tiny, X.clone().requires_grad_(True), "guided_backprop"),
    ("non-leaf-input", tiny, X.clone().requires_grad_(True) * 1.0, "gradient"),
]


@pytest.mark.parametrize(("make", "x", "method"), [c[1:] for c in ENGINE_OK], ids=[c[0] for c in ENGINE_OK])
def test_engine_odd_but_valid(make: Callable[[], nn.Module], x: torch.Tensor, method: str) -> None:
    model = make()
    before = snapshot(model)
    x_before = x.detach().clone()
    grad_before = x.grad if x.is_leaf else None
    out = sw.saliency(model, x, method=method)
    assert out.shape == x.shape and out.dtype == x.dtype and bool(torch.isfinite(out).all())
    assert_unchanged(model, before)  # training flags restored, weights untouched
    torch.testing.assert_close(x.detach(), x_before, rtol=0, atol=0)  # user's tensor not modified
    if x.is_leaf:
        assert x.grad is grad_before  # no .grad left on the user's tensor
    # the same map as on a plain detached eval-mode copy
    ref_model = copy.deepcopy(model).eval()
    torch.testing.assert_close(out, sw.saliency(ref_model, x_before.contiguous(), method=method))


# ============================================================================= widget catalogue
@pytest.fixture
def w() -> Explorer:
    widget = explore(tiny(), rgb_image(0), labels=LABELS, transform=to_tensor)
    yield widget
    widget.close()


def settle(widget: Explorer) -> None:
    assert widget.wait(timeout=60), "render did not finish"


def upload(widget: Explorer, content: bytes, name: str = "mine.png", size: int | None = None) -> None:
    widget.w_upload.value = (
        {
            "name": name, "type": "image/png", "size": len(content) if size is None else size,
            "content": memoryview(content), "last_modified": datetime.datetime.now(datetime.timezone.utc),
        },
    )


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
    ("method-unknown", lambda w, t: setattr(w, "method", "lrp"), MethodError, r"'lrp'.*'gradient'"),
    ("layer-unknown", lambda w, t: setattr(w, "layer", "features.9"), LayerError, r"'features.9'.*'features.1'"),
    ("sign-unknown", lambda w, t: setattr(w, "sign", "both"), InputError, r"'both'.*'absolute'"),
    ("cmap-unknown", lambda w, t: setattr(w, "cmap", "jet"), InputError, r"'jet'.*'magma'"),
    ("view-unknown", lambda w, t: setattr(w, "view", "grid"), InputError, r"'grid'.*'compare'"),
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
    ("channel-out-of-range", lambda w: setattr(w, "channel", 99), r"filter 99 out of range"),
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


# (id, make bytes or image): odd but valid images, converted to RGB; each must give a map.
ODD_IMAGES: list[tuple[str, Callable[[], Any]]] = [
    ("png-16-bit", png16),
    ("png-grayscale", lambda: encode(rgb_image(3).convert("L"))),
    ("png-grayscale-alpha", lambda: encode(rgb_image(3).convert("LA"))),
    ("png-rgba", lambda: encode(rgb_image(3).convert("RGBA"))),
    ("png-palette", lambda: encode(rgb_image(3).convert("P"))),
    ("png-1-bit", lambda: encode(rgb_image(3).convert("1"))),
    ("png-1x1", lambda: encode(Image.new("RGB", (1, 1), (200, 30, 30)))),
    ("jpeg-cmyk", lambda: encode(rgb_image(3).convert("CMYK"), "JPEG")),
    ("jpeg-grayscale", lambda: encode(rgb_image(3).convert("L"), "JPEG")),
    ("gif-animation", gif_animation),
    ("bmp", lambda: encode(rgb_image(3), "BMP")),
    ("tiff-float", lambda: encode(rgb_image(3).convert("F"), "TIFF")),
    ("pil-cmyk-object", lambda: rgb_image(3).convert("CMYK")),
    ("array-grayscale-float", lambda: np.random.RandomState(0).rand(SIDE, SIDE).astype(np.float32)),
    ("array-rgba-uint8", lambda: np.asarray(rgb_image(3).convert("RGBA"))),
    ("array-hw1", lambda: np.asarray(rgb_image(3).convert("L"))[..., None]),
    ("tensor-requires-grad", lambda: to_tensor(rgb_image(3)).requires_grad_(True)),
]


@pytest.mark.parametrize("make", [c[1] for c in ODD_IMAGES], ids=[c[0] for c in ODD_IMAGES])
def test_odd_but_valid_images_work(w: Explorer, make: Callable[[], Any]) -> None:
    image = make()
    kept = image.detach().clone() if isinstance(image, torch.Tensor) else None
    n = w.computations
    w.set_image(image)
    settle(w)
    assert w.computations > n and w.render_log[-1].error is None, w.status
    assert not w.status.startswith("error")
    for panel in ("input", "map", "feature"):
        assert w.images[panel][:8] == b"\x89PNG\r\n\x1a\n", panel
    assert w.messages.get("map") is None and not R.is_blank(R.from_png(w.images["map"]))
    if kept is not None:  # the user's tensor is neither modified nor given a .grad
        torch.testing.assert_close(image.detach(), kept, rtol=0, atol=0)
        assert image.grad is None and image.requires_grad


@pytest.mark.parametrize("make", [c[1] for c in ODD_IMAGES[:10]], ids=[c[0] for c in ODD_IMAGES[:10]])
def test_odd_but_valid_uploads_work(w: Explorer, make: Callable[[], bytes]) -> None:
    n = w.computations
    upload(w, make(), name="odd.png")
    settle(w)
    assert w.computations > n and w.render_log[-1].error is None, w.status
    assert w.messages.get("map") is None and not R.is_blank(R.from_png(w.images["map"]))
    assert w._source == "upload odd.png"


# ----------------------------------------------------------------------------- explore()
def _ts_model() -> nn.Module:
    return torch.jit.script(tiny())


EXPLORE_BAD: list[tuple[str, Callable[[], Any], type[SaliencyError], str]] = [
    ("labels-too-short", lambda: explore(tiny(), rgb_image(), labels=["a", "b"], transform=to_tensor), InputError, r"2 labels but the model has 3 classes"),
    ("labels-too-long", lambda: explore(tiny(), rgb_image(), labels=list("abcd"), transform=to_tensor), InputError, r"4 labels but the model has 3"),
    ("labels-a-string", lambda: explore(tiny(), rgb_image(), labels="abc", transform=to_tensor), InputError, r"list of class names.*got str 'abc'"),
    ("labels-a-number", lambda: explore(tiny(), rgb_image(), labels=3, transform=to_tensor), InputError, r"list of class names.*got int"),
    ("model-torchscript", lambda: explore(_ts_model(), rgb_image(), transform=to_tensor), ModelError, r"TorchScript"),
    ("model-half", lambda: explore(tiny().half(), rgb_image(), transform=to_tensor), ModelError, r"float16 on the CPU"),
    ("model-meta", lambda: explore(tiny().to("meta"), rgb_image(), transform=to_tensor), ModelError, r"'meta' device"),
    ("model-returns-tuple", lambda: explore(ReturnsTuple().eval(), rgb_image(), transform=to_tensor), ModelError, r"logits of shape \(N, K\).*tuple"),
    ("model-not-a-module", lambda: explore("resnet18", rgb_image(), transform=to_tensor), ModelError, r"nn.Module, got str"),
    ("model-mlp-no-spatial-layer", lambda: explore(MLP().eval(), rgb_image(side=8), transform=lambda im: to_tensor(im)[:, :8, :8]), ModelError, r"no layer with a \(C, H, W\) output"),
    ("image-wrong-channels-for-model", lambda: explore(tiny(), rgb_image(), transform=lambda im: to_tensor(im)[:1]), InputError, r"1 channel.*expects 3"),
    ("image-bytes-garbage", lambda: explore(tiny(), b"\x89PNG garbage", transform=to_tensor), InputError, r"cannot decode"),
    ("transform-returns-array", lambda: explore(tiny(), rgb_image(), transform=lambda im: np.zeros((3, 8, 8))), InputError, r"transform must return a tensor, got ndarray"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), [c[1:] for c in EXPLORE_BAD], ids=[c[0] for c in EXPLORE_BAD])
def test_explore_bad_arguments(call: Callable[[], Any], exc: type, pattern: str) -> None:
    with pytest.raises(SaliencyError, match=pattern) as info:
        call()
    assert type(info.value) is exc
    assert "\n" not in str(info.value)
    # and a good call right after works
    w2 = explore(tiny(), rgb_image(), labels=LABELS, transform=to_tensor)
    try:
        assert "map" in w2.images
    finally:
        w2.close()


def test_explore_train_mode_model_is_restored() -> None:
    torch.manual_seed(0)
    model = TrainModeBNDropout().train()
    before = snapshot(model)
    widget = explore(model, rgb_image(), transform=to_tensor)
    try:
        widget.method = "guided_backprop"
        settle(widget)
        assert widget.render_log[-1].error is None
    finally:
        widget.close()
    assert_unchanged(model, before)


# ============================================================================= security
def _html_values(widget: W.Widget) -> list[str]:
    """Every HTML string shown by the widget tree (W.HTML values, accordion titles)."""
    out: list[str] = []
    stack: list[Any] = [widget]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen or not isinstance(node, W.Widget):
            continue
        seen.add(id(node))
        if isinstance(node, (W.HTML, W.HTMLMath)):
            out.append(node.value)
        if isinstance(node, W.Accordion):
            out.extend(str(t) for t in node.titles)
        stack.extend(getattr(node, "children", ()) or ())
    for name in dir(widget):
        if name.startswith("w_"):
            val = getattr(widget, name, None)
            if isinstance(val, (W.HTML, W.HTMLMath)):
                out.append(val.value)
    return out


def test_labels_and_file_names_are_escaped_everywhere(w: Explorer) -> None:
    w.target = 2  # the XSS label
    settle(w)
    assert w.labels[2] == XSS
    html_values = _html_values(w)
    assert any("&lt;img src=x onerror=alert(1)&gt;" in v for v in html_values)
    assert not [v for v in html_values if "<img src=x" in v]
    # A file name is shown only in error messages (here the size cap); it is escaped too.
    upload(w, b"\0" * 10, name=XSS + ".png", size=30 * 2**20)
    settle(w)
    assert XSS in w.status  # plain text, as the user typed it
    html_values = _html_values(w)
    assert not [v for v in html_values if "<img src=x" in v]
    assert "&lt;img src=x onerror=alert(1)&gt;" in w.w_status.value
    # the exported HTML report escapes them as well
    w.target = 2
    settle(w)
    page = w.to_html()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_bundled_checkpoints_load_with_weights_only() -> None:
    # Static: every torch.load in the package passes weights_only=True.
    root = Path(sw.__file__).parent
    calls = []
    for py in root.rglob("*.py"):
        for node in ast.walk(ast.parse(py.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load":
                base = node.func.value
                if isinstance(base, ast.Name) and base.id == "torch":
                    kw = {k.arg: k.value for k in node.keywords}
                    calls.append((py.name, node.lineno, kw.get("weights_only")))
    assert calls, "expected at least one torch.load (the bundled checkpoint)"
    bad = [(f, ln) for f, ln, v in calls if not (isinstance(v, ast.Constant) and v.value is True)]
    assert not bad, f"torch.load without weights_only=True at {bad}"


def test_bundled_checkpoint_load_runtime_uses_weights_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from saliency_widget.models import shapes_cnn

    seen: list[Any] = []
    real = torch.load

    def spy(*a: Any, **k: Any) -> Any:
        seen.append(k.get("weights_only"))
        return real(*a, **k)

    monkeypatch.setattr(torch, "load", spy)
    shapes_cnn(pretrained=True)
    assert seen == [True]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any, *a: Any) -> Any:
        attempts.append(address)
        raise OSError(f"network access attempted at run time: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))  # type: ignore[arg-type]
    return attempts


def test_no_network_access_at_run_time(no_network: list[Any]) -> None:
    widget = explore()  # bundled model, weights and sample images
    try:
        assert widget.render_log[-1].error is None
        widget.method = "guided_backprop"
        settle(widget)
        name = list(widget._samples)[-1]
        widget.w_sample.value = name
        settle(widget)
        assert widget.render_log[-1].error is None and not widget.status.startswith("error")
        x = widget.explainer.inputs
        m = sw.saliency(widget._model, x, method="deconvnet")
        assert bool(torch.isfinite(m).all())
    finally:
        widget.close()
    assert no_network == []
