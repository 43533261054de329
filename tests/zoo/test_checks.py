"""The sweep's own checks on literal cases: the twin check's grid test (tests/zoo/checks.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.zoo.checks import borders, grid_strides, third_size


@pytest.mark.parametrize(
    ("cells", "sizes", "stride", "expected"),
    [
        ([13, 37], [32, 80], 2, (-6, -5)),  # SqueezeNet conv1 (7 x 7, stride 2, no padding): floor((x - 5) / 2)
        ([16, 40], [32, 80], 2, (0, 1)),  # padded: proportional
        ([1, 3], [32, 80], 32, (16, 31)),  # a stride-32 grid: 3 cells at 80 px need "same" padding (ceil: K = 31)
        ([64, 64], [32, 80], 2, None),  # a window's 64 pixels: the same at both sizes, no grid
        ([2, 2], [48, 112], 65, None),  # the same 2 cells at both sizes would need more than "same" padding
        ([4, 9], [64, 96], 7, (-33, -30)),  # T = 2 x 2 then 3 x 3 tokens fit two sizes with a 30 px border...
        ([4, 9, 16], [64, 96, 128], 7, None),  # ... not three (T grows quadratically)
    ],
)
def test_borders_literal(cells: list[int], sizes: list[int], stride: int, expected: tuple[int, int] | None) -> None:
    assert borders(cells, sizes, stride) == expected


def test_grid_strides_literal() -> None:
    sq = [(32, 48), (80, 112)]
    assert grid_strides([(13, 21), (37, 53)], sq) == {2}  # SqueezeNet conv1: right, not proportional
    assert grid_strides([(13, 21), (37, 53)], sq, near=True) == set()  # ... so the third size is asked
    assert grid_strides([(13, 21), (37, 53), (61, 85)], [*sq, third_size(*sq)]) == {2}
    assert grid_strides([(16, 24), (40, 56)], sq, near=True) == {2}
    # (N, heads, T, T) read as NCHW: T = 2 x 3 tokens at 32 x 48 px, 5 x 7 at 80 x 112: H and W grow alike
    assert grid_strides([(6, 6), (35, 35)], sq) == set()
    # each axis a grid alone, but with strides 2 (H) and 3 (W): not one grid of this sweep's models
    assert grid_strides([(13, 16), (37, 37)], sq) == set()
    # square inputs: a T x T map fits two sizes with a wide border, never three
    sizes = [(64, 64), (96, 96)]
    assert grid_strides([(4, 4), (9, 9)], sizes) == {6, 7} and grid_strides([(4, 4), (9, 9)], sizes, near=True) == set()
    assert grid_strides([(4, 4), (9, 9), (16, 16)], [*sizes, third_size(*sizes)]) == set()
    assert third_size(*sizes) == (128, 128)


CHAINS = {
    "squeezenet stem": [nn.Conv2d(3, 4, 7, stride=2), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Conv2d(4, 4, 3, padding=1), nn.MaxPool2d(3, 2, ceil_mode=True)],
    "unpadded stride 3": [nn.Conv2d(3, 4, 5, stride=3), nn.Conv2d(4, 4, 2, stride=2)],
    "padded resnet stem": [nn.Conv2d(3, 4, 7, stride=2, padding=3), nn.MaxPool2d(3, 2, padding=1)],
    "avg pool floor": [nn.AvgPool2d(2), nn.Conv2d(3, 4, 3), nn.AvgPool2d(3, stride=2)],
    "alexnet": [nn.Conv2d(3, 4, 11, 4, 2), nn.MaxPool2d(3, 2), nn.Conv2d(4, 4, 5, padding=2), nn.MaxPool2d(3, 2), nn.MaxPool2d(3, 2)],
}


def _grid(net: nn.Module, size: tuple[int, int]) -> tuple[int, int]:
    with torch.no_grad():
        h, w = net(torch.zeros(1, 3, *size)).shape[-2:]
    return int(h), int(w)


@pytest.mark.parametrize("chain", list(CHAINS), ids=list(CHAINS))
@pytest.mark.parametrize(("size_a", "size_b"), [((64, 96), (96, 128)), ((67, 77), (96, 131))])
def test_real_conv_chains_always_fit_their_stride(chain: str, size_a: tuple[int, int], size_b: tuple[int, int]) -> None:
    net = nn.Sequential(*CHAINS[chain])
    stride = 1
    for m in CHAINS[chain]:
        s = m.stride if isinstance(m.stride, int) else m.stride[0]  # type: ignore[union-attr]
        stride *= int(s)  # type: ignore[arg-type]
    sizes = [size_a, size_b, third_size(size_a, size_b)]
    assert stride in grid_strides([_grid(net, sz) for sz in sizes], sizes)
