"""One declaration per setting: every display option and method setting gets its trait, check, control and link from its spec.

A setting is one field of :class:`DisplayOptions` / :class:`MethodSettings` declared with
``views.spec.setting``; nothing in the widget names the options one by one. The last test adds
a display option in a fresh interpreter (a subclass with one more field) and sees its trait,
validator, control, browser links and state appear without any other edit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import ipywidgets as W
import pytest

from saliency_widget.errors import InputError
from saliency_widget.views.options import DisplayOptions, display_specs
from saliency_widget.views.settings import MethodSettings, setting_specs
from saliency_widget.views.spec import Spec
from saliency_widget.widget import Explorer
from saliency_widget.widget.mapcanvas import CompareCanvas, MapCanvas
from saliency_widget.widget.optionwidgets import canvas_trait_name
from tests.helpers import REPO_ROOT, cnn_explorer, settle

DISPLAY = display_specs()
SETTINGS = setting_specs()
ALL = (*DISPLAY, *SETTINGS)


@pytest.fixture(scope="module")
def w() -> Iterator[Explorer]:
    widget = cnn_explorer()
    settle(widget)
    yield widget
    widget.close()


def test_the_specs_are_the_dataclasses_fields() -> None:
    assert tuple(s.name for s in DISPLAY) == DisplayOptions.names() == ("sign", "clip", "cmap", "overlay", "alpha")
    assert tuple(s.name for s in SETTINGS) == MethodSettings.names()
    assert {"smoothgrad_samples", "smoothgrad_noise", "ig_steps", "ig_baseline", "occlusion_window", "occlusion_stride",
            "cam_layer", "lrp_composite", "lrp_first", "lrp_epsilon", "lrp_gamma", "lrp_alpha"} == set(MethodSettings.names())
    assert all(s.label and s.help for s in ALL)


CONTROL = {"choice": W.Dropdown, "float": W.FloatSlider, "int": W.IntSlider, "bool": W.Checkbox}


@pytest.mark.parametrize("spec", ALL, ids=[s.name for s in ALL])
def test_every_setting_has_one_trait_control_and_link(w: Explorer, spec: Spec) -> None:
    assert spec.name in Explorer.class_trait_names()
    ctrl = getattr(w.ui, f"w_{spec.name}")
    assert isinstance(ctrl, W.FloatLogSlider if spec.log else CONTROL[spec.kind])
    assert ctrl.description == spec.label and ctrl.tooltip == spec.help
    assert f"sw-{spec.name.replace('_', '-')}" in ctrl._dom_classes
    assert (ctrl in w.ui.option_controls.values()) != (ctrl in w.ui.setting_controls.values())  # exactly one place
    if spec.kind != "choice" or spec.choices:  # (the CAM layer's default is the engine's, set per model)
        assert getattr(w, spec.name) == spec.default == ctrl.value


@pytest.mark.parametrize("spec", DISPLAY, ids=[s.name for s in DISPLAY])
def test_every_display_option_drives_each_map_panel_in_the_browser(w: Explorer, spec: Spec) -> None:
    ctrl = w.ui.option_controls[spec.name]
    for canvas in (w.ui.w_map, w.ui.w_proj, w.ui.w_compare):
        assert isinstance(canvas, (MapCanvas, CompareCanvas))
        assert canvas.trait_metadata(canvas_trait_name(spec), "sync") is True
        links = [ln for ln in canvas._links if ln.source[0] is ctrl]
        assert len(links) == 1 and isinstance(links[0], W.widgets.widget_link.DirectionalLink)
        assert links[0].target == (canvas, canvas_trait_name(spec))
        assert {"name": spec.name, "kind": spec.kind, "trait": canvas_trait_name(spec)} in canvas.option_specs
    assert sum(len(c._links) for c in (w.ui.w_map, w.ui.w_proj, w.ui.w_compare)) == 3 * len(DISPLAY)


BAD = {"choice": "nope", "float": float("nan"), "int": -5, "bool": "yes"}


@pytest.mark.parametrize("spec", ALL, ids=[s.name for s in ALL])
def test_a_bad_value_is_refused_naming_it_and_the_valid_values(w: Explorer, spec: Spec) -> None:
    before = w.state()[spec.name]
    with pytest.raises(InputError) as err:
        setattr(w, spec.name, BAD[spec.kind])
    text = str(err.value)
    assert spec.name in text and repr(BAD[spec.kind]) in text
    if spec.kind in ("int", "float"):
        assert spec.range_text in text
    elif spec.kind == "choice":
        assert "expected one of" in text
    assert w.state()[spec.name] == before


def test_a_value_set_from_python_shows_in_its_control(w: Explorer) -> None:
    w.ig_steps = 300  # valid, beyond the slider's range: the slider widens to show it
    assert w.ui.w_ig_steps.value == 300 and w.ui.w_ig_steps.max >= 300
    w.ui.w_occlusion_stride.value = 5
    assert w.occlusion_stride == 5 and w.state()["occlusion_stride"] == 5
    w.ig_steps, w.occlusion_stride = 32, 8


NEW_OPTION = r"""
import json
from dataclasses import dataclass
import saliency_widget.views.options as options
from saliency_widget.views.spec import setting


@dataclass(frozen=True)
class Wider(options.DisplayOptions):
    gamma: float = setting("float", 1.0, "gamma", "brightness curve of the map", lo=0.1, hi=5.0, what="an exponent", step=0.1)


options.DisplayOptions = Wider  # the one edit a new option needs in Python: a field of DisplayOptions

from tests.helpers import cnn_explorer  # the widget is imported only now, as in a fresh session with the new field
from saliency_widget.errors import InputError

w = cnn_explorer()
w.wait(60)
out = {"trait": "gamma" in type(w).class_trait_names(), "value": w.gamma, "control": type(w.ui.w_gamma).__name__,
       "label": w.ui.w_gamma.description, "state": w.state().get("gamma"), "options": w.display_options.gamma}
try:
    w.gamma = 9.0
except InputError as exc:
    out["error"] = str(exc)
w.ui.w_gamma.value = 2.5
out["linked"] = w.gamma
out["links"] = [ln.target[1] for ln in w.ui.w_map._links if ln.source[0] is w.ui.w_gamma]
out["specs"] = [s["name"] for s in w.ui.w_map.option_specs]
out["renders"] = w.computations
w.close()
print(json.dumps(out))
"""


def test_a_new_display_option_is_one_field() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    run = subprocess.run([sys.executable, "-c", NEW_OPTION], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["trait"] and got["value"] == 1.0 and got["state"] == 1.0 and got["options"] == 1.0
    assert got["control"] == "FloatSlider" and got["label"] == "gamma"
    assert got["error"] == "gamma must be an exponent in [0.1, 5], got 9.0"
    assert got["linked"] == 2.5  # control -> trait
    assert got["links"] == ["gamma"] and got["specs"][-1] == "gamma"  # -> the map panel's trait, in the browser
    assert got["renders"] == 1  # a display option: the browser redraws, the kernel renders nothing
