"""Sanity checks (sanity_check, Adebayo et al.): Spearman/SSIM against references, the model untouched, the finding on the bundled model."""

from __future__ import annotations

import pytest
import torch

import saliency_widget as sw
from saliency_widget.analysis import sanity_check, spearman, ssim
from saliency_widget.data import ShapesDataset
from tests.helpers import assert_unchanged, snapshot


def test_spearman_and_ssim_references() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20, 20, generator=g)
    b = a + 0.5 * torch.randn(20, 20, generator=g)
    b[b < 0] = 0  # ties, as guided-backprop maps have
    assert spearman(a, b) == pytest.approx(scipy_stats.spearmanr(a.flatten(), b.flatten()).statistic, abs=1e-9)
    assert spearman(a, a) == pytest.approx(1.0) and ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, -a) < 0.2


def test_sanity_check_untouched_and_identity(model: torch.nn.Module, small_set: ShapesDataset) -> None:
    x = torch.stack([small_set[i][0] for i in range(3)])
    before = snapshot(model)
    r = sanity_check(model, x, method="gradient", layers=[])
    assert r.steps == ["original"] and r.spearman_abs == [1.0] and r.ssim == [1.0]
    r2 = sanity_check(model, x, method="guided_backprop", layers=["classifier.fc2"], mode="independent")
    assert r2.steps == ["original", "classifier.fc2"] and r2.maps.shape == (2, 3, 128, 128)
    assert_unchanged(model, before)


@pytest.fixture(scope="module")
def sanity_results(model: torch.nn.Module) -> dict[str, sw.analysis.SanityResult]:  # type: ignore[name-defined]
    ds = ShapesDataset(8, seed=123)
    x = torch.stack([ds[i][0] for i in range(8)])
    return {m: sanity_check(model, x, method=m) for m in ("gradient", "guided_backprop")}


def test_adebayo_finding_on_bundled_model(sanity_results: dict) -> None:  # type: ignore[type-arg]
    """Measured (8 images, seed 123): after randomising only the top layer (fc2), gradient's signed
    Spearman is -0.19 and SSIM 0.49, guided backprop's 0.82 and 0.95; guided stays at 0.69 signed
    with conv5 randomised too, and only drops near the input layers (0.22 at conv1)."""
    g, gb = sanity_results["gradient"], sanity_results["guided_backprop"]
    assert g.steps[:4] == ["original", "classifier.fc2", "classifier.fc1", "features.conv5"]
    top = 1  # only the logit layer randomised
    assert g.spearman_signed[top] < 0.3
    assert gb.spearman_signed[top] > 0.65
    assert gb.ssim[top] > 0.8 and g.ssim[top] < 0.75
    assert gb.spearman_abs[top] > g.spearman_abs[top] + 0.1
    conv5 = g.steps.index("features.conv5")
    assert gb.spearman_signed[conv5] > 0.55  # still high with all top layers random
    assert gb.spearman_signed[-1] < gb.spearman_signed[conv5] - 0.2  # drops at the lowest layers
