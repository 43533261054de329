"""Analysis figures (viz.figures) on tiny literal inputs: sizes, tiles and colours at known pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saliency_widget.analysis import SanityResult, TopActivations
from saliency_widget.errors import InputError
from saliency_widget.viz import figures as F
from saliency_widget.viz import render as R

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)
GREY = (235, 235, 235)  # message-panel background


def _solid(color: tuple[int, int, int], h: int = 1, w: int = 1) -> np.ndarray:
    return np.broadcast_to(np.array(color, np.uint8), (h, w, 3)).copy()


def test_tile_places_each_image_in_its_cell() -> None:
    out = R.tile([_solid(RED), _solid(BLUE, 3, 5)], cols=2, cell=2, gap=1)
    # 1 row: 1 + (2 + 1) high; 2 columns: 1 + 2 * (2 + 1) wide
    assert out.shape == (4, 7, 3)
    expected = np.full((4, 7, 3), 255, np.uint8)
    expected[1:3, 1:3] = RED
    expected[1:3, 4:6] = BLUE  # resized to the cell whatever its size
    np.testing.assert_array_equal(out, expected)


def test_tile_leaves_missing_cells_white() -> None:
    out = R.tile([_solid(RED)] * 3, cols=2, cell=1, gap=1)
    assert out.shape == (5, 5, 3)
    assert tuple(out[3, 3]) == WHITE and tuple(out[3, 1]) == RED and tuple(out[1, 3]) == RED


def _top(projections: torch.Tensor) -> TopActivations:
    k = projections.shape[1]
    return TopActivations(
        layer="conv", call=0, channels=[5],
        values=torch.arange(k, 0, -1, dtype=torch.float32)[None],
        image_index=torch.zeros(1, k, dtype=torch.long),
        positions=torch.zeros(1, k, 2, dtype=torch.long),
        boxes=torch.tensor([[[0, 0, 4, 4]] * k]),
        images={0: torch.zeros(1, 4, 4)},
        projections=projections,
    )


def test_topk_grid_png_layout_and_colours() -> None:
    ones = torch.ones(1, 4, 4)
    ones[0, 3, 3] = 0.0  # one value everywhere would be a flat map (a message panel): keep one corner apart
    # projections: positive, negative, positive, all zero (-> message panel)
    projs = torch.stack([ones, -ones, 3 * ones, 0 * ones])[None]
    rgb = R.from_png(F.topk_grid_png(_top(projs), 5, mean=[0.5], std=[0.25], cell=8))
    # each grid: 2 x 2 cells of 8 px with 2 px gaps = 22 px; compose adds a 14 px title and 6 px gaps
    assert rgb.shape == (22 + 14 + 2 * 6, 6 + 22 + 6 + 22 + 6, 3)
    cw = R.colormap_lut("coolwarm")
    y0, left, right = 6 + 14, 6, 6 + 22 + 6  # top-left corners of the two grids
    assert tuple(rgb[y0 + 2, left + 2]) == tuple(cw[255])  # +1 -> top of the diverging map
    assert tuple(rgb[y0 + 2, left + 12]) == tuple(cw[0])  # -1 -> bottom
    assert tuple(rgb[y0 + 12, left + 12]) == GREY  # the zero projection shows a message panel
    # image patches: 0 * 0.25 + 0.5 = 0.5 -> 128 grey, with the normalisation undone
    assert tuple(rgb[y0 + 2, right + 2]) == (128, 128, 128)


def test_topk_grid_png_unknown_channel() -> None:
    with pytest.raises(InputError, match="channel 7 was not scanned"):
        F.topk_grid_png(_top(torch.ones(1, 1, 1, 4, 4)), 7)


def _sanity(method: str, maps: torch.Tensor, spearman_abs: tuple[float, float, float] = (1.0, 0.5, 0.2)) -> SanityResult:
    return SanityResult(method, "cascading", ["original", "fc", "features.conv1"], list(spearman_abs), [1.0, 0.1, 0.0], [1.0, 0.6, 0.3], maps)


def test_sanity_plot_png_size_and_one_colour_per_method() -> None:
    maps = torch.zeros(3, 1, 4, 4)
    results = [_sanity("gradient", maps, (1.0, 0.5, 0.2)), _sanity("guided_backprop", maps, (1.0, 0.9, 0.8))]
    rgb = R.from_png(F.sanity_plot_png(results, size=(200, 150)))
    assert rgb.shape == (150, 200, 3)
    for color in F._COLORS[:2]:
        assert np.all(rgb == np.array(color, np.uint8), axis=-1).sum() > 20
    assert not np.all(rgb == np.array(F._COLORS[2], np.uint8), axis=-1).any()


@pytest.mark.parametrize(
    ("results", "metric", "message"),
    [
        ([], "spearman_abs", "at least one SanityResult"),
        ([_sanity("gradient", torch.zeros(3, 1, 4, 4))], "pearson", r"unknown sanity metric 'pearson'.*'spearman_abs', 'spearman_signed', 'ssim'"),
    ],
)
def test_sanity_plot_png_errors(results: list[SanityResult], metric: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        F.sanity_plot_png(results, metric)


def test_sanity_gallery_png_panels() -> None:
    maps = torch.zeros(3, 2, 4, 4)
    maps[0, 1] = 1.0  # image 1, step "original": 1 (but one corner) -> top of magma
    maps[1, 1] = -2.0  # absolute value shown
    maps[:2, 1, 3, 3] = 0.0  # one value everywhere would be a flat map (a message panel): keep one corner apart
    rgb = R.from_png(F.sanity_gallery_png(_sanity("gradient", maps), image=1, height=16))
    assert rgb.shape == (16 + 14 + 2 * 6, 6 + 3 * (16 + 6), 3)
    magma_top = tuple(R.colormap_lut("magma")[255])
    y = 6 + 14 + 8
    assert tuple(rgb[y, 6 + 8]) == magma_top
    assert tuple(rgb[y, 6 + 22 + 8]) == magma_top
    assert tuple(rgb[6 + 14, 6 + 44]) == GREY  # the all-zero step: message panel


def test_sanity_gallery_png_image_out_of_range() -> None:
    with pytest.raises(InputError, match=r"image 2 is out of range.*0\.\.1"):
        F.sanity_gallery_png(_sanity("gradient", torch.zeros(3, 2, 4, 4)), image=2)


def test_widget_analyses_reexports_the_figures() -> None:
    pytest.importorskip("ipywidgets")
    from saliency_widget.widget import analyses

    assert (analyses.topk_grid_png, analyses.sanity_plot_png, analyses.sanity_gallery_png) == (
        F.topk_grid_png, F.sanity_plot_png, F.sanity_gallery_png,
    )
