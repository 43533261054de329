"""class_correlation: how much each method's map depends on the class (notebook 02's claim, measured)."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

import saliency_widget as sw
from saliency_widget.classroom.specificity import class_correlation
from saliency_widget.errors import InputError
from tests.nets import small_cnn

METHODS = ["gradient", "deconvnet", "guided_backprop"]


def test_class_correlation_is_pearson_of_the_absolute_maps() -> None:
    net = small_cnn()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    ex = sw.Explainer(net, x)
    got = class_correlation(ex, (0, 1), ["gradient"], sample=1)
    a = ex.saliency(0, "gradient")[1].abs().sum(0).flatten().double()
    b = ex.saliency(1, "gradient")[1].abs().sum(0).flatten().double()
    a, b = a - a.mean(), b - b.mean()
    assert_close(torch.tensor(got["gradient"], dtype=torch.float64), (a @ b) / (a.norm() * b.norm()))


def test_class_correlation_rejects_one_class() -> None:
    ex = sw.Explainer(small_cnn(), torch.zeros(1, 3, 16, 16))
    with pytest.raises(InputError, match="two different class indices"):
        class_correlation(ex, (1, 1), METHODS)


def test_bundled_model_deconvnet_draws_the_same_star_for_either_class() -> None:
    """What notebook 02 says about the bundled model on `shapes_star`, so the prose cannot drift from the numbers."""
    from saliency_widget.data import load_sample
    from saliency_widget.models import shapes_cnn

    model = shapes_cnn()
    x = model.saliency_weights.transforms()(load_sample("shapes_star")).unsqueeze(0)
    ex = sw.Explainer(model, x)
    top2 = ex.probabilities[0].argsort(descending=True)[:2].tolist()
    r = class_correlation(ex, (top2[0], top2[1]), METHODS)
    assert r["deconvnet"] > 0.9 and r["guided_backprop"] > 0.9
    assert r["gradient"] < 0.8
