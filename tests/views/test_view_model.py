"""The view model decides once: display options, class names, the chart's classes, methods, rules, strongest."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from saliency_widget.errors import InputError, MethodError
from saliency_widget.views import (
    DisplayOptions,
    bar_entries,
    chart_classes,
    check_methods,
    check_option,
    class_name,
    class_names,
    projection_rule,
    projection_rules,
    strongest,
    top_classes,
)


def test_display_options_defaults_and_frozen() -> None:
    opts = DisplayOptions()
    assert opts.as_dict() == {"sign": "absolute", "clip": 99.0, "cmap": "magma", "overlay": False, "alpha": 0.6}
    assert DisplayOptions.names() == ("sign", "clip", "cmap", "overlay", "alpha")
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.sign = "signed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sign": "both"}, "unknown sign 'both'; expected one of 'absolute', 'positive', 'negative', 'signed'"),
        ({"cmap": "jet"}, "unknown cmap 'jet'; expected one of 'viridis', 'magma', 'hot', 'gray', 'coolwarm', 'bwr'"),
        ({"clip": 0.0}, "clip must be a percentile in (0, 100] (100 = no clipping), got 0.0"),
        ({"clip": 100.5}, "clip must be a percentile in (0, 100] (100 = no clipping), got 100.5"),
        ({"clip": float("nan")}, "clip must be a percentile in (0, 100] (100 = no clipping), got nan"),
        ({"clip": "high"}, "clip must be a percentile in (0, 100] (100 = no clipping), got 'high'"),
        ({"alpha": 1.5}, "alpha must be an opacity in [0, 1], got 1.5"),
        ({"alpha": -0.1}, "alpha must be an opacity in [0, 1], got -0.1"),
        ({"overlay": "yes"}, "overlay must be True or False, got 'yes'"),
    ],
)
def test_display_options_refuse_bad_values_in_one_line(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InputError) as err:
        DisplayOptions(**kwargs)
    assert str(err.value) == message and "\n" not in str(err.value)


def test_check_option_normalises_and_names_unknown_options() -> None:
    assert check_option("clip", 98) == 98.0 and isinstance(check_option("clip", 98), float)
    assert check_option("overlay", 1) is True
    with pytest.raises(InputError, match="unknown display option 'gamma'; expected one of 'sign', 'clip', 'cmap', 'overlay', 'alpha'"):
        check_option("gamma", 1.0)


def test_signed_sequential_colormap_shows_coolwarm() -> None:
    assert DisplayOptions(sign="signed", cmap="magma").shown_cmap == "coolwarm"
    assert DisplayOptions(sign="signed", cmap="bwr").shown_cmap == "bwr"
    assert DisplayOptions(sign="absolute", cmap="magma").shown_cmap == "magma"


def test_class_names_default_and_length_check() -> None:
    assert class_names(None, 3) == ["class 0", "class 1", "class 2"]
    assert class_names(["a", 7], 2) == ["a", "7"]
    assert class_name(None, 3) == "class 3" and class_name(["a"], 0) == "a" and class_name(["a"], 5) == "class 5"
    with pytest.raises(InputError, match="labels has 2 entries but the model outputs 3 classes"):
        class_names(["a", "b"], 3)


PROBS_5 = np.array([0.1, 0.4, 0.05, 0.3, 0.15])
PROBS_10 = np.array([0.02, 0.3, 0.01, 0.2, 0.1, 0.05, 0.12, 0.08, 0.07, 0.05])


@pytest.mark.parametrize(
    ("probs", "target", "expected"),
    [
        (PROBS_5, None, [1, 3, 4, 0, 2]),  # few classes: every class, most probable first
        (PROBS_5, 2, [1, 3, 4, 0, 2]),
        (PROBS_10, None, [1, 3, 6, 4, 7]),  # many classes: the top 5
        (PROBS_10, 2, [1, 3, 6, 4, 2]),  # an explicit target outside them replaces the last
        (PROBS_10, 4, [1, 3, 6, 4, 7]),
    ],
)
def test_chart_classes_literal(probs: np.ndarray, target: int | None, expected: list[int]) -> None:
    assert chart_classes(probs, target) == expected


def test_top_classes_and_bars() -> None:
    assert top_classes(PROBS_5, None, 2) == [1, 3] and top_classes(PROBS_5, 2, 2) == [1, 2]
    bars = bar_entries(PROBS_5, ["a", "b", "c", "d", "e"], 1)
    assert [b[0] for b in bars] == [1, 3, 4, 0, 2] and bars[0] == (1, "b", 0.4)


def test_strongest_ignores_nan_and_takes_the_first_on_ties() -> None:
    f = np.array([[0.0, 2.0, np.nan], [2.0, 1.0, 0.0]])
    assert strongest(f) == (0, 1)
    assert strongest(np.full((2, 2), np.nan)) == (0, 0)


@pytest.mark.parametrize(
    ("method", "has_relu", "rule"),
    [("gradient", True, "gradient"), ("guided_backprop", True, "guided_backprop"), ("deconvnet", True, "deconvnet"),
     ("gradcam", True, "deconvnet"), ("occlusion", True, "deconvnet"), ("deconvnet", False, "gradient")],
)
def test_projection_rule(method: str, has_relu: bool, rule: str) -> None:
    assert projection_rule(method, has_relu) == rule
    assert projection_rules([method], has_relu) == {method: rule}


def test_check_methods_raises_method_error() -> None:
    assert check_methods(["gradient", "deconvnet"]) == ["gradient", "deconvnet"]
    with pytest.raises(MethodError, match=r"unknown method\(s\) \['nope'\]; expected names from 'gradient'"):
        check_methods(["gradient", "nope"])
    with pytest.raises(MethodError, match=r"unknown method\(s\) \[\]"):
        check_methods([])


def test_the_pages_manifest_carries_what_viewer_js_used_to_restate() -> None:
    from torchvision.transforms.functional import to_tensor

    from saliency_widget.engine import Explainer
    from saliency_widget.views import CLIPS
    from saliency_widget.views.options import SIGNS
    from saliency_widget.viz.bundle import Packer
    from saliency_widget.viz.interactive import collect_image
    from saliency_widget.viz.viewer_page import interactive_page, viewer_source
    from tests.helpers import REPO_ROOT, rgb_image
    from tests.nets import sequential_cnn

    ex = Explainer(sequential_cnn(), to_tensor(rgb_image(0)).unsqueeze(0))
    packer = Packer()
    methods = ["gradient", "guided_backprop", "gradcam"]
    entry = collect_image(ex, packer, name="x", methods=methods, layers=["7"], channels=[0])
    page = interactive_page([entry], packer, title="t", state={}, settings={})
    assert page.manifest["signs"] == list(SIGNS) and page.manifest["clips"] == list(CLIPS)
    assert entry["projection"] == {"gradient": "gradient", "guided_backprop": "guided_backprop", "gradcam": "deconvnet"}
    viewer = (REPO_ROOT / "js" / "viewer.js").read_text(encoding="utf-8")
    assert "guided_backprop" not in viewer and "99.9" not in viewer  # rule and clip names come from the manifest
    inlined = viewer_source()
    assert "export function renderView" in inlined and 'from "./render.js"' not in inlined  # one renderer, inlined once
