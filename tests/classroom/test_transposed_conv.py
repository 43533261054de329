"""Transposed-convolution tools: TF conv2d_transpose literals, the identity (transposed conv = input gradient), conv matrices, zero insertion, overlaps, bilinear kernels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from saliency_widget import InputError
from saliency_widget.classroom import (
    bilinear_kernel,
    bilinear_upsample,
    conv_matrix,
    conv_transpose2d_tf,
    overlap_counts,
    tf_same_padding,
    transposed_is_input_gradient,
    zero_insertion,
)


def test_tf_conv2d_transpose_same_literal() -> None:
    out = conv_transpose2d_tf(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.ones(3, 3), stride=2, padding="same")
    assert_close(out, torch.tensor([[1.0, 1.0, 3.0, 2.0], [1.0, 1.0, 3.0, 2.0], [4.0, 4.0, 10.0, 6.0], [3.0, 3.0, 7.0, 4.0]]))


def test_tf_valid_is_full_transposed_conv() -> None:
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    # VALID: (2 - 1) * 2 + 3 = 5; every input pixel spreads a 3x3 block of ones at stride 2
    want = torch.tensor([[1, 1, 3, 2, 2], [1, 1, 3, 2, 2], [4, 4, 10, 6, 6], [3, 3, 7, 4, 4], [3, 3, 7, 4, 4]], dtype=torch.float32)
    assert_close(conv_transpose2d_tf(x, torch.ones(3, 3), stride=2, padding="valid"), want)


@pytest.mark.parametrize(("n", "k", "s", "want"), [(4, 3, 2, (0, 1)), (5, 3, 2, (1, 1)), (4, 1, 1, (0, 0)), (7, 4, 3, (1, 2)), (3, 5, 1, (2, 2))])
def test_tf_same_padding(n: int, k: int, s: int, want: tuple[int, int]) -> None:
    assert tf_same_padding(n, k, s) == want


@pytest.mark.parametrize(
    ("in_hw", "kernel", "stride", "padding", "dilation", "groups", "cin", "cout"),
    [
        ((7, 7), 3, 1, 0, 1, 1, 1, 1),
        ((8, 9), 3, 2, 1, 1, 1, 2, 3),
        ((9, 8), 4, 3, 2, 1, 1, 3, 2),
        ((10, 10), 3, 2, 0, 2, 1, 2, 2),
        ((11, 7), 5, 2, 2, 1, 2, 4, 6),
        ((6, 6), 2, 2, 0, 1, 3, 3, 3),
        ((12, 13), 3, 3, 1, 2, 2, 4, 4),
    ],
)
def test_transposed_conv_is_input_gradient(
    in_hw: tuple[int, int], kernel: int, stride: int, padding: int, dilation: int, groups: int, cin: int, cout: int
) -> None:
    g = torch.Generator().manual_seed(hash((in_hw, kernel, stride)) % 2**31)
    x = torch.randn(2, cin, *in_hw, generator=g, dtype=torch.float64)
    w = torch.randn(cout, cin // groups, kernel, kernel, generator=g, dtype=torch.float64)
    y = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    grad_out = torch.randn(y.shape, generator=g, dtype=torch.float64)
    autograd_in, transposed = transposed_is_input_gradient(x, w, grad_out, stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert_close(transposed, autograd_in)


def test_transposed_conv_is_not_the_inverse() -> None:
    # conv_transpose(conv(i)) != i
    g = torch.Generator().manual_seed(0)
    i = torch.randn(1, 1, 10, 10, generator=g)
    w = torch.randn(1, 1, 2, 2, generator=g)
    assert not torch.allclose(F.conv_transpose2d(F.conv2d(i, w), w), i)


def test_conv_matrix_and_its_transpose() -> None:
    g = torch.Generator().manual_seed(3)
    w = torch.randn(3, 3, generator=g, dtype=torch.float64)
    x = torch.randn(5, 5, generator=g, dtype=torch.float64)
    C = conv_matrix((5, 5), w, stride=2, padding=1)
    y = F.conv2d(x[None, None], w[None, None], stride=2, padding=1)
    assert C.shape == (9, 25)
    assert_close(C @ x.flatten(), y.flatten())
    r = torch.randn(3, 3, generator=g, dtype=torch.float64)
    assert_close(C.T @ r.flatten(), F.conv_transpose2d(r[None, None], w[None, None], stride=2, padding=1)[0, 0].flatten())


def test_zero_insertion_equals_transposed_conv() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 4, generator=g)
    w = torch.randn(3, 3, generator=g)
    zi = zero_insertion(x, stride=2, kernel=3, padding=1)
    assert_close(F.conv2d(zi[None, None], w.flip(0, 1)[None, None])[0, 0], F.conv_transpose2d(x[None, None], w[None, None], stride=2, padding=1)[0, 0])
    assert zi[1, 1] == x[0, 0] and zi[1, 2] == 0  # a zero inserted between pixels


def test_overlap_counts_checkerboard() -> None:
    # kernel 3, stride 2: interior counts alternate 1/2 (a checkerboard); kernel 4, stride 2: even
    assert overlap_counts(4, 3, 2)[4, 2:7].tolist() == [4.0, 2.0, 4.0, 2.0, 4.0]
    assert set(overlap_counts(4, 4, 2)[2:-2, 2:-2].flatten().tolist()) == {4.0}


def test_bilinear_kernel_and_upsampling() -> None:
    # factor 2: k = 4, 1-D filter [0.25, 0.75, 0.75, 0.25]; the 2-D kernel is its outer product
    assert_close(bilinear_kernel(2)[0], torch.tensor([0.0625, 0.1875, 0.1875, 0.0625], dtype=torch.float64))
    assert_close(bilinear_kernel(3)[1], torch.tensor([1, 2, 3, 2, 1], dtype=torch.float64) / 3 * (2 / 3))
    ramp = torch.arange(1.0, 10.0, dtype=torch.float64).view(3, 3)
    up = bilinear_upsample(ramp, 2)
    assert up.shape == (6, 6)
    # interior values interpolate linearly (FCN's bilinear filter); borders see the zero padding
    assert_close(up[2, 1:5], torch.tensor([3.5, 4.0, 4.5, 5.0], dtype=torch.float64))


def test_conv_transpose_tf_errors() -> None:
    with pytest.raises(InputError, match="padding must be 'same', 'valid' or an int"):
        conv_transpose2d_tf(torch.ones(2, 2), torch.ones(3, 3), stride=2, padding="full")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="output_size"):
        conv_transpose2d_tf(torch.ones(2, 2), torch.ones(3, 3), stride=2, padding="same", output_size=(7, 7))
