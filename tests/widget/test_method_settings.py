"""Method settings and the CAM layer in the explorer: validated, in its state, used by the maps and saved in the exports.

Each map the explorer shows with a setting equals the engine's map computed with the same
option by hand (an independent call), and differs from the map of the default setting.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from saliency_widget.engine.cam import default_cam_layer
from saliency_widget.errors import InputError
from saliency_widget.views.rawmap import RawMap
from saliency_widget.views.settings import CAM_LAYER_METHODS, baseline_tensor, cam_layer_choices
from saliency_widget.viz.bundle import decode
from saliency_widget.viz.interactive_report import explorer_page
from saliency_widget.widget import Explorer
from tests.helpers import cnn_explorer, settle


@pytest.fixture
def w() -> Iterator[Explorer]:
    widget = cnn_explorer()
    settle(widget)
    yield widget
    widget.close()


def _shown(w: Explorer, panel: str = "map") -> RawMap:
    settle(w)
    last = w._last
    assert last is not None and w.render_log[-1].error is None, w.render_log[-1].error
    return last.maps[panel]


def _engine(w: Explorer, method: str, **options: Any) -> RawMap:
    ex = w.explainer
    assert ex is not None
    target = int(ex.probabilities[0].argmax())
    return RawMap.from_map(ex.saliency(target=target, method=method, **options)[0].detach().numpy())


def _same(a: RawMap, b: RawMap) -> None:
    # the same map up to float summation order (batches of 8 in the widget): equal planes within one quantisation step
    for sign in ("absolute", "signed"):
        torch.testing.assert_close(torch.as_tensor(a.plane(sign)), torch.as_tensor(b.plane(sign)), rtol=0.0,
                                   atol=2.0 * max(a.abs_scale, a.sum_scale, 1e-12))


SETTINGS = [
    ("smoothgrad", {"smoothgrad_samples": 3, "smoothgrad_noise": 0.3}, {"n": 3, "noise": 0.3}),
    ("integrated_gradients", {"ig_steps": 5}, {"steps": 5}),
    ("integrated_gradients", {"ig_baseline": "white"}, {"baseline": 1.0}),  # no normalisation: the pixel value 1
    ("occlusion", {"occlusion_window": 6, "occlusion_stride": 3}, {"window": 6, "stride": 3}),
    *[(m, {"cam_layer": "3"}, {"layer": "3"}) for m in CAM_LAYER_METHODS],
    ("lrp", {"lrp_composite": "epsilon"}, {"composite": "epsilon"}),
    ("lrp", {"lrp_composite": "epsilon", "lrp_epsilon": 0.5}, {"composite": "epsilon", "epsilon": 0.5}),
    ("lrp", {"lrp_composite": "alpha_beta"}, {"composite": "alpha_beta"}),
    ("lrp", {"lrp_composite": "alpha_beta", "lrp_alpha": 3.0}, {"composite": "alpha_beta", "alpha": 3.0}),
    ("lrp", {"lrp_composite": "epsilon_plus_flat"}, {"composite": "epsilon_plus_flat"}),
    # z^B's box: no normalisation here, so the pixel range 0..1 (the explorer's images)
    ("lrp", {"lrp_composite": "epsilon_gamma_box"}, {"composite": "epsilon_gamma_box", "low": 0.0, "high": 1.0}),
    ("lrp", {"lrp_composite": "epsilon_gamma_box", "lrp_gamma": 1.5},
     {"composite": "epsilon_gamma_box", "gamma": 1.5, "low": 0.0, "high": 1.0}),
    ("lrp", {"lrp_first": "wsquare"}, {"first": "wsquare"}),
    ("lrp", {"lrp_first": "zbox"}, {"first": "zbox", "low": 0.0, "high": 1.0}),
]


@pytest.mark.parametrize(("method", "settings", "engine"), SETTINGS, ids=[f"{m}-{'-'.join(s)}" for m, s, _ in SETTINGS])
def test_a_setting_reaches_the_engine(w: Explorer, method: str, settings: dict[str, Any], engine: dict[str, Any]) -> None:
    w.method = method
    default = _shown(w)
    for name, value in settings.items():
        setattr(w, name, value)
    got = _shown(w)
    _same(got, _engine(w, method, **engine))
    assert not np.array_equal(got.to_bytes(), default.to_bytes())  # the setting changed the map
    assert {k: w.state()[k] for k in settings} == settings
    assert w.render_log[-1].state["method"] == method and all(w.render_log[-1].state[k] == v for k, v in settings.items())


def test_a_setting_of_a_method_not_shown_computes_nothing_until_it_is(w: Explorer) -> None:
    before = w.computations
    w.ig_steps = 7
    w.occlusion_window = 5
    settle(w)
    assert w.computations == before
    w.method = "integrated_gradients"
    _same(_shown(w), _engine(w, "integrated_gradients", steps=7))


def test_lrp_parameters_its_composite_does_not_read_compute_nothing(w: Explorer) -> None:
    w.method = "lrp"
    default = _shown(w)
    before = w.computations
    w.lrp_gamma, w.lrp_alpha = 1.0, 3.0  # epsilon_plus has neither a γ nor an α-β rule
    settle(w)
    assert w.computations == before and w._last is not None and w._last.maps["map"] is default
    w.lrp_composite = "alpha_beta"  # now α = 3 counts
    _same(_shown(w), _engine(w, "lrp", composite="alpha_beta", alpha=3.0))
    assert w.render_log[-1].state["lrp_alpha"] == 3.0


def test_the_lrp_box_is_the_models_pixel_range() -> None:
    from saliency_widget.views.settings import MethodSettings, box_bounds

    x = torch.zeros(1, 3, 4, 4)
    low, high = box_bounds(x, (0.5, 0.25, 0.5), (0.25, 0.25, 0.5))
    assert isinstance(low, torch.Tensor) and isinstance(high, torch.Tensor)
    torch.testing.assert_close(low.flatten(), torch.tensor([-2.0, -1.0, -1.0]))  # (0 - mean) / std
    torch.testing.assert_close(high.flatten(), torch.tensor([2.0, 3.0, 1.0]))  # (1 - mean) / std
    assert box_bounds(x) == (0.0, 1.0)
    opts = MethodSettings(lrp_composite="alpha_beta", lrp_alpha=3.0, lrp_gamma=2.0).engine_options("lrp", x)
    assert opts == {"composite": "alpha_beta", "first": None, "epsilon": 1e-6, "alpha": 3.0, "low": 0.0, "high": 1.0}
    assert MethodSettings(lrp_first="flat").for_method("lrp") == {"lrp_composite": "epsilon_plus", "lrp_first": "flat",
                                                                  "lrp_epsilon": 1e-6}


def test_the_cam_layer_menu_opens_on_the_engines_default(w: Explorer) -> None:
    ex = w.explainer
    assert ex is not None
    assert w.cam_layer == default_cam_layer(ex) == "7"  # the last ReLU of the tiny CNN
    assert [k for _, k in w.ui.w_cam_layer.options] == [k for _, k in cam_layer_choices(ex.layers)] == ["0", "1", "2", "3", "4", "5", "6", "7"]
    assert w.ui.w_cam_layer.value == "7" and w.state()["cam_layer"] == "7"
    with pytest.raises(InputError, match=r"unknown cam_layer '10'; expected one of '0', '1'"):
        w.cam_layer = "10"  # the flattened head: no grid for a CAM
    assert w.cam_layer == "7"


def test_the_controls_shown_are_the_methods(w: Explorer) -> None:
    def shown() -> set[str]:
        return {n for n, c in w.ui.setting_controls.items() if c.layout.display != "none"}

    assert shown() == set()  and w.ui.w_settings.layout.display == "none"  # Gradient has no settings
    w.method = "smoothgrad"
    assert shown() == {"smoothgrad_samples", "smoothgrad_noise"}
    w.method = "gradcampp"
    assert shown() == {"cam_layer"}
    w.method = "occlusion"
    assert shown() == {"occlusion_window", "occlusion_stride"}
    w.method = "lrp"
    assert shown() == {"lrp_composite", "lrp_first", "lrp_epsilon"}
    w.lrp_composite = "alpha_beta"  # α shows with the composite that reads it, γ with its own
    assert shown() == {"lrp_composite", "lrp_first", "lrp_epsilon", "lrp_alpha"}
    w.lrp_composite = "epsilon_gamma_box"
    assert shown() == {"lrp_composite", "lrp_first", "lrp_epsilon", "lrp_gamma"}
    w.view = "compare"
    assert shown() == set(w.ui.setting_controls) - {"lrp_alpha"}
    w.lrp_composite = "epsilon_plus"
    settle(w)


def test_the_compare_view_uses_the_settings(w: Explorer) -> None:
    w.set_trait("cam_layer", "3")
    w.ig_steps = 4
    w.view = "compare"
    settle(w)
    assert w._last is not None
    tiles = {t.method: t.raw for t in w._last.compare}
    gradcam, ig = tiles["gradcam"], tiles["integrated_gradients"]
    assert gradcam is not None and ig is not None
    _same(gradcam, _engine(w, "gradcam", layer="3"))
    _same(ig, _engine(w, "integrated_gradients", steps=4))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("smoothgrad_samples", 0, "smoothgrad_samples must be a number of samples in 1..500, got 0"),
        ("smoothgrad_noise", 1.5, "smoothgrad_noise must be a fraction of the input range in [0, 1], got 1.5"),
        ("ig_steps", 2.5, "ig_steps must be a number of steps in 1..512, got 2.5"),
        ("ig_baseline", "grey", "unknown ig_baseline 'grey'; expected one of 'zeros', 'black', 'white', 'blur'"),
        ("occlusion_window", None, "occlusion_window must be a patch side in pixels in 1..1024, got None"),
        ("occlusion_stride", True, "occlusion_stride must be a step in pixels in 1..1024, got True"),
        ("lrp_composite", "zplus", "unknown lrp_composite 'zplus'; expected one of 'epsilon', 'epsilon_plus', 'epsilon_plus_flat', "
                                      "'epsilon_gamma_box', 'alpha_beta'"),
        ("lrp_first", "gamma", "unknown lrp_first 'gamma'; expected one of 'default', 'none', 'flat', 'wsquare', 'zbox'"),
        ("lrp_epsilon", 0.0, "lrp_epsilon must be a stabiliser in (0, 100], got 0.0"),
        ("lrp_alpha", 0.5, "lrp_alpha must be a weight (alpha, >= 1) in [1, 100], got 0.5"),
    ],
)
def test_a_bad_setting_names_the_value_and_the_range(w: Explorer, name: str, value: Any, message: str) -> None:
    before = w.state()[name]
    with pytest.raises(InputError) as err:
        setattr(w, name, value)
    assert str(err.value) == message and w.state()[name] == before


def test_a_window_larger_than_the_image_is_said_in_the_status_line(w: Explorer) -> None:
    w.method = "occlusion"
    w.occlusion_window = 100  # valid as a setting; this 24 px image is smaller: the engine says so
    settle(w)
    assert "window (100, 100) is larger than the image (24, 24)" in w.status


def test_baselines_are_the_pixel_values_through_the_normalisation() -> None:
    x = torch.zeros(1, 3, 32, 32)
    black = baseline_tensor("black", x, (0.5, 0.25, 0.5), (0.25, 0.25, 0.5))
    white = baseline_tensor("white", x, (0.5, 0.25, 0.5), (0.25, 0.25, 0.5))
    assert isinstance(black, torch.Tensor) and isinstance(white, torch.Tensor)
    torch.testing.assert_close(black.flatten(), torch.tensor([-2.0, -1.0, -1.0]))
    torch.testing.assert_close(white.flatten(), torch.tensor([2.0, 3.0, 1.0]))
    assert baseline_tensor("zeros", x) is None and baseline_tensor("black", x) == 0.0
    img = torch.zeros(1, 3, 32, 32)
    img[..., ::2, :] = 1.0  # stripes: the blur averages them out
    blur = baseline_tensor("blur", img)
    assert isinstance(blur, torch.Tensor) and blur.shape == img.shape
    assert float(blur.std()) < 0.1 * float(img.std())
    torch.testing.assert_close(blur.mean(), img.mean(), atol=0.02, rtol=0.0)


def test_the_exports_record_and_use_the_settings(w: Explorer) -> None:
    w.ig_steps, w.ig_baseline = 6, "black"
    w.set_trait("cam_layer", "4")
    w.method = "integrated_gradients"
    shown = _shown(w)
    page = w.to_html()  # the static report's settings table: the shown method's settings, by their labels
    assert "<th>Integrated Gradients settings</th><td>steps 6, baseline black</td>" in page and "CAM layer" not in page
    w.method = "gradcampp"
    settle(w)
    assert "<th>Grad-CAM++ settings</th><td>CAM layer 4</td>" in w.to_html()
    w.method = "integrated_gradients"
    built = explorer_page(w.explainer, w.state(), name="x", labels=w.labels, mean=None, std=None,  # type: ignore[arg-type]
                          methods=["integrated_gradients", "gradcam"])
    assert "Integrated Gradients settings" in built.html and "steps 6, baseline black" in built.html
    assert "Grad-CAM settings" in built.html and "CAM layer 4" in built.html
    image = built.manifest["images"][0]
    ref = image["maps"]["integrated_gradients"][str(image["target"])]
    np.testing.assert_allclose(decode(built.payload, ref["sum"]), shown.plane("signed"), rtol=0, atol=2 * shown.sum_scale)
    cam = image["maps"]["gradcam"][str(image["target"])]
    want = _engine(w, "gradcam", layer="4")
    np.testing.assert_allclose(decode(built.payload, cam["abs"]), want.plane("absolute"), rtol=0, atol=2 * want.abs_scale)


def test_the_exports_use_the_lrp_settings(w: Explorer) -> None:
    w.method = "lrp"
    w.lrp_composite, w.lrp_alpha = "alpha_beta", 3.0
    shown = _shown(w)
    assert "<th>LRP settings</th><td>composite alpha_beta, first layer default, ε 1e-06, α 3.0</td>" in w.to_html()
    built = explorer_page(w.explainer, w.state(), name="x", labels=w.labels, mean=None, std=None,  # type: ignore[arg-type]
                          methods=["lrp"])
    image = built.manifest["images"][0]
    ref = image["maps"]["lrp"][str(image["target"])]
    # the page holds the explorer's map: the same planes (the same quantisation, to the bit)
    np.testing.assert_array_equal(decode(built.payload, ref["sum"]), shown.plane("signed"))
    np.testing.assert_array_equal(decode(built.payload, ref["abs"]), shown.plane("absolute"))


def test_lrp_epsilon_is_a_log_slider_that_widens_to_a_value_set_from_python(w: Explorer) -> None:
    import ipywidgets as W

    ctrl = w.ui.w_lrp_epsilon
    assert isinstance(ctrl, W.FloatLogSlider) and (ctrl.min, ctrl.max, ctrl.base) == (-9.0, 0.0, 10.0)
    assert ctrl.value == w.lrp_epsilon == 1e-6
    w.lrp_epsilon = 50.0  # valid (up to 100), beyond the decades the slider offers: it widens
    assert ctrl.max == 2.0 and ctrl.value == 50.0
    w.lrp_epsilon = 1e-12
    assert ctrl.min == -12.0 and ctrl.value == 1e-12
    ctrl.value = 1e-3
    assert w.lrp_epsilon == 1e-3 and w.state()["lrp_epsilon"] == 1e-3
