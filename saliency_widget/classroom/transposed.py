"""Transposed convolution, taken apart for teaching: why ``conv_transpose(conv(x)) != x``, and FCN's "deconvolution".

A transposed convolution is the gradient of a convolution with respect to its input, i.e.
multiplication by ``C^T`` where ``C`` is the (sparse) matrix of the convolution. It is not
the inverse: ``conv_transpose(conv(x)) != x`` in general. Pure PyTorch; single-channel
helpers work on ``(H, W)`` matrices so every number can be shown.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from ..errors import InputError

__all__ = [
    "tf_same_padding",
    "conv_transpose2d_tf",
    "conv_matrix",
    "transposed_padding",
    "crop_window",
    "placements",
    "zero_insertion",
    "transposed_is_input_gradient",
    "overlap_counts",
    "bilinear_kernel",
    "bilinear_upsample",
]

Padding = Literal["same", "valid"] | int


def tf_same_padding(in_size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's ``padding="SAME"`` for a convolution over ``in_size`` pixels: (before, after).

    TF pads ``max((ceil(in/stride) - 1) * stride + eff_k - in, 0)`` in total and puts the odd
    pixel *after* (bottom/right), unlike PyTorch's symmetric ``padding=`` integer.
    """
    eff = (kernel - 1) * dilation + 1
    out = math.ceil(in_size / stride)
    total = max((out - 1) * stride + eff - in_size, 0)
    return total // 2, total - total // 2


