"""Python-level tests of the explorer widget: drive its controls, check state and images."""

from __future__ import annotations

import base64
import datetime
import io
import time

import numpy as np
import pytest
import torch
from PIL import Image

from saliency_widget.engine import get_method, method_label
from saliency_widget.errors import InputError
from saliency_widget.views.pipeline import COMPARE_ROW
from saliency_widget.viz import render as R
from saliency_widget.widget import Explorer, explore
from tests.helpers import settle
from tests.nets import sequential_cnn

LABELS = ["disc", "square", "<img src=x onerror=alert(1)>", "ring"]


def _to_tensor(img: Image.Image) -> torch.Tensor:
    a = np.asarray(img.convert("RGB").resize((48, 48)), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1) - 0.5


def _image(seed: int = 0) -> Image.Image:
    rng = np.random.RandomState(seed)
    a = (rng.rand(48, 48, 3) * 255).astype(np.uint8)
    a[10:30, 12:34] = (250, 40, 40)  # a structure so maps are not pure noise
    return Image.fromarray(a)


@pytest.fixture
def w() -> Explorer:
    widget = explore(sequential_cnn(), _image(), labels=LABELS, transform=_to_tensor)
    yield widget
    widget.close()


def test_initial_view_has_all_panels(w: Explorer) -> None:
    imgs = w.images
    for key in ("input", "map", "feature", "projection"):
        assert key in imgs and imgs[key][:8] == b"\x89PNG\r\n\x1a\n", key
        assert not R.is_blank(R.from_png(imgs[key])), key
    assert [v for _, v in w.w_method.options] == w.methods
    assert [label for label, _ in w.w_method.options] == [method_label(m) for m in w.methods]
    assert list(w.w_method.tooltips) == [get_method(m).description for m in w.methods]
    assert all(w.w_method.tooltips)
    assert "cpu" in w.status and "ms" in w.status
    # Layers are offered in forward order, keyed by engine key.
    keys = [k for _, k in w.w_layer.options]
    engine_keys = [i.key for i in w.explainer.layers if len(i.shape) == 3]
    assert keys == engine_keys


def test_method_switch_changes_map(w: Explorer) -> None:
    before = w.images["map"]
    other = [m for m in w.methods if m != w.method][0]
    w.w_method.value = other
    settle(w)
    assert w.method == other
    assert w.images["map"] != before
    assert w.status.startswith(method_label(other))


def test_bar_click_selects_target(w: Explorer) -> None:
    before = w.images["map"]
    predicted = int(w.explainer.probabilities[0].argmax())
    w.w_bars.selected = [2]  # what bqplot's click->select interaction sets
    settle(w)
    assert w.target == w._last.bars[2][0] != predicted
    assert w.images["map"] != before
    assert w.labels[w.target] in w.status


def test_layer_and_filter_change(w: Explorer) -> None:
    first = w.w_layer.options[0][1]
    w.w_layer.value = first
    settle(w)
    assert w.layer == first
    assert w.w_channel.max == 7  # conv0 has 8 filters
    fm0 = w.images["feature"]
    new = 5 if w.channel != 5 else 4
    w.w_channel.value = new
    settle(w)
    assert w.channel == new and w.images["feature"] != fm0
    assert w.w_canvas.grid == [48, 48]
    # Filter index is clamped when switching to a layer with fewer filters.
    w.w_channel.value = 7
    settle(w)
    assert w.w_canvas.png == w.images["feature"]


def test_activation_click_projects_and_draws_box(w: Explorer) -> None:
    w.layer = w.w_layer.options[3][1]  # second conv block (24x24)
    settle(w)
    proj0, inp0 = w.images["projection"], w.images["input"]
    w.w_canvas.click = {"y": 3, "x": 17, "seq": 1}  # what the JS view sends
    settle(w)
    assert w.position == (3, 17)
    assert w.w_canvas.marker == [3, 17]
    assert w.images["projection"] != proj0
    assert w.images["input"] != inp0  # receptive-field box moved
    name, call = w.layer, 0
    y0, x0, y1, x1 = w.explainer.receptive_field(name, 3, 17, call=call)
    rgb = R.from_png(w.images["input"])
    assert tuple(rgb[max(y0, 0), max(x0, 0) + 1]) == (0, 255, 0)


