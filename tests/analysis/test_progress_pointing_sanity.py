"""The one progress protocol (engine.progress) in the pointing game, the sanity check and top-9's projections."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from saliency_widget.analysis import pointing_game, sanity_check, top_activations
from saliency_widget.analysis.topk import project_top
from saliency_widget.data import ShapesDataset
from saliency_widget.engine.progress import nested, report, reporting
from saliency_widget.errors import Cancelled
from saliency_widget.models import shapes_cnn
from tests.helpers import assert_unchanged, seeded_rand, snapshot
from tests.nets import small_cnn


def test_pointing_game_reports_maps_done_of_maps_in_all() -> None:
    seen: list[tuple[int, int]] = []
    with reporting(lambda d, t: seen.append((d, t))):
        pointing_game(shapes_cnn(), DataLoader(ShapesDataset(8, seed=1), batch_size=4), methods=["gradient", "gradcam"])
    assert seen == [(4, 16), (8, 16), (12, 16), (16, 16)]


def test_pointing_game_stops_with_cancelled_and_leaves_the_model() -> None:
    model = shapes_cnn()
    before = snapshot(model)
    with pytest.raises(Cancelled), reporting(lambda d, t: d < 8):
        pointing_game(model, DataLoader(ShapesDataset(8, seed=1), batch_size=4), methods=["gradient", "guided_backprop"])
    assert_unchanged(model, before)


def test_a_methods_own_batches_re_report_the_pointing_games_count() -> None:
    seen: list[tuple[int, int]] = []
    with reporting(lambda d, t: seen.append((d, t))):
        pointing_game(shapes_cnn(), DataLoader(ShapesDataset(4, seed=1), batch_size=4), methods=["occlusion"])
    assert len(seen) > 2 and seen[-1] == (4, 4)
    assert set(seen[:-1]) == {(0, 4)}  # occlusion's own batches: the game's count, never their own


def test_sanity_check_reports_layers_randomised() -> None:
    model = small_cnn()
    seen: list[tuple[int, int]] = []
    with reporting(lambda d, t: seen.append((d, t))):
        res = sanity_check(model, seeded_rand(2, 3, 24, 24, seed=2), method="gradient")
    layers = len(res.steps) - 1
    assert seen == [(i, layers) for i in range(layers + 1)]


def test_nested_relays_the_outer_count_and_none_without_a_callback() -> None:
    assert nested(1, 2) is None
    seen: list[tuple[int, int]] = []
    with reporting(lambda d, t: seen.append((d, t))):
        with reporting(nested(3, 10)):
            report(1, 50)
            report(2, 50)
        report(4, 10)
    assert seen == [(3, 10), (3, 10), (4, 10)]
    with pytest.raises(Cancelled), reporting(lambda d, t: False), reporting(nested(3, 10)):
        report(1, 50)


def test_projections_report_pairs_and_top_activations_reports_the_scan_count() -> None:
    model, data = small_cnn(), [seeded_rand(5, 3, 24, 24, seed=4)]
    scan = top_activations(model, data, "features.1", channels=[0, 1, 2], k=2, progress=False, project=False)
    seen: list[tuple[int, int]] = []
    with reporting(lambda d, t: seen.append((d, t))):
        res = project_top(model, scan, project_batch=4)
    assert seen == [(0, 6), (4, 6), (6, 6)] and res.projections is not None and res.projections.shape[:2] == (3, 2)
    full = top_activations(model, data, "features.1", channels=[0, 1, 2], k=2, progress=False, project_batch=4)
    torch.testing.assert_close(full.projections, res.projections)
    seen.clear()
    with reporting(lambda d, t: seen.append((d, t))):
        top_activations(model, data, "features.1", channels=[0, 1, 2], k=2, progress=False, project_batch=4)
    assert seen == [(5, 0)] * 4  # the scan's batch, then the projections' start and chunks as the finished scan