def conv_transpose2d_tf(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: int = 1,
    padding: Padding = "same",
    output_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """``tf.nn.conv2d_transpose`` in PyTorch: the input-gradient of a TF convolution.

    Parameters
    ----------
    x
        ``(N, C_in, h, w)``, or ``(h, w)`` for one channel.
    weight
        PyTorch ``conv_transpose2d`` layout ``(C_in, C_out, kh, kw)``, or ``(kh, kw)``.
    stride
        Stride of the convolution being transposed.
    padding
        ``"same"`` (output ``h * stride``), ``"valid"`` (output ``(h - 1) * stride + kh``), or
        an int as in PyTorch.
    output_size
        ``(H, W)`` of the result; TF's ``output_shape`` (several sizes map to the same ``h``
        with stride > 1). Defaults as described for ``padding``.

    Returns
    -------
    torch.Tensor
        ``(N, C_out, H, W)``, or ``(H, W)`` for 2-D inputs.

    Examples
    --------
    The worked example of ``tf.nn.conv2d_transpose`` (padding ``"SAME"``), as in FCN's
    "deconvolution" layers (Long, Shelhamer & Darrell 2015):

    >>> conv_transpose2d_tf(torch.tensor([[1., 2.], [3., 4.]]), torch.ones(3, 3), stride=2)
    tensor([[ 1.,  1.,  3.,  2.],
            [ 1.,  1.,  3.,  2.],
            [ 4.,  4., 10.,  6.],
            [ 3.,  3.,  7.,  4.]])
    """
    squeeze = x.dim() == 2
    if squeeze:
        x = x[None, None]
    if weight.dim() == 2:
        weight = weight[None, None]
    if x.dim() != 4 or weight.dim() != 4:
        raise InputError(f"x must be (h, w) or (N, C, h, w) and weight (kh, kw) or (C_in, C_out, kh, kw); got {tuple(x.shape)} and {tuple(weight.shape)}")
    if x.shape[1] != weight.shape[0]:
        raise InputError(f"x has {x.shape[1]} channels but weight expects C_in={weight.shape[0]}")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise InputError(f"stride must be a positive int, got {stride!r}")
    h, w = x.shape[-2:]
    kh, kw = weight.shape[-2:]
    if isinstance(padding, int) and not isinstance(padding, bool):
        out = F.conv_transpose2d(x, weight, stride=stride, padding=padding)
        return out[0, 0] if squeeze else out
    if padding not in ("same", "valid"):
        raise InputError(f"padding must be 'same', 'valid' or an int, got {padding!r}")
    if output_size is None:
        output_size = (h * stride, w * stride) if padding == "same" else ((h - 1) * stride + kh, (w - 1) * stride + kw)
    H, W = output_size
    if padding == "same":
        (pt, _pb), (pl, _pr) = tf_same_padding(H, kh, stride), tf_same_padding(W, kw, stride)
    else:
        pt = pl = 0
    # TF's forward-conv output sizes: SAME -> ceil(H / s), VALID -> ceil((H - k + 1) / s)
    expect = (math.ceil(H / stride), math.ceil(W / stride)) if padding == "same" else (
        math.ceil((H - kh + 1) / stride), math.ceil((W - kw + 1) / stride))
    if expect != (h, w):
        raise InputError(f"output_size {output_size} is not produced by stride {stride} and kernel {(kh, kw)} from {(h, w)} with padding {padding!r}")
    # The full transposed convolution covers the padded input of the forward conv; crop the padding off.
    full = F.conv_transpose2d(x, weight, stride=stride)
    need_h, need_w = pt + H, pl + W
    if full.shape[-2] < need_h or full.shape[-1] < need_w:
        full = F.pad(full, (0, max(0, need_w - full.shape[-1]), 0, max(0, need_h - full.shape[-2])))
    out = full[..., pt : pt + H, pl : pl + W]
    return out[0, 0] if squeeze else out


PadSpec = int | tuple[tuple[int, int], tuple[int, int]]


def _pads(padding: PadSpec) -> tuple[tuple[int, int], tuple[int, int]]:
    """``int`` or ``((top, bottom), (left, right))`` -> ``((top, bottom), (left, right))``, checked."""
    if isinstance(padding, int) and not isinstance(padding, bool):
        pads = ((padding, padding), (padding, padding))
    else:
        try:
            (t, b), (left, r) = padding  # type: ignore[misc]
            pads = ((int(t), int(b)), (int(left), int(r)))
        except (TypeError, ValueError):
            raise InputError(f"padding must be an int or ((top, bottom), (left, right)), got {padding!r}") from None
    if min(min(p) for p in pads) < 0:
        raise InputError(f"padding must not be negative, got {padding!r}")
    return pads


def conv_matrix(in_hw: tuple[int, int], kernel: torch.Tensor, stride: int = 1, padding: PadSpec = 0) -> torch.Tensor:
    """The matrix ``C`` with ``conv2d(x).flatten() == C @ x.flatten()`` for one channel.

    Parameters
    ----------
    in_hw
        ``(H, W)`` of the input.
    kernel
        ``(kh, kw)``.
    stride
        Stride of the convolution.
    padding
        An int (PyTorch, symmetric) or ``((top, bottom), (left, right))``: TensorFlow's
        ``"SAME"`` pads the odd pixel after (see :func:`transposed_padding`).

    Returns
    -------
    torch.Tensor
        ``(out_h * out_w, H * W)``; ``C.T`` is the transposed convolution.
    """
    (pt, pb), (pl, pr) = _pads(padding)
    H, W = in_hw
    eye = torch.eye(H * W, dtype=kernel.dtype).view(H * W, 1, H, W)
    eye = F.pad(eye, (pl, pr, pt, pb))  # asymmetric padding, which conv2d's padding= cannot express
    cols = F.conv2d(eye, kernel[None, None], stride=stride)  # column j = conv of basis image j
    return cols.flatten(1).T.contiguous()


def transposed_padding(
    in_hw: tuple[int, int], kernel_hw: tuple[int, int], stride: int, padding: Padding, output_padding: int = 0
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Padding ``((top, bottom), (left, right))`` of the forward convolution a transposed convolution is the gradient of.

    The transposed convolution of an ``(h, w)`` input with ``padding`` (``"same"``/``"valid"`` as in
    TensorFlow, or a PyTorch int with ``output_padding``) is ``C.T`` for the convolution of its
    output size with this padding: ``conv_matrix(output_hw, w, stride, transposed_padding(...))``.
    """
    (h, w), (kh, kw) = in_hw, kernel_hw
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        return tf_same_padding(h * stride, kh, stride), tf_same_padding(w * stride, kw, stride)
    if isinstance(padding, int) and not isinstance(padding, bool):
        # output_padding only picks the larger of the input sizes that map to the same h (stride > 1)
        return ((padding, padding), (padding, padding))
    raise InputError(f"padding must be 'same', 'valid' or an int, got {padding!r}")


def crop_window(
    in_hw: tuple[int, int], kernel_hw: tuple[int, int], stride: int, padding: Padding, output_padding: int = 0
) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """Where the output sits in the full transposed convolution (``padding=0``).

    Returns ``((full_h, full_w), (top, left, H, W))``: the full output is
    ``(h - 1) * stride + k`` per side; the kept window starts ``top``/``left`` into it and has the
    output's size ``(H, W)``. A window reaching past the full output (kernel smaller than the
    stride) reads zeros there.
    """
    (h, w), (kh, kw) = in_hw, kernel_hw
    full = ((h - 1) * stride + kh, (w - 1) * stride + kw)
    (pt, pb), (pl, pr) = transposed_padding(in_hw, kernel_hw, stride, padding, output_padding)
    if padding == "same":
        return full, (pt, pl, h * stride, w * stride)
    # PyTorch: H = (h - 1) * stride - 2 * padding + k + output_padding
    return full, (pt, pl, full[0] - pt - pb + output_padding, full[1] - pl - pr + output_padding)


def placements(in_hw: tuple[int, int], kernel_hw: tuple[int, int], stride: int, offset: tuple[int, int], out_rc: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """The kernel placements that write into output element ``out_rc``: ``[(i, j, a, b), ...]``.

    Input pixel ``x[i, j]`` places the kernel at ``(i * stride, j * stride)`` of the full output;
    it adds ``x[i, j] * w[a, b]`` to full position ``(i * stride + a, j * stride + b)``. ``offset`` is
    the crop window's ``(top, left)`` (see :func:`crop_window`), so ``out[r, c]`` is full
    ``(r + top, c + left)`` and equals the sum of the listed products.
    """
    (h, w), (kh, kw) = in_hw, kernel_hw
    R, C = out_rc[0] + offset[0], out_rc[1] + offset[1]
    rows = [(i, R - i * stride) for i in range(h) if 0 <= R - i * stride < kh]
    cols = [(j, C - j * stride) for j in range(w) if 0 <= C - j * stride < kw]
    return [(i, j, a, b) for i, a in rows for j, b in cols]


def zero_insertion(x: torch.Tensor, stride: int, kernel: int, padding: int = 0) -> torch.Tensor:
    """The input of the equivalent stride-1 convolution: ``stride - 1`` zeros between pixels, ``kernel - 1 - padding`` around.

    ``conv2d(zero_insertion(x, s, k, p), flip(w))`` equals ``conv_transpose2d(x, w, stride=s, padding=p)``
    (the "fractionally strided" view of Dumoulin & Visin). ``x`` is ``(h, w)``.
    """
    h, w = x.shape
    up = torch.zeros(((h - 1) * stride + 1, (w - 1) * stride + 1), dtype=x.dtype)
    up[::stride, ::stride] = x
    border = kernel - 1 - padding
    if border < 0:
        raise InputError(f"padding {padding} must be at most kernel - 1 = {kernel - 1}")
    return F.pad(up, (border, border, border, border))


def transposed_is_input_gradient(
    x: torch.Tensor, weight: torch.Tensor, grad_out: torch.Tensor, **conv_kwargs: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(autograd input-gradient of conv2d, conv_transpose2d of grad_out)``: equal for all settings.

    This is why a transposed convolution cannot undo a convolution: it multiplies by ``C.T``, not ``C^-1``.

    Parameters
    ----------
    x
        ``(N, C_in, H, W)`` conv input.
    weight
        ``(C_out, C_in / groups, kh, kw)`` conv weight.
    grad_out
        ``(N, C_out, h, w)``, the incoming gradient (any values).
    **conv_kwargs
        ``stride``, ``padding``, ``dilation``, ``groups`` of the convolution.
    """
    xr = x.detach().clone().requires_grad_(True)
    y = F.conv2d(xr, weight, **conv_kwargs)  # type: ignore[call-overload]  # kwargs checked by torch
    (g,) = torch.autograd.grad(y, xr, grad_out)
    stride = conv_kwargs.get("stride", 1)
    padding = conv_kwargs.get("padding", 0)
    dilation = conv_kwargs.get("dilation", 1)
    groups = conv_kwargs.get("groups", 1)
    # output_padding recovers input sizes that the strided conv maps to the same output size
    s = (stride, stride) if isinstance(stride, int) else stride
    p = (padding, padding) if isinstance(padding, int) else padding
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    op = tuple(
        x.shape[2 + i] - ((grad_out.shape[2 + i] - 1) * s[i] - 2 * p[i] + d[i] * (weight.shape[2 + i] - 1) + 1) for i in range(2)
    )
    t = F.conv_transpose2d(grad_out, weight, stride=stride, padding=padding, output_padding=op, groups=groups, dilation=dilation)
    return g, t


def overlap_counts(size: int, kernel: int, stride: int) -> torch.Tensor:
    """How many kernel placements touch each output pixel of a transposed conv on a uniform input.

    Uneven counts (kernel size not divisible by the stride) are the checkerboard artifact of
    Odena et al.: ``(H, W)`` with H = W = ``(size - 1) * stride + kernel``.
    """
    ones = torch.ones(1, 1, size, size)
    return F.conv_transpose2d(ones, torch.ones(1, 1, kernel, kernel), stride=stride)[0, 0]


def bilinear_kernel(factor: int) -> torch.Tensor:
    """FCN's bilinear upsampling filter, ``(k, k)`` with ``k = 2 * factor - factor % 2``."""
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise InputError(f"factor must be a positive int, got {factor!r}")
    k = 2 * factor - factor % 2
    center = factor - 1 if k % 2 == 1 else factor - 0.5
    og = torch.arange(k, dtype=torch.float64)
    filt = 1 - (og - center).abs() / factor
    return torch.outer(filt, filt)


def bilinear_upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Upsample ``(h, w)`` by ``factor`` with a bilinear-initialised transposed convolution (FCN).

    Returns ``(h * factor, w * factor)``.
    """
    k = bilinear_kernel(factor).to(x.dtype)
    pad = math.ceil((factor - 1) / 2) if factor % 2 else factor // 2
    out = F.conv_transpose2d(x[None, None], k[None, None], stride=factor, padding=pad)[0, 0]
    return out[: x.shape[0] * factor, : x.shape[1] * factor]
