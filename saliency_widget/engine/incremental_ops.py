"""Changed rectangles of occluded feature maps, and the layers that propagate them.

Incremental occlusion (Nakandala et al., SIGMOD 2019, "Krypton") keeps the unoccluded
forward's outputs and, per occluded copy, only the rectangle of each feature map that the
patch can have changed: a :class:`Region`. Everything outside it equals the cached output.

A rectangle has one size per layer (the same for every patch of a batch, so a batch is one
tensor) and a top-left corner per patch, clamped inside the map: near a border the
rectangle slides inwards rather than shrinking, and covers more than the changed cells.
That is exact: every cell in a rectangle is computed from its full input context.

Layers (all exact):

- convolutions and max / average pooling (:func:`window_op`): the output rectangle is every
  output whose window reads a changed input; its input window (with the layer's halo and
  padding) is read from the cached input with the changed rectangle pasted in
  (:func:`read`), and the layer runs on that window without padding;
- pointwise layers (ReLU in any form, BatchNorm in eval, dropout in eval, ...) run on the
  rectangle alone;
- sums, products and channel concatenations of two maps run on the union rectangle.

Once a rectangle covers its whole map the value is a plain tensor ``(B, C, H, W)`` again.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BINARY",
    "POINTWISE_FUNCTIONS",
    "POINTWISE_METHODS",
    "POINTWISE_MODULES",
    "Region",
    "as_full",
    "materialize",
    "read",
    "union_rect",
    "window_op",
]

# Layers computed on the rectangle alone: output cell (y, x) depends on input cell (y, x) only.
POINTWISE_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardtanh,
    nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.PReLU, nn.Identity,
    nn.Dropout, nn.Dropout2d, nn.AlphaDropout,
)
POINTWISE_FUNCTIONS: frozenset[object] = frozenset({
    F.relu, F.relu_, F.relu6, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu, F.silu, F.mish, F.hardtanh,
    F.hardswish, F.hardsigmoid, F.sigmoid, F.tanh, F.softplus, F.dropout,
    torch.relu, torch.relu_, torch.sigmoid, torch.tanh, torch.clamp, torch.exp, torch.abs, torch.neg,
    operator.neg,
})
POINTWISE_METHODS: frozenset[str] = frozenset({
    "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "clamp", "clamp_", "clamp_min", "clamp_min_",
    "clamp_max", "clamp_max_", "abs", "abs_", "neg", "exp", "contiguous", "float", "double",
})
# Elementwise binary operations: with a constant, pointwise; with two maps, on the union.
BINARY: frozenset[object] = frozenset({
    operator.add, operator.sub, operator.mul, operator.truediv, operator.iadd, operator.isub, operator.imul,
    operator.itruediv, torch.add, torch.sub, torch.mul, torch.div,
    "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_",
})


@dataclass
class Region:
    """The occluded value of a feature map, known inside one rectangle per patch.

    Attributes
    ----------
    r
        ``(B, C, h, w)`` the values inside each patch's rectangle.
    ys, xs
        ``(B,)`` int64 top-left corner of each rectangle, in ``[0, H - h]`` / ``[0, W - w]``.
    base
        ``(N, C, H, W)`` the unoccluded output (the cache): the value outside the rectangle.
    img
        ``(B,)`` int64 the image of ``base`` each patch occludes.
    """

    r: torch.Tensor
    ys: torch.Tensor
    xs: torch.Tensor
    base: torch.Tensor
    img: torch.Tensor

    @property
    def shape(self) -> torch.Size:
        """Shape of the occluded value ``(B, C, H, W)``."""
        return torch.Size((self.r.shape[0], *self.base.shape[1:]))


def _pair(v: int | tuple[int, ...] | list[int]) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int) else tuple(v)
    return (int(t[0]), int(t[-1]))


def _ceil_div(a: torch.Tensor, s: int) -> torch.Tensor:
    return -torch.div(-a, s, rounding_mode="floor")


def read(reg: Region, top: torch.Tensor, left: torch.Tensor, h: int, w: int,
         padded: torch.Tensor, pad: tuple[int, int]) -> torch.Tensor:
    """The occluded value in the rectangle ``[top, top + h) x [left, left + w)`` per patch, ``(B, C, h, w)``.

    ``padded`` is ``reg.base`` padded by ``pad`` (rows, columns) with the layer's padding
    value, so ``top`` / ``left`` may reach ``-pad``; inside ``reg``'s rectangle the values come
    from ``reg.r``.
    """
    if pad == (0, 0) and tuple(reg.r.shape[-2:]) == (h, w) and torch.equal(top, reg.ys) and torch.equal(left, reg.xs):
        return reg.r  # the rectangle itself (a union of equal rectangles)
    dev = top.device
    Y = top.view(-1, 1) + torch.arange(h, device=dev)  # (B, h) rows, unpadded coordinates
    X = left.view(-1, 1) + torch.arange(w, device=dev)
    src = padded.permute(0, 2, 3, 1)  # (N, Hp, Wp, C): one gather per cell keeps the channels together
    win = src[reg.img.view(-1, 1, 1), (Y + pad[0]).unsqueeze(2), (X + pad[1]).unsqueeze(1)]  # (B, h, w, C)
    rh, rw = reg.r.shape[-2:]
    ri, rj = Y - reg.ys.view(-1, 1), X - reg.xs.view(-1, 1)
    inside = (((ri >= 0) & (ri < rh)).unsqueeze(2) & ((rj >= 0) & (rj < rw)).unsqueeze(1)).unsqueeze(3)
    b = torch.arange(Y.shape[0], device=dev).view(-1, 1, 1)
    vals = reg.r.permute(0, 2, 3, 1)[b, ri.clamp(0, rh - 1).unsqueeze(2), rj.clamp(0, rw - 1).unsqueeze(1)]
    return torch.where(inside, vals, win).permute(0, 3, 1, 2)  # channels-last memory: what oneDNN convolves fastest


def materialize(reg: Region) -> torch.Tensor:
    """The whole occluded value ``(B, C, H, W)``: the cache with each rectangle pasted in."""
    full = reg.base[reg.img]  # advanced indexing copies
    rh, rw = reg.r.shape[-2:]
    dev = reg.ys.device
    Y = (reg.ys.view(-1, 1) + torch.arange(rh, device=dev)).unsqueeze(2)
    X = (reg.xs.view(-1, 1) + torch.arange(rw, device=dev)).unsqueeze(1)
    b = torch.arange(reg.r.shape[0], device=dev).view(-1, 1, 1)
    full.permute(0, 2, 3, 1)[b, Y, X] = reg.r.permute(0, 2, 3, 1)  # a view: writes into full
    return full


def as_full(v: object) -> object:
    """``v`` with a :class:`Region` replaced by its whole value (anything else unchanged)."""
    return materialize(v) if isinstance(v, Region) else v


def _span(start: torch.Tensor, size: int, k_eff: int, stride: int, pad: int, out: int,
          tau: float | None = None) -> tuple[torch.Tensor, int]:
    """Output rows ``[o, o + n)`` of a window layer covering every output that reads input rows ``[start, start + size)``.

    With ``tau`` (approximate mode), at most ``ceil(tau * out)`` rows around the middle of that span.
    """
    n = min(out, (size + k_eff - 2) // stride + 1)  # the most outputs such a span of inputs can reach
    lo = _ceil_div(start + pad - k_eff + 1, stride).clamp(min=0)
    cap = out if tau is None else max(1, math.ceil(tau * out))
    if n > cap:  # Krypton's projective-field threshold: drop the outer rows of the growing field
        lo, n = lo + (n - cap) // 2, cap
    return torch.clamp(lo, max=out - n), n


def window_op(reg: Region, kind: str, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
              dilation: tuple[int, int], padded: torch.Tensor, out_hw: tuple[int, int],
              run: object, base_out: torch.Tensor, tau: float | None = None) -> Region | torch.Tensor:
    """A convolution / pooling layer on a changed rectangle.

    ``run(window)`` applies the layer without padding to the input window ``(B, C, ih, iw)``;
    ``padded`` is the cached input padded with the layer's padding value; ``out_hw`` and
    ``base_out`` ``(N, C', Ho, Wo)`` the layer's cached output. Returns the output
    rectangle, or the whole output ``(B, C', Ho, Wo)`` when the rectangle covers it. ``tau``:
    approximate mode, the rectangle's side is at most ``tau`` of the map's (see :func:`_span`).
    """
    ke = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    h, w = reg.r.shape[-2:]
    oy, oh = _span(reg.ys, h, ke[0], stride[0], padding[0], out_hw[0], tau)
    ox, ow = _span(reg.xs, w, ke[1], stride[1], padding[1], out_hw[1], tau)
    win = read(reg, oy * stride[0] - padding[0], ox * stride[1] - padding[1],
               (oh - 1) * stride[0] + ke[0], (ow - 1) * stride[1] + ke[1], padded, padding)
    out = run(win)  # type: ignore[operator]
    if (oh, ow) == tuple(out_hw):
        return out
    return Region(out, oy, ox, base_out, reg.img)


def union_rect(regs: list[Region]) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """One rectangle per patch covering the rectangles of all ``regs`` (same map size): ``(ys, xs, h, w)``."""
    H, W = regs[0].base.shape[-2:]
    lo_y = torch.stack([g.ys for g in regs]).amin(0)
    lo_x = torch.stack([g.xs for g in regs]).amin(0)
    hi_y = torch.stack([g.ys + g.r.shape[-2] for g in regs]).amax(0)
    hi_x = torch.stack([g.xs + g.r.shape[-1] for g in regs]).amax(0)
    h = min(int(H), int((hi_y - lo_y).max()))
    w = min(int(W), int((hi_x - lo_x).max()))
    return lo_y.clamp(max=H - h), lo_x.clamp(max=W - w), h, w


def conv_params(mod: nn.Module) -> tuple[tuple[int, int], ...] | None:
    """``(kernel, stride, padding, dilation)`` of a Conv2d / MaxPool2d / AvgPool2d the rectangle can cross, else None.

    None for what a window cannot reproduce: string or non-zero padding modes, ``ceil_mode``,
    average pooling that excludes the padding from its count.
    """
    if isinstance(mod, nn.Conv2d):
        if isinstance(mod.padding, str) or mod.padding_mode != "zeros":
            return None
        return _pair(mod.kernel_size), _pair(mod.stride), _pair(mod.padding), _pair(mod.dilation)
    if isinstance(mod, nn.MaxPool2d):
        if mod.ceil_mode or mod.return_indices:
            return None
        return _pair(mod.kernel_size), _pair(mod.stride or mod.kernel_size), _pair(mod.padding), _pair(mod.dilation)
    if isinstance(mod, nn.AvgPool2d):
        if mod.ceil_mode or (not mod.count_include_pad and _pair(mod.padding) != (0, 0)):
            return None
        return _pair(mod.kernel_size), _pair(mod.stride or mod.kernel_size), _pair(mod.padding), (1, 1)
    return None


def window_runner(mod: nn.Module) -> tuple[float, object]:
    """Padding value and ``run(window)`` of a layer :func:`conv_params` accepts: the layer without its padding."""
    if isinstance(mod, nn.Conv2d):
        c = mod
        return 0.0, lambda t: F.conv2d(t, c.weight, c.bias, c.stride, 0, c.dilation, c.groups)
    if isinstance(mod, nn.MaxPool2d):
        m = mod
        return float("-inf"), lambda t: F.max_pool2d(t, m.kernel_size, m.stride or m.kernel_size, 0, m.dilation)
    a = mod
    assert isinstance(a, nn.AvgPool2d)  # noqa: S101 - conv_params admits only these three
    return 0.0, lambda t: F.avg_pool2d(t, a.kernel_size, a.stride or a.kernel_size, 0, False, True, a.divisor_override)
