"""Structural receptive fields: which input pixels one unit of a layer is connected to.

A probe (an all-ones input) runs under :class:`ReceptiveFieldMode`, which makes every path
positive: ReLUs pass everything, max-pools spread over their whole window, convolutions and
linear layers use all-ones weights, normalisations are the identity. The support of the
input-gradient of unit ``(y, x)`` is then exactly its receptive field, independent of the
image and of the weights. The model is never modified: the mode lives only inside ``with``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .capture import forward_to
from .checks import model_input
from .intercept import NON_RELU_ACTIVATIONS, RELU_FUNCTIONS
from .layouts import Layout, to_nchw

__all__ = ["ReceptiveFieldMode", "receptive_field", "receptive_fields"]


class ReceptiveFieldMode(TorchFunctionMode):
    """Make every path positive so an input-gradient's support is the receptive field.

    ReLUs pass everything, max-pooling spreads to its whole window (as average pooling),
    convolutions and linear layers use all-ones weights and batch-norm is the identity.
    The backward of one unit then reaches exactly the input pixels it is connected to,
    with no cancellation and no dependence on the image or the weights.
    """

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = dict(kwargs or {})
        if func in RELU_FUNCTIONS:
            x = args[0] if args else kwargs["input"]
            return x
        if func in NON_RELU_ACTIVATIONS:
            return args[0] if args else kwargs["input"]
        if func in (F.conv1d, F.conv2d, F.conv3d, torch.conv2d, F.linear):
            args = list(args)  # type: ignore[assignment]
            if len(args) > 1:
                args[1] = torch.ones_like(args[1])  # type: ignore[index]
            else:
                kwargs["weight"] = torch.ones_like(kwargs["weight"])
            if len(args) > 2:
                args[2] = None  # type: ignore[index]
            else:
                kwargs.pop("bias", None)
            return func(*args, **kwargs)
        if func is F.batch_norm or func is F.layer_norm or func is F.group_norm:
            return args[0] if args else kwargs["input"]
        if func in (F.max_pool2d, F.max_pool2d_with_indices, torch.max_pool2d):
            return _max_as_avg(args, kwargs)
        if func is F.adaptive_max_pool2d:
            x = args[0] if args else kwargs["input"]
            size = args[1] if len(args) > 1 else kwargs["output_size"]
            return F.adaptive_avg_pool2d(x, size)
        return func(*args, **kwargs)


def _max_as_avg(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
    names = ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"]
    bound = dict(zip(names, args))
    bound.update(kwargs)
    dilation = bound.get("dilation", 1)
    if dilation not in (1, (1, 1), [1, 1]):
        # avg_pool2d has no dilation: keep the max-pool (its switches may narrow the box).
        return F.max_pool2d(**{k: v for k, v in bound.items() if k != "return_indices"})
    kernel = bound["kernel_size"]
    stride = bound.get("stride") or kernel
    out = F.avg_pool2d(
        bound["input"],
        kernel,
        stride,
        bound.get("padding", 0),
        ceil_mode=bool(bound.get("ceil_mode", False)),
        count_include_pad=True,
    )
    return out


def receptive_field(
    model: nn.Module,
    input_shape: Sequence[int],
    layer: str,
    y: int,
    x: int,
    call: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    layout: Layout | None = None,
) -> tuple[int, int, int, int]:
    """Receptive field of unit ``(y, x)`` of ``layer`` as a half-open pixel box ``(y0, x0, y1, x1)``.

    Parameters
    ----------
    model
        The model (not modified).
    input_shape
        ``(C, H, W)`` of one input.
    layer, call
        Module name and execution index.
    y, x
        Position in the layer's output feature map.
    dtype, device
        Of the probe input (the model's).

    Returns
    -------
    tuple of int
        ``(y0, x0, y1, x1)`` in input pixels, clipped to the image.
    """
    return receptive_fields(model, input_shape, layer, [(y, x)], call, dtype, device, layout=layout)[0]


def receptive_fields(
    model: nn.Module,
    input_shape: Sequence[int],
    layer: str,
    positions: Sequence[tuple[int, int]],
    call: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
    layout: Layout | None = None,
) -> list[tuple[int, int, int, int]]:
    """Receptive-field boxes of many units at once: one probe image per position, batched.

    Parameters
    ----------
    model, input_shape, layer, call, dtype, device
        As in :func:`receptive_field`.
    positions
        ``(y, x)`` positions in the layer's ``(h, w)`` feature map.
    batch_size
        Probe images per forward pass.
    layout
        The layer's :class:`~saliency_widget.engine.layouts.Layout` (default NCHW): the units of
        an NHWC or tokens layer are placed on its ``(C, H, W)`` view.

    Returns
    -------
    list of tuple of int
        One half-open box ``(y0, x0, y1, x1)`` per position, in order. A layer whose output is
        not ``(N, C, h, w)`` or does not depend on the input gets the whole image; a unit
        connected to no pixel gets ``(0, 0, 0, 0)``.
    """
    boxes: list[tuple[int, int, int, int]] = []
    for start in range(0, len(positions), batch_size):
        chunk = positions[start : start + batch_size]
        probe = torch.ones((len(chunk), *input_shape), dtype=dtype, device=device, requires_grad=True)
        with torch.enable_grad():
            out = forward_to(model, model_input(probe), layer, call, mode=ReceptiveFieldMode())
        if layout is not None and layout.kind in ("NHWC", "tokens"):
            out = to_nchw(out, layout)
        if out.dim() != 4 or not out.requires_grad:
            boxes += [(0, 0, int(input_shape[-2]), int(input_shape[-1]))] * len(chunk)
            continue
        seed = torch.zeros_like(out)
        for i, (y, x) in enumerate(chunk):
            seed[i, :, y, x] = 1.0
        (g,) = torch.autograd.grad(out, probe, seed, allow_unused=True)
        if g is None:
            boxes += [(0, 0, 0, 0)] * len(chunk)
            continue
        support = g.abs().sum(1) > 0  # (B, H, W)
        for i in range(len(chunk)):
            ys = torch.nonzero(support[i].any(1)).flatten()
            xs = torch.nonzero(support[i].any(0)).flatten()
            boxes.append((0, 0, 0, 0) if ys.numel() == 0 else (int(ys[0]), int(xs[0]), int(ys[-1]) + 1, int(xs[-1]) + 1))
    return boxes
