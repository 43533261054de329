"""Degenerate maps: a map with one value everywhere is named, not drawn as one flat colour.

:class:`MeanNet` scores the mean of its input: on a constant image every occluding patch of one
size removes the same share, so the occlusion map is the same drop at every pixel (what
timm's random-weight RepVGG-A0 gives, whose deep stack of BatchNorm gains of ~0.1 leaves its
logits independent of the input to float32 precision). :class:`SameTokens` makes every position of
its last layer the same (what a random-weight LeViT's uniform attention with zero attention biases
does): its Grad-CAM is one value everywhere. Both worked out by hand below.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import nn

import saliency_widget as sw
from saliency_widget.engine.degenerate import check_degenerate
from saliency_widget.errors import DegenerateMapWarning
from saliency_widget.viz import render as R


class MeanNet(nn.Module):
    """1x1 conv (weight 1, no bias), then logits ``(m, -m)`` with ``m`` the mean of the input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.conv(x).mean((1, 2, 3))
        return torch.stack([m, -m], 1)


class Broadcast(nn.Module):
    """Every position gets the spatial mean: ``(N, C, H, W) -> (N, C, H, W)``, one value per channel."""

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return a.mean((2, 3), keepdim=True).expand_as(a)


class SameTokens(nn.Module):
    """1x1 conv (weight 2), :class:`Broadcast` (``same``), then logits ``(3 m, -m)`` with ``m`` the mean."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(2.0)
        self.same = Broadcast()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.same(self.conv(x)).mean((1, 2, 3))
        return torch.stack([3 * m, -m], 1)


def _caught(fn: object) -> list[str]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        fn()  # type: ignore[operator]
    return [str(w.message) for w in got if issubclass(w.category, DegenerateMapWarning)]


def test_occlusion_of_a_mean_is_one_drop_everywhere_and_warns() -> None:
    x = torch.ones(1, 1, 32, 32)
    ex = sw.Explainer(MeanNet(), x)
    got: list[torch.Tensor] = []
    msgs = _caught(lambda: got.append(ex.saliency(0, "occlusion", window=16, stride=8, output="probability")))
    # every 16 x 16 patch zeroes 256 of 1024 pixels: m 1 -> 0.75, p(class 0) = sigmoid(2 m)
    drop = 1 / (1 + math.exp(-2.0)) - 1 / (1 + math.exp(-1.5))  # 0.0632228...
    occ = got[0]
    torch.testing.assert_close(occ, torch.full_like(occ, drop), rtol=1e-5, atol=0.0)
    assert msgs == ["occlusion: the map has one value everywhere (0.0632): nothing stands out"]


def test_gradcam_on_identical_positions_is_one_value_and_warns() -> None:
    x = (torch.arange(16.0) / 16).reshape(1, 1, 4, 4)  # mean 7.5 / 16
    ex = sw.Explainer(SameTokens(), x)
    got: list[torch.Tensor] = []
    msgs = _caught(lambda: got.append(ex.saliency(0, "gradcam", layer="same")))
    # d logit0 / d same[t] = 3 / 16 at every t: weight 3/16; every position holds 2 * 7.5 / 16 = 0.9375
    torch.testing.assert_close(got[0], torch.full((1, 1, 4, 4), 3 / 16 * 0.9375), rtol=1e-6, atol=0.0)
    assert msgs == ["gradcam: the map has one value everywhere (0.176): nothing stands out"]


def test_constant_all_zero_and_nan_maps_warn_once_each() -> None:
    const = torch.full((1, 1, 4, 4), -7.45e-9)
    assert _caught(lambda: check_degenerate(const, "m")) == ["m: the map has one value everywhere (-7.45e-09): nothing stands out"]
    assert _caught(lambda: check_degenerate(const, "m")) == []  # once per condition
    assert _caught(lambda: check_degenerate(torch.zeros(1, 1, 4, 4), "m")) == ["m: the map is all zeros"]
    assert _caught(lambda: check_degenerate(torch.tensor([[0.0, float("nan")]]), "m")) == ["m: the map contains NaN or Inf values"]
    assert _caught(lambda: check_degenerate(torch.tensor([[1.0, 2.0]]), "n")) == []
    assert _caught(lambda: check_degenerate(torch.tensor([3.0]), "n")) == []  # one value is not a flat map


def test_flat_map_renders_a_reason_per_sign() -> None:
    flat = np.full((4, 5), -7.45e-9)
    assert R.render_map(flat).message == "the map's magnitude is the same at every pixel; nothing to show"
    assert R.render_map(flat, sign="signed").message == "the map is the same at every pixel; nothing to show"
    assert R.render_map(flat, sign="negative").message == "the negative part is the same at every pixel; nothing to show"
    assert R.render_map(flat, sign="positive").message == "the positive part is all zeros; nothing to show"
    # +-c: one magnitude, two signs: flat under "absolute" only
    pm = np.array([[1.0, -1.0], [1.0, -1.0]])
    assert R.render_map(pm).message == "the map's magnitude is the same at every pixel; nothing to show"
    assert R.render_map(pm, sign="signed").rgb is not None
    assert R.render_map(np.array([[2.0, 1.0]])).rgb is not None
