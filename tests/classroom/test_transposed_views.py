"""The transposed-convolution views: C with asymmetric padding, the crop window, kernel placements, heatmaps."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from saliency_widget import InputError
from saliency_widget.classroom import conv_matrix, conv_transpose2d_tf
from saliency_widget.classroom.explorers import TransposedConvExplorer, placement_popup
from saliency_widget.classroom.grids import heat_color, heatmap_html, matrix_html
from saliency_widget.classroom.transposed import crop_window, placements, transposed_padding


def test_conv_matrix_1d_asymmetric_padding_literal() -> None:
    # TF "same" over 4 pixels, kernel 3, stride 2: pad 0 before, 1 after; out[1] sees x[2], x[3] and the pad
    C = conv_matrix((1, 4), torch.tensor([[1.0, 2.0, 3.0]]), stride=2, padding=((0, 0), (0, 1)))
    assert_close(C, torch.tensor([[1.0, 2.0, 3.0, 0.0], [0.0, 0.0, 1.0, 2.0]]))


def test_conv_matrix_2d_tf_same_literal() -> None:
    # the default explorer case: 4x4 image, 3x3 ones, stride 2, TF "same" pads ((0, 1), (0, 1))
    C = conv_matrix((4, 4), torch.ones(3, 3, dtype=torch.float64), stride=2, padding=((0, 1), (0, 1)))
    rows = [
        [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]],  # output (0, 0): rows 0-2, cols 0-2
        [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0]],  # (0, 1): cols 2-3 and the pad
        [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 0]],  # (1, 0): rows 2-3 and the pad
        [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]],  # (1, 1)
    ]
    assert_close(C, torch.tensor(rows, dtype=torch.float64).view(4, 16))


@pytest.mark.parametrize(("hw", "k", "s", "pads"), [((4, 4), 3, 2, ((0, 1), (0, 1))), ((5, 3), 2, 2, ((1, 0), (0, 1))), ((6, 5), 3, 1, ((2, 0), (1, 1)))])
def test_conv_matrix_rows_are_the_autograd_gradients(hw: tuple[int, int], k: int, s: int, pads: tuple[tuple[int, int], tuple[int, int]]) -> None:
    g = torch.Generator().manual_seed(3)
    w = torch.randn(k, k, generator=g, dtype=torch.float64)
    x = torch.randn(1, 1, *hw, generator=g, dtype=torch.float64, requires_grad=True)
    y = F.conv2d(F.pad(x, (pads[1][0], pads[1][1], pads[0][0], pads[0][1])), w[None, None], stride=s).flatten()
    jac = torch.stack([torch.autograd.grad(y[i], x, retain_graph=True)[0].flatten() for i in range(y.numel())])
    assert_close(conv_matrix(hw, w, stride=s, padding=pads), jac)


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize(("n", "k", "s"), [(2, 3, 2), (3, 4, 2), (2, 1, 2), (3, 5, 3), (3, 2, 1)])
def test_ct_times_x_is_the_tf_transposed_conv(padding: str, n: int, k: int, s: int) -> None:
    x = torch.arange(1.0, n * n + 1, dtype=torch.float64).view(n, n)
    w = torch.arange(1.0, k * k + 1, dtype=torch.float64).view(k, k)
    out = conv_transpose2d_tf(x, w, stride=s, padding=padding)  # type: ignore[arg-type]
    C = conv_matrix(tuple(out.shape), w, stride=s, padding=transposed_padding((n, n), (k, k), s, padding))  # type: ignore[arg-type]
    assert_close((C.T @ x.flatten()).view(out.shape), out)


@pytest.mark.parametrize(
    ("hw", "k", "s", "padding", "op", "want"),
    [
        ((2, 2), 3, 2, "same", 0, ((5, 5), (0, 0, 4, 4))),
        ((2, 2), 3, 2, "valid", 0, ((5, 5), (0, 0, 5, 5))),
        ((2, 2), 3, 2, 1, 1, ((5, 5), (1, 1, 4, 4))),
        ((3, 3), 4, 2, "same", 0, ((8, 8), (1, 1, 6, 6))),
        ((2, 2), 1, 2, "same", 0, ((3, 3), (0, 0, 4, 4))),  # kernel < stride: the window reaches past the full output
    ],
)
def test_crop_window_literals(hw: tuple[int, int], k: int, s: int, padding: object, op: int, want: object) -> None:
    assert crop_window(hw, (k, k), s, padding, op) == want  # type: ignore[arg-type]


def test_placements_literal_for_the_centre_of_the_tf_example() -> None:
    # out[2, 2] = 10 = 1 + 2 + 3 + 4: every input pixel's kernel reaches it
    assert placements((2, 2), (3, 3), 2, (0, 0), (2, 2)) == [(0, 0, 2, 2), (0, 1, 2, 0), (1, 0, 0, 2), (1, 1, 0, 0)]
    assert placements((2, 2), (3, 3), 2, (0, 0), (0, 0)) == [(0, 0, 0, 0)]


@pytest.mark.parametrize(("n", "k", "s", "pad", "op"), [(3, 3, 2, 0, 0), (3, 3, 2, 1, 1), (2, 4, 3, 2, 2), (3, 2, 1, 1, 0), (2, 5, 2, "same", 0), (3, 4, 2, "same", 0)])
def test_placements_sum_to_every_output_element(n: int, k: int, s: int, pad: object, op: int) -> None:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(n, n, generator=g, dtype=torch.float64)
    w = torch.randn(k, k, generator=g, dtype=torch.float64)
    if pad == "same":
        out = conv_transpose2d_tf(x, w, stride=s, padding="same")
    else:
        out = F.conv_transpose2d(x[None, None], w[None, None], stride=s, padding=pad, output_padding=op)[0, 0]  # type: ignore[arg-type]
    _full, (top, left, H, W) = crop_window((n, n), (k, k), s, pad, op)  # type: ignore[arg-type]
    assert (H, W) == tuple(out.shape)
    sums = torch.tensor([[sum(float(x[i, j] * w[a, b]) for i, j, a, b in placements((n, n), (k, k), s, (top, left), (r, c))) for c in range(W)] for r in range(H)], dtype=torch.float64)
    assert_close(sums, out)


@pytest.mark.parametrize(("v", "vmax", "want"), [(0.0, 1.0, "#ffffff"), (1.0, 1.0, "#d73027"), (-1.0, 1.0, "#4575b4"), (5.0, 0.0, "#ffffff"), (0.5, 1.0, "#eb9893"), (2.0, 1.0, "#d73027")])
def test_heat_color_literals(v: float, vmax: float, want: str) -> None:
    # half way to red: (255 + (215 - 255) / 2, 255 + (48 - 255) / 2, 255 + (39 - 255) / 2) = (235, 151.5 -> 152, 147)
    assert heat_color(v, vmax) == want


def test_heatmap_html_colours_each_cell() -> None:
    h = heatmap_html(torch.tensor([[1.0, -1.0], [0.0, 0.5]]))
    assert re.findall(r"background:(#[0-9a-f]{6})", h) == ["#d73027", "#4575b4", "#ffffff", "#eb9893"]
    assert "grid-template-columns:repeat(2," in h and "blue −1 · white 0 · red +1" in h


def test_matrix_html_escapes_and_outlines_the_crop() -> None:
    h = matrix_html(torch.zeros(3, 3), title="<b>", outline=(0, 0, 2, 2))
    assert "&lt;b&gt;" in h and "<b>" not in h
    assert h.count("color:#999") == 5  # the five cells outside the kept 2x2 window are greyed
    assert h.count("border-top:2px solid #1a7f37") == 2


def test_explorer_default_tf_same_shows_the_asymmetric_matrix() -> None:
    e = TransposedConvExplorer()
    assert "more than 64" not in e.out.value and "C: 4×16" in e.out.value
    assert "top 0, bottom 1, left 0, right 1 (asymmetric" in e.out.value
    assert_close(e.matrix, conv_matrix((4, 4), torch.ones(3, 3, dtype=torch.float64), 2, ((0, 1), (0, 1))))
    assert e.checks["matrix_max_abs_diff"] < 1e-12
    assert e.crop == (0, 0, 4, 4)


@pytest.mark.parametrize(("padding", "k", "crop"), [("same", 4, (1, 1, 4, 4)), ("valid", 3, (0, 0, 5, 5)), (1, 3, (1, 1, 3, 3))])
def test_explorer_shows_the_crop_and_a_matrix_for_every_padding(padding: object, k: int, crop: tuple[int, int, int, int]) -> None:
    e = TransposedConvExplorer()
    e.kernel.value = k
    e.padding.value = padding
    assert e.error.value == "" and e.crop == crop
    assert "green box kept" in e.out.value and f"keeps rows {crop[0]}…{crop[0] + crop[2] - 1}" in e.out.value
    assert e.matrix.shape == (4, crop[2] * crop[3]) and e.checks["matrix_max_abs_diff"] < 1e-12


def test_explorer_output_cells_carry_their_placements_and_heatmaps() -> None:
    e = TransposedConvExplorer()
    v = e.out.value
    assert v.count("class='swc-pop'") == 16  # one hover pop-up per element of the 4x4 output
    assert "out[2,2] = x[0,0]·w[2,2] + x[0,1]·w[2,0] + x[1,0]·w[0,2] + x[1,1]·w[0,0]" in v and "  = 10" in v
    assert v.count("class='swc-heat'") >= 8  # a heatmap beside every numeric grid
    assert ".swc-cell:hover .swc-pop{display:block}" in v


def test_placement_popup_marks_the_element_and_footprints() -> None:
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    pop = placement_popup(x, torch.ones(3, 3, dtype=torch.float64), 2, (0, 0), (5, 5), (0, 0))
    assert "out[0,0] = x[0,0]·w[0,0]" in pop and "x[0,0]=1 · w[0,0]=1" in pop and "= 1" in pop
    assert pop.count("outline:2px solid #000") == 1  # the hovered element, in the 5x5 full output
    assert pop.count("background:#d73027") == 9  # the one placement's 3x3 footprint


def test_conv_matrix_rejects_bad_padding() -> None:
    with pytest.raises(InputError, match=r"\(\(top, bottom\), \(left, right\)\)"):
        conv_matrix((3, 3), torch.ones(2, 2), padding=(1, 2, 3))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="must not be negative"):
        conv_matrix((3, 3), torch.ones(2, 2), padding=((0, -1), (0, 0)))


def test_heatmap_of_zeros_says_so() -> None:
    h = heatmap_html(torch.zeros(1, 3))
    assert "all 0" in h and "−0" not in h
