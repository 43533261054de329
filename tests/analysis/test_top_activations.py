"""Analyses: top-k per filter vs brute force, sanity checks (Adebayo on the bundled model), pointing game."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close
from torch.utils.data import DataLoader

import saliency_widget as sw
from saliency_widget.analysis import pointing_game, sanity_check, spearman, ssim, top_activations
from saliency_widget.analysis.pointing import centre_hits, dilate, hits
from saliency_widget.data import ShapesDataset
from saliency_widget.models import shapes_cnn
from conftest import assert_unchanged, snapshot


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return shapes_cnn()


@pytest.fixture(scope="module")
def small_set() -> ShapesDataset:
    return ShapesDataset(24, seed=321)


# ---------------------------------------------------------------- top-k
@pytest.mark.parametrize(("layer", "channels", "k"), [("features.conv3", [0, 5, 7], 4), ("features.conv2", [1, 30], 9)])
def test_top_activations_equal_brute_force(model: torch.nn.Module, small_set: ShapesDataset, layer: str, channels: list[int], k: int) -> None:
    loader = DataLoader(small_set, batch_size=5, shuffle=False)
    before = snapshot(model)
    res = top_activations(model, loader, layer, channels=channels, k=k, progress=False)
    assert_unchanged(model, before)
    images = torch.stack([small_set[i][0] for i in range(len(small_set))])
    acts = sw.Explainer(model, images).activation(layer)  # (N, C, h, w): every activation
    for row, c in enumerate(channels):
        a = acts[:, c]
        n, h, w = a.shape
        per_image_max, per_image_pos = a.reshape(n, -1).max(1)
        order = per_image_max.argsort(descending=True)[:k]
        assert res.image_index[row].tolist() == order.tolist()
        assert_close(res.values[row], per_image_max[order])
        pos = per_image_pos[order]
        assert res.positions[row].tolist() == torch.stack([pos // w, pos % w], 1).tolist()
        # projections equal project() on the winning image
        for j in range(k):
            img = images[int(order[j])][None]
            want = sw.project(model, img, layer, c, position=tuple(res.positions[row, j].tolist()))
            assert_close(res.projections[row, j], want[0])
    # memory: only winning images are kept
    assert set(res.images) == set(res.image_index.flatten().tolist())
    assert len(res.images) <= k * len(channels)
    assert res.images_seen == len(small_set)


def test_top_activation_patches_follow_receptive_field(model: torch.nn.Module, small_set: ShapesDataset) -> None:
    res = top_activations(model, [torch.stack([small_set[i][0] for i in range(8)])], "features.relu3", channels=[2], k=3, progress=False)
    ex = sw.Explainer(model, res.images[int(res.image_index[0, 0])][None])
    y, x = res.positions[0, 0].tolist()
    assert tuple(res.boxes[0, 0].tolist()) == ex.receptive_field("features.relu3", y, x)
    img_patch, proj_patch = res.patches(2)[0]
    y0, x0, y1, x1 = res.boxes[0, 0].tolist()
    assert img_patch.shape == (3, y1 - y0, x1 - x0) == proj_patch.shape


def test_top_activations_scan_only_matches_full(model: torch.nn.Module, small_set: ShapesDataset) -> None:
    # project=False (what the benchmark times as "the scan") finds the same winners, no projections
    loader = DataLoader(small_set, batch_size=6, shuffle=False)
    full = top_activations(model, loader, "features.relu4", channels=[3, 9], k=5, progress=False)
    scan = top_activations(model, loader, "features.relu4", channels=[3, 9], k=5, progress=False, project=False)
    assert scan.projections is None
    assert torch.equal(scan.image_index, full.image_index) and torch.equal(scan.positions, full.positions)
    assert_close(scan.values, full.values, rtol=0, atol=0)
    assert torch.equal(scan.boxes, full.boxes)
    with pytest.raises(sw.InputError, match="project=False"):
        scan.patches(3)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_top_activations_bad_project_batch(model: torch.nn.Module, bad: object) -> None:
    with pytest.raises(sw.InputError, match=f"project_batch must be a positive int, got {bad!r}"):
        top_activations(model, [torch.zeros(2, 3, 128, 128)], "features.conv3", progress=False, project_batch=bad)  # type: ignore[arg-type]


def test_top_activations_bad_input(model: torch.nn.Module) -> None:
    with pytest.raises(sw.InputError, match="image batches"):
        top_activations(model, [torch.zeros(3, 128, 128)], "features.conv3", progress=False)
    with pytest.raises(sw.InputError, match=r"channel\(s\) \[99\]"):
        top_activations(model, [torch.zeros(2, 3, 128, 128)], "features.conv3", channels=[99], progress=False)
    with pytest.raises(sw.LayerError, match="unknown layer"):
        top_activations(model, [torch.zeros(2, 3, 128, 128)], "features.conv9", progress=False)


# ---------------------------------------------------------------- sanity checks
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


# ---------------------------------------------------------------- pointing game
def test_pointing_hits_synthetic() -> None:
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[:, 2:4, 2:4] = True
    maps = torch.zeros(2, 8, 8)
    maps[0, 3, 3] = 1.0  # inside
    maps[1, 6, 6] = 1.0  # far outside
    assert hits(maps, masks, 0).tolist() == [True, False]
    maps[1, 6, 6] = 0.0
    maps[1, 4, 3] = 1.0  # one pixel below the mask: hit only with tolerance >= 1
    assert hits(maps, masks, 0).tolist() == [True, False]
    assert hits(maps, masks, 1).tolist() == [True, True]
    maps[1, 4, 3], maps[1, 4, 4] = 0.0, 1.0  # diagonal neighbour: distance sqrt(2)
    assert hits(maps, masks, 1).tolist() == [True, False]
    assert hits(maps, masks, 1.5).tolist() == [True, True]
    assert hits(maps, masks, 1, "chebyshev").tolist() == [True, True]  # a square reaches the diagonal


def test_dilate_disc() -> None:
    m = torch.zeros(1, 5, 5, dtype=torch.bool)
    m[0, 2, 2] = True
    assert dilate(m, 1)[0].int().tolist() == [[0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]


def test_centre_baseline_exact() -> None:
    masks = torch.zeros(3, 6, 6, dtype=torch.bool)
    masks[0, 3, 3] = True  # on the centre pixel (6 // 2 = 3)
    masks[1, 0, 0] = True  # far
    masks[2, 3, 4] = True  # one pixel right of the centre
    assert centre_hits(masks, 0).tolist() == [True, False, False]
    assert centre_hits(masks, 1).tolist() == [True, False, True]


def test_pointing_game_on_bundled_data(model: torch.nn.Module) -> None:
    """Measured on these 64 scenes at 1 px: guided backprop and deconvnet 1.00, gradient 0.78,
    centre baseline 0.42."""
    ds = ShapesDataset(64, seed=999)
    res = pointing_game(model, DataLoader(ds, batch_size=32), methods=["gradient", "guided_backprop", "deconvnet"], tolerance=1, distance="chebyshev")
    assert res.n_images == 64
    assert set(res.accuracy) == {"gradient", "guided_backprop", "deconvnet", "centre baseline"}
    assert res.accuracy["guided_backprop"] >= 0.9 and res.accuracy["deconvnet"] >= 0.9
    assert res.accuracy["gradient"] >= 0.65
    assert res.accuracy["guided_backprop"] > res.accuracy["centre baseline"] + 0.3
    assert "| guided_backprop |" in res.table()
