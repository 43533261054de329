"""compute_view without any widget: a tiny net, a snapshot, and the pictures and numbers of one view."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saliency_widget.engine import Explainer, LayerInfo
from saliency_widget.errors import InputError, LayerError, ModelError
from saliency_widget.views.layermenu import default_layer, layer_choices
from saliency_widget.views.memo import ViewMemo
from saliency_widget.views.pipeline import (
    Snapshot,
    bar_entries,
    compute_view,
    projection_rule,
)
from saliency_widget.views.rawmap import RawMap
from saliency_widget.viz import render as R
from tests.nets import sequential_cnn

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def explainer() -> Explainer:
    gen = torch.Generator().manual_seed(1)
    return Explainer(sequential_cnn(), torch.randn(1, 3, 16, 16, generator=gen))


def snap(**kw: object) -> Snapshot:
    base = dict(
        version=1, method="gradient", target=None, layer="4", channel=2, position=None, sign="absolute",
        clip=99.0, cmap="magma", overlay=False, alpha=0.6, view="single",
    )
    base.update(kw)
    return Snapshot(**base)  # type: ignore[arg-type]


def test_single_view_panels_and_numbers(explainer: Explainer) -> None:
    res = compute_view(explainer, snap(), labels=["a", "b", "c", "d"])
    assert sorted(res.panels) == ["feature", "input"] and sorted(res.maps) == ["map", "projection"]  # maps stay raw
    assert all(png[:8] == PNG for png in res.panels.values())
    assert all(res.png(k, snap().options)[0][:8] == PNG for k in res.maps)  # type: ignore[index]
    probs = explainer.probabilities[0].double().numpy()
    assert res.target == int(np.argmax(probs))
    assert res.class_label == "abcd"[res.target] and res.method_label == "Gradient"
    assert [b[0] for b in res.bars] == [int(i) for i in np.argsort(-probs)]
    assert res.selected_bar == 0
    act = explainer.activation("4")[0, 2]  # (8, 8) after the pool
    flat = int(act.argmax())
    assert res.grid == (8, 8) and res.position == (flat // 8, flat % 8)
    assert res.projection_rule == "gradient"
    assert R.from_png(res.panels["input"]).shape == (16, 16, 3)


def test_compare_view_has_one_tile_per_method(explainer: Explainer) -> None:
    res = compute_view(explainer, snap(view="compare"), methods=["gradient", "deconvnet"])
    assert "compare" not in res.panels  # raw tiles, drawn by the browser (or compare_png for exports)
    assert [t.method for t in res.compare] == ["gradient", "deconvnet"] and all(t.raw is not None for t in res.compare)
    png = res.compare_png(res.snapshot.options)
    assert png is not None
    rgb = R.from_png(png)
    side, gap = 224 - 64, 6
    assert rgb.shape[1] == 2 * side + 3 * gap


@pytest.mark.parametrize(
    ("method", "rule"),
    [("gradient", "gradient"), ("deconvnet", "deconvnet"), ("guided_backprop", "guided_backprop"),
     ("gradcam", "deconvnet"), ("occlusion", "deconvnet"), ("smoothgrad", "deconvnet")],
)
def test_projection_rule_follows_the_method(method: str, rule: str) -> None:
    assert projection_rule(method) == rule


def test_clicked_position_is_used(explainer: Explainer) -> None:
    act = explainer.activation("4")[0, 2]
    order = act.flatten().argsort(descending=True)
    flat = int(order[1])  # the second strongest activation, so not the default position
    pos = (flat // 8, flat % 8)
    assert float(act[pos]) > 0
    res = compute_view(explainer, snap(position=pos))
    assert res.position == pos
    expected = RawMap.from_map(explainer.project("4", 2, position=pos, method="gradient")[0].numpy())
    assert res.maps["projection"].to_bytes() == expected.to_bytes()
    want = expected.render(snap().options, res.base)
    assert want.rgb is not None and res.png("projection", snap().options) == (R.to_png(want.rgb), None)


@pytest.mark.parametrize(
    ("change", "error", "pattern"),
    [
        ({"channel": 12}, InputError, r"filter 12 out of range: 4 has 12 filters"),
        ({"position": (8, 0)}, InputError, r"position \(8, 0\) outside the 8x8"),
        ({"target": 4}, InputError, r"target 4 out of range for 4 classes"),
        ({"layer": "nope"}, LayerError, r"unknown layer 'nope'; expected one of '0', '1'"),
    ],
)
def test_bad_state_raises_our_errors(explainer: Explainer, change: dict, error: type, pattern: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(error, match=pattern):
        compute_view(explainer, snap(**change))


def test_memo_spares_the_backward_when_only_display_changes(explainer: Explainer, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = explainer.saliency

    def counting(*a: object, **k: object) -> torch.Tensor:
        calls.append(str(k.get("method")))
        return real(*a, **k)

    monkeypatch.setattr(explainer, "saliency", counting)
    memo = ViewMemo()
    first = compute_view(explainer, snap(), memo=memo)
    second = compute_view(explainer, snap(sign="signed", cmap="coolwarm"), memo=memo)
    assert calls == ["gradient"]
    assert first.maps["map"] is second.maps["map"]  # the raw map is reused; only its drawing differs
    assert first.png("map", first.snapshot.options) != second.png("map", second.snapshot.options)


def test_memo_is_cleared_for_another_explainer(explainer: Explainer) -> None:
    memo = ViewMemo()
    compute_view(explainer, snap(), memo=memo)
    assert len(memo.saliency) == 1
    other = Explainer(sequential_cnn(), torch.zeros(1, 3, 16, 16))
    compute_view(other, snap(), memo=memo)
    assert len(memo.saliency) == 1 and memo.owner == id(other)


@pytest.mark.parametrize(
    ("target", "k", "expected"),
    [
        (1, 2, ((1, "b", 0.5), (2, "c", 0.2))),
        (3, 2, ((1, "b", 0.5), (3, "d", 0.05))),  # an explicit target outside the top-k keeps a bar
        (0, 5, ((1, "b", 0.5), (2, "c", 0.2), (4, "e", 0.15), (0, "a", 0.1), (3, "d", 0.05))),
    ],
)
def test_bar_entries_literal(target: int, k: int, expected: tuple) -> None:  # type: ignore[type-arg]
    probs = np.array([0.1, 0.5, 0.2, 0.05, 0.15])
    assert bar_entries(probs, list("abcde"), target, k=k) == expected


def test_bar_names_stay_distinct() -> None:
    probs = np.array([0.6, 0.4])
    assert [n for _, n, _ in bar_entries(probs, ["x", "x"], 0)] == ["x", "x [1]"]


def test_layer_menu_and_default_layer() -> None:
    layers = [
        LayerInfo("conv", 0, (4, 8, 8), "Conv2d"),
        LayerInfo("relu", 0, (4, 8, 8), "ReLU"),
        LayerInfo("relu", 1, (4, 4, 4), "ReLU"),
        LayerInfo("gap", 0, (4, 1, 1), "AdaptiveAvgPool2d"),
        LayerInfo("fc", 0, (3,), "Linear", "flat"),
    ]
    assert [k for _, k in layer_choices(layers)] == ["conv", "relu", "relu#1", "gap"]
    assert layer_choices(layers)[2][0] == "relu#1  (ReLU, 4x4x4)"
    assert default_layer(layers) == "relu#1"
    assert default_layer(layers[:1] + layers[3:]) == "conv"
    with pytest.raises(ModelError, match=r"no layer with a \(C, H, W\) output.*'fc flat'"):
        layer_choices(layers[4:])


def test_layer_menu_of_a_transformer_reads_layouts() -> None:
    layers = [
        LayerInfo("patch", 0, (16, 4, 4), "Conv2d"),
        LayerInfo("blocks.0.norm1", 0, (16, 4, 4), "LayerNorm", "tokens", 1, (17, 16)),
        LayerInfo("blocks.0.attn.q", 0, (2, 17, 8), "Linear", "ambiguous", 0, (2, 17, 8)),
        LayerInfo("stage.norm", 0, (32, 2, 2), "LayerNorm", "NHWC", 0, (2, 2, 32)),
        LayerInfo("head", 0, (3,), "Linear", "flat"),
    ]
    assert layer_choices(layers) == [
        ("patch  (Conv2d, 16x4x4)", "patch"),
        ("blocks.0.norm1  (LayerNorm, 16x4x4, tokens: 1 prefix + grid)", "blocks.0.norm1"),
        ("stage.norm  (LayerNorm, 32x2x2, channels-last)", "stage.norm"),
    ]
    assert default_layer(layers) == "stage.norm"
