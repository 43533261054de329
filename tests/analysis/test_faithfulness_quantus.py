"""Deletion curves equal Quantus ``PixelFlipping`` configured to do the same work.

Matching conventions (see :func:`saliency_widget.analysis.deletion_insertion`, Notes): one
input channel (Quantus ranks every channel value separately), non-negative maps without ties
(NumPy's argsort is not stable), ``abs=False, normalise=False``, ``features_in_step = H * W /
steps``, softmax probabilities; Quantus's curve lacks our first point (the unperturbed image).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.testing import assert_close

from saliency_widget.analysis import deletion_insertion
from tests.helpers import seeded_rand, seeded_randn

quantus = pytest.importorskip("quantus")


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 8 * 8, 5),
    ).eval()


def quantus_curves(model: nn.Module, x: torch.Tensor, a: torch.Tensor, y: torch.Tensor, step: int, base: float) -> torch.Tensor:
    metric = quantus.PixelFlipping(
        features_in_step=step,
        perturb_baseline=base,
        abs=False,
        normalise=False,
        return_auc_per_sample=False,
        disable_warnings=True,
        display_progressbar=False,
    )
    curves = metric(
        model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu", softmax=True
    )
    return torch.tensor(np.asarray(curves), dtype=torch.float32)


@pytest.mark.parametrize(("steps", "base"), [(16, 0.0), (64, 0.0), (8, 0.5)])
def test_deletion_matches_quantus_pixel_flipping(steps: int, base: float) -> None:
    model = small_cnn()
    x = seeded_randn(3, 1, 8, 8, seed=1)
    a = seeded_rand(3, 1, 8, 8, seed=2)  # non-negative, continuous: no ties
    y = torch.tensor([0, 3, 4])
    baseline: str | torch.Tensor = "zeros" if base == 0.0 else torch.full((1, 8, 8), base)
    ours = deletion_insertion(model, x, maps={"a": a}, target=y, steps=steps, baseline=baseline)
    theirs = quantus_curves(model, x, a, y, 64 // steps, base)
    assert theirs.shape == (3, steps)
    assert_close(ours.curve("deletion", "a")[:, 1:], theirs, atol=1e-6, rtol=1e-5)
