"""Top-k activations per filter (top_activations) vs brute force: winners, projections, receptive-field patches, errors."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close
from torch.utils.data import DataLoader

import saliency_widget as sw
from saliency_widget.analysis import top_activations
from saliency_widget.data import ShapesDataset
from tests.helpers import assert_unchanged, snapshot


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
