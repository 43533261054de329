"""Odd but valid engine inputs (train-mode BatchNorm/Dropout, an MLP, no ReLU, float64, channels-last,
non-contiguous, requires_grad and non-leaf inputs) give the same map as a plain eval-mode call, and
leave the model and the user's tensor untouched."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn

import saliency_widget as sw
from tests.helpers import assert_unchanged, seeded_randn, snapshot
from tests.nets import MLP, NoReLU, TrainModeBNDropout, seeded, small_cnn

X = seeded_randn(2, 3, 8, 8, seed=1)


def _train_mode_model() -> nn.Module:
    return seeded(TrainModeBNDropout).train()


ENGINE_OK: list[tuple[str, Callable[[], nn.Module], torch.Tensor, str]] = [
    ("train-mode-bn-dropout-gradient", _train_mode_model, X, "gradient"),
    ("train-mode-bn-dropout-guided", _train_mode_model, X, "guided_backprop"),
    ("mlp-gradient", lambda: MLP().eval(), X, "gradient"),
    ("mlp-guided-backprop", lambda: MLP().eval(), X, "guided_backprop"),
    ("no-relu-gradient", lambda: NoReLU(functional=True).eval(), X, "gradient"),
    ("float64-input", small_cnn, X.double(), "gradient"),
    ("channels-last-input", small_cnn, X.to(memory_format=torch.channels_last), "deconvnet"),
    ("non-contiguous-input", small_cnn, X.transpose(2, 3), "gradient"),
    ("requires-grad-input", small_cnn, X.clone().requires_grad_(True), "guided_backprop"),
    ("non-leaf-input", small_cnn, X.clone().requires_grad_(True) * 1.0, "gradient"),
    # the first convolution reads 3 x 2 x 2 channels: the image folded 2 x 2 before it (TResNet's stem)
    ("space-to-depth-stem", lambda: seeded(SpaceToDepthStem), X, "guided_backprop"),
]


class SpaceToDepthStem(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(12, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 3, 5, 1, 2, 4).reshape(n, c * 4, h // 2, w // 2)
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


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
