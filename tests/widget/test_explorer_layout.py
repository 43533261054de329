"""Issue 29 items 2, 5, 6 and the channel grid, on the Python side of the explorer.

The layer menu hides pass-through layers behind "all layers"; unavailable methods look
disabled with their reason before any click; "signed" switches to a diverging colormap and the
menu says so; upload and sample feedback sits next to the upload button; the busy map names the
method being computed; every filter of the layer is a clickable thumbnail, sent as one PNG.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from saliency_widget.engine import Explainer
from saliency_widget.errors import InputError, LayerError
from saliency_widget.views.layermenu import default_layer, layer_choices, noop_layers
from saliency_widget.viz import render as R
from saliency_widget.widget import Explorer, explore
from saliency_widget.widget.channelgrid import atlas
from saliency_widget.widget.view import projection_title, source_html
from tests.helpers import encode, rgb_image, settle, to_tensor, upload
from tests.nets import seeded


class WithNoOps(nn.Module):
    """conv-ReLU-Identity-Dropout-conv-GELU-Dropout2d, pool, linear (3 classes); no-op layers in between."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.relu, self.skip, self.drop = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Identity(), nn.Dropout(0.5)
        self.conv2, self.act, self.drop2 = nn.Conv2d(4, 5, 3, padding=1), nn.GELU(), nn.Dropout2d(0.1)
        self.head = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.skip(self.relu(self.conv1(x))))
        h = self.drop2(self.act(self.conv2(h)))
        return self.head(h.mean(dim=(2, 3)))


def _net() -> nn.Module:
    return seeded(WithNoOps).eval()


@pytest.fixture(scope="module")
def w() -> Explorer:
    widget = Explorer(_net(), rgb_image(1), transform=to_tensor, samples={"bar": lambda: rgb_image(2), "noise": lambda: rgb_image(3)})
    settle(widget)
    yield widget
    widget.close()


def test_noop_layers_are_identity_and_dropout_in_eval() -> None:
    net = _net()
    layers = Explainer(net, to_tensor(rgb_image(0)).unsqueeze(0)).layers
    assert noop_layers(layers, net) == {"skip", "drop", "drop2"}
    assert [k for _, k in layer_choices(layers, noop_layers(layers, net))] == ["conv1", "relu", "conv2", "act"]
    assert default_layer(layers, net) == "relu"
    net.drop.train()  # dropout in training mode changes the map: listed
    assert noop_layers(layers, net) == {"skip", "drop2"}


def test_layer_menu_hides_noops_behind_all_layers(w: Explorer) -> None:
    keys = lambda: [k for _, k in w.w_layer.options]  # noqa: E731
    assert keys() == ["conv1", "relu", "conv2", "act"]
    assert w.w_all_layers.description == "all layers (+3)"
    w.w_all_layers.value = True
    assert keys() == ["conv1", "relu", "skip", "drop", "conv2", "act", "drop2"]
    w.w_all_layers.value = False
    assert keys() == ["conv1", "relu", "conv2", "act"] and w.layer == "relu"  # the current layer stays


def test_a_hidden_layer_can_still_be_chosen_from_python(w: Explorer) -> None:
    w.layer = "drop"
    settle(w)
    assert "drop" in [k for _, k in w.w_layer.options] and w.w_layer.value == "drop"  # listed while current
    assert w.status.endswith("ms") or "drop" in w.status
    w.layer = "relu"
    settle(w)
    assert "drop" not in [k for _, k in w.w_layer.options]
    with pytest.raises(LayerError, match="unknown layer .nope."):
        w.layer = "nope"


def test_unavailable_methods_look_disabled_with_the_reason_before_a_click() -> None:
    gelu = seeded(lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))).eval()
    widget = explore(gelu, rgb_image(0), transform=to_tensor)
    try:
        values = [v for _, v in widget.w_method.options]
        assert widget.ui.unavailable == ["deconvnet", "guided_backprop", "guided_gradcam"]
        css = widget.ui.w_rules.value
        for m in widget.ui.unavailable:
            assert f"button.widget-toggle-button:nth-of-type({values.index(m) + 1})" in css
            assert widget.w_method.tooltips[values.index(m)].endswith("this model has no ReLU (it uses GELU)")
        assert css.count("line-through") == 3 and widget.ui._scope in css and widget.ui._scope in widget.w_method._dom_classes
    finally:
        widget.close()


def test_signed_switches_to_a_diverging_colormap_and_back(w: Explorer) -> None:
    w.cmap = "viridis"
    w.sign = "signed"
    assert w.cmap == "coolwarm" and w.w_cmap.label == "coolwarm" and w.w_cmap.description == "colormap (signed)"
    w.cmap = "hot"  # the user insists on a sequential one: the menu says what is drawn
    assert w.w_cmap.description == "colormap → coolwarm" and w.display_options.shown_cmap == "coolwarm"
    w.cmap = "bwr"
    w.sign = "absolute"  # a diverging colormap the user chose stays
    assert w.cmap == "bwr"
    w.cmap = "magma"
    w.sign = "signed"
    w.sign = "positive"  # the switch is undone
    assert w.cmap == "magma" and w.w_cmap.description == "colormap"


