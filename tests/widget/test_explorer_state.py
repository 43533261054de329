"""Widget state that cannot lie: bad clip/alpha/method/filter/bar values are refused with our errors and
the controls keep showing the state; every upload or sample choice takes effect, the same one twice
included; a model that refuses the receptive-field probe loses only the box; explore() and the
exports name a bad device or folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from saliency_widget import InputError, MethodError
from saliency_widget.viz import render as R
from saliency_widget.widget import Explorer, explore
from tests.helpers import (
    LABELS,
    assert_unchanged,
    encode,
    rgb_image,
    settle,
    small_explorer,
    snapshot,
    to_tensor,
    upload,
)
from tests.nets import SmallCNN, seeded, small_cnn


@pytest.fixture
def w() -> Iterator[Explorer]:
    widget = small_explorer()
    settle(widget)
    yield widget
    widget.close()


# ----------------------------------------------------------------------------- clip, alpha, method, filter


@pytest.mark.parametrize(
    ("name", "value", "pattern"),
    [
        ("clip", 150.0, r"clip must be a percentile in \(0, 100\] \(100 = no clipping\), got 150\.0"),
        ("clip", float("nan"), r"clip must be a percentile in \(0, 100\].*got nan"),
        ("clip", 0.0, r"clip must be .*got 0\.0"),
        ("clip", -5.0, r"clip must be .*got -5\.0"),
        ("alpha", 1.5, r"alpha must be an opacity in \[0, 1\], got 1\.5"),
        ("alpha", -0.1, r"alpha must be an opacity in \[0, 1\], got -0\.1"),
        ("alpha", float("nan"), r"alpha must be an opacity in \[0, 1\], got nan"),
    ],
)
def test_bad_clip_and_alpha_are_refused_and_the_slider_agrees(w: Explorer, name: str, value: float, pattern: str) -> None:
    state, slider = w.state(), getattr(w, f"w_{name}").value
    with pytest.raises(InputError, match=pattern):
        setattr(w, name, value)
    assert w.state() == state
    assert getattr(w, f"w_{name}").value == slider == state[name]
    settle(w)
    assert not w.status.startswith(("error", "unexpected")), w.status


@pytest.mark.parametrize(("name", "value"), [("clip", 100.0), ("clip", 50.0), ("alpha", 0.0), ("alpha", 1.0)])
def test_valid_clip_and_alpha_reach_the_state_and_the_slider(w: Explorer, name: str, value: float) -> None:
    setattr(w, name, value)
    settle(w)
    assert getattr(w, name) == value
    assert getattr(w, f"w_{name}").value == value  # clip 50 widens the 90..100 slider instead of showing 90
    # a display-only change: drawn by the browser from the maps it holds (the panels follow the
    # controls there, tests/browser/test_e2e_display_speed.py), no render in the kernel
    assert w.render_log[-1].error is None and w.state()[name] == value and w.images["map"]


@pytest.mark.parametrize(
    ("name", "exc", "pattern"),
    [
        ("method", MethodError, r"unknown method None; expected one of 'gradient', 'deconvnet'"),
        ("sign", InputError, r"unknown sign None; expected one of 'absolute'"),
        ("cmap", InputError, r"unknown cmap None; expected one of .*'magma'"),
        ("view", InputError, r"unknown view None; expected one of 'single', 'compare'"),
    ],
)
def test_none_choice_is_our_error_naming_the_choices(w: Explorer, name: str, exc: type, pattern: str) -> None:
    state = w.state()
    with pytest.raises(exc, match=pattern) as info:
        setattr(w, name, None)
    assert type(info.value) is exc
    assert w.state() == state


@pytest.mark.parametrize(("value", "pattern"), [(-1, r"filter -1 is out of range for layer 'features.4': valid filters are 0..5"), (6, r"filter 6 is out")])
def test_bad_filter_is_refused_the_slider_agrees_and_set_image_works(w: Explorer, value: int, pattern: str) -> None:
    state, slider = w.state(), w.w_channel.value
    with pytest.raises(InputError, match=pattern):
        w.channel = value
    assert w.state() == state and w.w_channel.value == slider == state["channel"]
    w.set_image(rgb_image(5))
    settle(w)
    assert w.render_log[-1].error is None and not w.status.startswith("error"), w.status
    assert w.render_log[-1].state["channel"] == state["channel"]


def test_valid_filter_reaches_state_and_slider(w: Explorer) -> None:
    w.channel = 5
    settle(w)
    assert w.channel == w.w_channel.value == 5 and w.render_log[-1].error is None


# ----------------------------------------------------------------------------- the bars


def test_click_bar_out_of_range_names_the_bars_and_keeps_the_selection(w: Explorer) -> None:
    bars, selected, target = len(w._last.bars), list(w.w_bars.selected), w.target  # type: ignore[union-attr]
    assert bars == len(LABELS)
    with pytest.raises(InputError, match=rf"bar 99 is out of range: the chart shows {bars} bars, valid ranks are 0..{bars - 1}"):
        w.click_bar(99)
    with pytest.raises(InputError, match=r"bar -1 is out of range"):
        w.click_bar(-1)
    assert list(w.w_bars.selected) == selected and w.target == target


def test_phantom_bar_selection_from_the_front_end_is_restored(w: Explorer) -> None:
    selected, target = list(w.w_bars.selected), w.target
    w.w_bars.selected = [99]  # as a stale front end could send
    assert list(w.w_bars.selected) == selected and w.target == target


def test_click_bar_in_range_selects_that_class(w: Explorer) -> None:
    w.click_bar(2)
    settle(w)
    assert w.target == w._last.bars[2][0] and list(w.w_bars.selected) == [2]  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- uploads and samples


def test_upload_sample_then_same_upload_again_reloads(w: Explorer) -> None:
    sample = sorted(w._samples)[0]
    mine = encode(rgb_image(21))
    upload(w, mine)
    settle(w)
    uploaded = w.images["input"]
    assert w.inputs.source == "upload mine.png" and w.w_upload.value == ()  # emptied after use
    w.w_sample.value = sample
    settle(w)
    assert w.inputs.source == f"sample {sample}" and w.w_sample.value == sample  # stays named (issue 29 item 5)
    assert w.images["input"] != uploaded
    version = w.inputs.version
    upload(w, mine)  # the same file again: a change, because the control was emptied
    settle(w)
    assert w.inputs.version == version + 1 and w.inputs.source == "upload mine.png"
    assert w.images["input"] == uploaded
    w.w_sample.value = sample  # the same sample again, after the upload
    settle(w)
    assert w.inputs.version == version + 2 and w.inputs.source == f"sample {sample}"


def test_failed_upload_also_empties_the_control(w: Explorer) -> None:
    upload(w, b"not an image", name="bad.png")
    settle(w)
    assert w.status.startswith("error: ") and "cannot decode" in w.status
    assert w.w_upload.value == ()


# ----------------------------------------------------------------------------- receptive-field probe


class ValidatesInput(nn.Module):
    """:class:`SmallCNN` that refuses constant inputs, as the all-ones receptive-field probe is."""

    def __init__(self) -> None:
        super().__init__()
        self.net = seeded(SmallCNN, 0).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x == x.flatten()[0]).all()):
            raise ValueError("constant input: is the camera covered?")
        return self.net(x)


def _green(png: bytes) -> int:
    a = R.from_png(png)
    return int(np.all(a == (0, 255, 0), axis=-1).sum())


def test_failing_receptive_field_probe_costs_only_the_box() -> None:
    model = ValidatesInput()
    before = snapshot(model)
    w = explore(model, rgb_image(0), labels=LABELS, transform=to_tensor)
    try:
        settle(w)
        result = w._last
        assert result is not None and result.box is None
        assert result.box_note == (
            "no receptive-field box: the model failed on the synthetic probe input "
            "(ValueError: constant input: is the camera covered?)"
        )
        assert w.status.endswith(" · " + result.box_note) and not w.status.startswith("error")
        assert _green(w.images["input"]) == 0  # no box drawn
        assert not R.is_blank(R.from_png(w.images["map"]))
        assert w.render_log[-1].error is None
    finally:
        w.close()
    assert_unchanged(model, before)


def test_receptive_field_box_is_drawn_for_a_model_that_accepts_the_probe(w: Explorer) -> None:
    result = w._last
    assert result is not None and result.box is not None and result.box_note == ""
    assert _green(w.images["input"]) > 0


# ----------------------------------------------------------------------------- models without gradients


class NoGrad(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = seeded(SmallCNN, 0).eval()

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_no_grad_model_in_the_widget_says_why_and_runs_occlusion() -> None:
    model = NoGrad()
    before = snapshot(model)
    w = explore(model, rgb_image(0), labels=LABELS, transform=to_tensor)
    try:
        settle(w)
        assert "map" not in w.images and "the model disables gradients" in (w.messages["map"] or "")
        assert "disables gradients" in (w.messages["projection"] or "")
        w.method = "occlusion"
        settle(w)
        assert w.render_log[-1].error is None and not R.is_blank(R.from_png(w.images["map"]))
    finally:
        w.close()
    assert_unchanged(model, before)


# ----------------------------------------------------------------------------- explore() and exports


def test_explore_bad_device_lists_valid_devices() -> None:
    model = small_cnn()
    before = snapshot(model)
    with pytest.raises(InputError, match=r"unknown device 'gpu'; expected a device string such as 'cpu', 'cuda', 'cuda:N', 'mps'"):
        explore(model, rgb_image(0), labels=LABELS, transform=to_tensor, device="gpu")
    assert_unchanged(model, before)


@pytest.mark.parametrize("export", ["to_png", "to_html"])
def test_export_to_a_missing_folder_names_it(w: Explorer, export: str) -> None:
    with pytest.raises(InputError, match=r"cannot write '/no/such/dir/x\.png': the folder '/no/such/dir' does not exist"):
        getattr(w, export)("/no/such/dir/x.png")


@pytest.mark.parametrize("export", ["to_png", "to_html"])
def test_export_to_a_directory_says_so(w: Explorer, tmp_path: Path, export: str) -> None:
    with pytest.raises(InputError, match=rf"cannot write '{tmp_path}': it is a directory"):
        getattr(w, export)(tmp_path)


def test_export_writes_the_file(w: Explorer, tmp_path: Path) -> None:
    data: Any = w.to_png(tmp_path / "view.png")
    assert (tmp_path / "view.png").read_bytes() == data and data.startswith(b"\x89PNG")