def test_strongest_button(w: Explorer) -> None:
    w.click_activation(0, 0)
    settle(w)
    w.w_strongest.click()
    settle(w)
    act = w.explainer.activation(w.layer)[0, w.channel]
    flat = int(act.argmax())
    assert w.position == (flat // act.shape[1], flat % act.shape[1])
    # The same command through the custom-message protocol, with an id'd reply.
    reply = w.w_canvas.handle_command({"type": "cmd", "id": "a1", "cmd": "strongest"})
    assert reply == {"type": "reply", "id": "a1", "ok": True, "result": list(w.position)}
    bad = w.w_canvas.handle_command({"type": "cmd", "id": "a2", "cmd": "nope"})
    assert bad["ok"] is False and bad["id"] == "a2" and "nope" in bad["error"]


def test_upload_png(w: Explorer) -> None:
    version = w.inputs.version
    ex_before = w.explainer
    buf = io.BytesIO()
    _image(seed=7).save(buf, format="PNG")
    data = buf.getvalue()
    w.w_upload.value = ({"name": "mine.png", "type": "image/png", "size": len(data), "content": memoryview(data), "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
    settle(w)
    assert w.inputs.version == version + 1
    assert w.explainer is not ex_before
    assert w.status.startswith(method_label(w.method))
    # Garbage bytes: one-line error in the status line, widget keeps working.
    w.w_upload.value = ({"name": "bad.png", "type": "image/png", "size": 3, "content": memoryview(b"abc"), "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
    settle(w)
    assert w.status.startswith("error:") and "decode" in w.status
    w.method = w.methods[-1]
    settle(w)
    assert w.status.startswith(method_label(w.methods[-1]))


def test_display_options(w: Explorer) -> None:
    seen = {w.images["map"]}
    for attr, value in [("w_cmap", "viridis"), ("w_clip", 95.0), ("w_sign", "signed"), ("w_overlay", True), ("w_alpha", 0.3)]:
        getattr(w, attr).value = value
        settle(w)
        assert w.images["map"] not in seen, attr
        seen.add(w.images["map"])
    # "signed" switches the sequential colormap to a diverging one, visibly in the menu (issue 29 item 6)
    assert w.sign == "signed" and w.cmap == "coolwarm" and w.w_cmap.description == "colormap (signed)"


def test_all_zero_map_says_so() -> None:
    net = sequential_cnn()
    with torch.no_grad():
        net[0].bias.fill_(-1e6)  # every first-layer ReLU is off -> zero gradient
    w = explore(net, _image(), labels=LABELS, transform=_to_tensor)
    try:
        assert "map" not in w.images
        assert "all zeros" in (w.messages["map"] or "")
        assert w.w_map.planes and w.w_map.meta["shape"] == list(w.explainer.inputs.shape[-2:])  # type: ignore[union-attr]  # the browser draws the frame with the message
        assert "all zeros" in w.w_map_msg.value
        png = R.from_png(w.to_png())
        assert not R.is_blank(png)
    finally:
        w.close()


def test_errors_in_status_line_and_recovery(w: Explorer) -> None:
    w.target = 99
    settle(w)
    assert w.status.startswith("error:") and "out of range" in w.status
    assert "\n" not in w.status
    assert w.w_trace_box.layout.display == ""
    assert "Traceback" in w.w_trace.value
    w.target = 1
    settle(w)
    assert not w.status.startswith("error") and w.w_trace_box.layout.display == "none"

    # An unexpected exception from the engine is shown too, never a dead widget.
    def boom(*_a: object, **_k: object) -> torch.Tensor:
        raise RuntimeError("kaboom")

    w.explainer.saliency = boom
    w.target = 0
    settle(w)
    assert w.status == "unexpected RuntimeError: kaboom"
    del w.explainer.saliency
    w.target = 1
    settle(w)
    assert w.status.startswith(method_label(w.method))


def test_labels_are_escaped(w: Explorer) -> None:
    w.target = 2
    settle(w)
    assert "<img" not in w.w_map_title.value
    assert "&lt;img src=x onerror=alert(1)&gt;" in w.w_map_title.value
    assert "<img" not in w.w_status.value


def test_wrong_label_count_raises() -> None:
    with pytest.raises(InputError, match="3 labels but the model has 4 classes"):
        explore(sequential_cnn(), _image(), labels=["a", "b", "c"], transform=_to_tensor)


def test_image_inputs(tmp_path) -> None:
    net = sequential_cnn()
    p = tmp_path / "x.png"
    _image().save(p)
    arr = np.asarray(_image())
    for img in (p, str(p), arr, arr.astype(np.float32) / 255.0, _to_tensor(_image())):
        w = explore(net, img, labels=LABELS, transform=_to_tensor)
        assert "input" in w.images
        w.close()
    with pytest.raises(InputError):
        explore(net, 42, labels=LABELS, transform=_to_tensor)


def test_forward_is_cached(w: Explorer, monkeypatch: pytest.MonkeyPatch) -> None:
    import saliency_widget.widget.inputs as explorer_module

    made = []
    real = explorer_module.Explainer

    def counting(*a: object, **k: object) -> object:
        made.append(1)
        return real(*a, **k)

    monkeypatch.setattr(explorer_module, "Explainer", counting)
    w.method = w.methods[1]
    settle(w)
    w.target = 3
    settle(w)
    w.channel = 3
    settle(w)
    w.view = "compare"
    settle(w)
    assert made == []
    assert "compare" in w.images
    w.set_image(_image(seed=3))
    settle(w)
    assert made == [1]


def test_compare_view_shows_every_method(w: Explorer) -> None:
    w.w_view.value = "compare"
    settle(w)
    rgb = R.from_png(w.images["compare"])
    # square panels of the square input, COMPARE_ROW per row, each with its 26-px colour scale
    n, side, gap = len(w.methods), 224 - 64, 6
    per_row, rows = min(n, COMPARE_ROW), -(-n // COMPARE_ROW)
    assert rgb.shape[1] == per_row * side + (per_row + 1) * gap
    assert rgb.shape[0] >= rows * (side + 26)
    assert w.w_compare.layout.display == ""
    w.w_view.value = "single"
    settle(w)
    assert w.w_compare.layout.display == "none"


def test_rapid_filter_changes_are_coalesced(w: Explorer) -> None:
    w.layer = w.w_layer.options[-1][1]
    settle(w)
    # Make every projection slow so the 50 changes certainly arrive mid-render.
    real = w.explainer.project

    def slow(*a: object, **k: object) -> torch.Tensor:
        time.sleep(0.05)
        return real(*a, **k)

    w.explainer.project = slow
    start = w.computations
    n = w.w_channel.max + 1
    values = [(i * 7) % n for i in range(50)]
    for v in values:
        w.w_channel.value = v
    settle(w)
    runs = [r for r in w.render_log if r.seq > start]
    stale = [r for r in runs if r.state["channel"] != values[-1]]
    assert len(stale) <= 2, [r.state["channel"] for r in runs]
    assert runs[-1].state["channel"] == values[-1] == w.channel
    assert w.computations - start <= 3
    # The view shows the final filter.
    fmap = w.explainer.activation(w.layer)[0, values[-1]].numpy()
    lo, hi = fmap.min(), fmap.max()
    # (a filter silent on this image is a constant map, drawn as the colormap's low end)
    norm = (fmap - lo) / (hi - lo) if hi > lo else np.zeros_like(fmap)
    expect = R.to_png(R.apply_colormap(norm, "viridis"))
    assert w.w_canvas.png == expect


def test_repr_mimebundle_has_png(w: Explorer) -> None:
    bundle = w._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    png = base64.b64decode(data["image/png"])
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.width > 400


def test_to_png_writes_file(w: Explorer, tmp_path) -> None:
    out = tmp_path / "view.png"
    data = w.to_png(out)
    assert out.read_bytes() == data and data[:4] == b"\x89PNG"


def test_event_log(w: Explorer, tmp_path) -> None:
    import json

    log = tmp_path / "events.jsonl"
    w.log_events(log)
    w.channel = 2
    settle(w)
    rec = json.loads(log.read_text().splitlines()[-1])
    assert rec["state"]["channel"] == 2 and rec["nonblank"]["feature"] is True


def test_explore_defaults_to_bundled_model() -> None:
    models = pytest.importorskip("saliency_widget.models")
    if not hasattr(models, "shapes_cnn"):
        pytest.skip("bundled model not available")
    w = explore()
    try:
        cats = w._model.saliency_weights.meta["categories"]
        assert w.labels == [str(c) for c in cats]
        assert w._samples, "bundled samples should populate the dropdown"
        name = list(w._samples)[-1]
        w.w_sample.value = name
        settle(w)
        assert w.inputs.version == 2 and "error" not in w.status
    finally:
        w.close()


def test_normalisation_read_from_torchvision_weights() -> None:
    # torchvision keeps mean/std on the transforms object, not in .meta: the explorer must find them
    import torchvision

    from saliency_widget.viz.images import describe_model

    io = describe_model(torch.nn.Identity(), weights=torchvision.models.ResNet18_Weights.DEFAULT)
    assert (io.mean, io.std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