def test_upload_feedback_next_to_the_button(w: Explorer) -> None:
    png = encode(rgb_image(5))
    upload(w, png, name="my cat.png")
    settle(w)
    assert "my cat.png" in w.ui.w_source.value and f"{len(png) / 1024:.1f} KB" in w.ui.w_source.value
    assert "loaded" in w.ui.w_source.value and w.w_upload.value == ()
    assert "my cat.png" in w.ui.w_input_title.value
    upload(w, b"not an image at all", name="notes.txt")
    settle(w)
    assert "color:#b00" in w.ui.w_source.value and "error" in w.ui.w_source.value and "notes.txt" not in w.ui.w_input_title.value
    assert "\\x" not in w.ui.w_source.value  # no raw byte dump


def test_the_loaded_samples_name_stays_in_the_menu(w: Explorer) -> None:
    w.w_sample.value = "noise"
    settle(w)
    assert w.w_sample.value == "noise" and "sample noise" in w.ui.w_source.value
    before = w.inputs.version
    upload(w, encode(rgb_image(6)), name="x.png")
    settle(w)
    assert w.w_sample.value == "" and w.inputs.version == before + 1  # the menu no longer claims a sample
    w.set_image(rgb_image(7))
    settle(w)
    assert "set_image()" in w.ui.w_source.value


def test_busy_map_title_names_the_new_method(w: Explorer) -> None:
    w.ui.show_busy("computing Occlusion …", "occlusion")
    assert "Occlusion" in w.ui.w_map_title.value and "computing" in w.ui.w_map_title.value
    w.ui.end_busy()


def test_titles_fit_two_lines_with_the_full_text_on_hover() -> None:
    inner, full = projection_title("deconvnet", "the model has no ReLU, so DeconvNet is undefined: gradient projection", (2, 4))
    assert "no ReLU" in inner and "at (2, 4)" in inner and len(inner.split("</b>")[1]) < 80
    assert full == "projection to pixel space (the model has no ReLU, so DeconvNet is undefined: gradient projection, activation 2, 4)"
    assert source_html("upload a.png", 2048).endswith(">a.png · 2.0 KB · loaded</div>")


def test_atlas_tiles_every_filter_with_its_own_range() -> None:
    acts = torch.zeros(3, 2, 2)
    acts[0] = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    acts[1, 1, 1] = float("nan")
    acts[2] = 5.0  # constant: the colormap's start
    rgb, shape = atlas(acts, cols=2)
    assert shape == [3, 2, 2, 2] and rgb.shape == (2 * 3, 2 * 3, 3)
    lut = R.colormap_lut("viridis")
    np.testing.assert_array_equal(rgb[0, 0], lut[0])
    np.testing.assert_array_equal(rgb[1, 1], lut[255])
    np.testing.assert_array_equal(rgb[0, 1], lut[85])  # 1/3 of the range
    np.testing.assert_array_equal(rgb[0, 3], [235, 235, 235])  # NaN filter: grey
    np.testing.assert_array_equal(rgb[3, 0], lut[0])  # filter 2, second row
    np.testing.assert_array_equal(rgb[2], np.full((6, 3), 255))  # gap row


def test_atlas_pools_large_maps_to_thumbnails() -> None:
    rgb, shape = atlas(torch.rand(20, 96, 48), cols=16, max_tile=24)
    assert shape == [20, 24, 12, 16] and rgb.shape == (2 * 25, 16 * 13, 3)


def test_channel_grid_is_the_current_layer_and_a_click_selects_a_filter(w: Explorer) -> None:
    w.layer = "conv2"
    settle(w)
    grid = w.ui.w_channels
    assert grid.shape[0] == 5 and grid.key.endswith("/conv2")
    assert R.from_png(grid.png).shape == (grid.shape[1] + 1, 5 * (grid.shape[2] + 1), 3)  # one PNG atlas, binary
    grid.click_filter(3)
    settle(w)
    assert w.channel == 3 and grid.selected == 3 and w.state()["channel"] == 3
    w.channel = 1
    assert grid.selected == 1
    with pytest.raises(InputError, match="valid 0..4"):
        grid.click_filter(5)
    png = grid.png
    w.method = "gradcam"  # same layer and image: the atlas is not rebuilt
    settle(w)
    assert grid.png is png


def test_timm_vit_menu_hides_the_noops() -> None:
    timm = pytest.importorskip("timm")
    m = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=2).eval()
    layers = Explainer(m, torch.randn(1, 3, 224, 224)).layers
    every, shown = layer_choices(layers), layer_choices(layers, noop_layers(layers, m))
    types = {i.key: i.type for i in layers}
    assert {types[k] for _, k in shown}.isdisjoint({"Identity", "Dropout"})
    assert len(every) - len(shown) == sum(types[k] in ("Identity", "Dropout") for _, k in every) > 0
    assert types[default_layer(layers, m)] not in ("Identity", "Dropout")


def test_sample_error_clears_the_menu() -> None:
    def broken() -> Image.Image:
        raise InputError("sample 'broken' could not be read")

    widget = Explorer(_net(), rgb_image(1), transform=to_tensor, samples={"broken": broken})
    try:
        widget.w_sample.value = "broken"
        assert widget.w_sample.value == "" and "could not be read" in widget.ui.w_source.value
        assert "could not be read" in widget.status
    finally:
        widget.close()
