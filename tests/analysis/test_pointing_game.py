"""Pointing game: hits on synthetic maps (Euclidean and Chebyshev tolerance), dilation, centre baseline, the bundled model's scores."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from saliency_widget.analysis import pointing_game
from saliency_widget.analysis.pointing import centre_hits, dilate, hits
from saliency_widget.data import ShapesDataset


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
