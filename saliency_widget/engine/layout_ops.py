"""The torch ops the layout tracker knows by name, and how their arguments are read.

:class:`~.layouts.LayoutTracker` sees every torch call of a forward pass as ``(func, args,
kwargs)``. This module sorts ``func`` into the families the tracker has a rule for (permutes,
reshapes, concatenations, products, convolutions, paddings, reductions...) and reads from the
arguments what a rule needs: the axis permutation, the padding widths, the reduced axes, the
grid of an ``F.unfold``, the prefix tokens left by a token slice. Pure functions of the call;
no layout state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = [
    "CATS", "CONVS", "MATMULS", "PADS", "PERMUTES", "REDUCTIONS", "RESHAPES", "SDPA", "UNBINDS", "UNFOLD",
    "pad_widths", "permutation", "reduced_dims", "token_slice_prefix", "unfold_grid",
]  # fmt: skip

Func = Callable[..., Any]

PERMUTES: frozenset[Func] = frozenset(
    {
        torch.permute, torch.Tensor.permute,
        torch.transpose, torch.Tensor.transpose, torch.swapaxes, torch.Tensor.swapaxes,
        torch.swapdims, torch.Tensor.swapdims,
        torch.movedim, torch.Tensor.movedim, torch.moveaxis, torch.Tensor.moveaxis,
    }
)  # fmt: skip
RESHAPES: frozenset[Func] = frozenset(
    {
        torch.reshape, torch.Tensor.reshape, torch.Tensor.view, torch.flatten, torch.Tensor.flatten,
        torch.unflatten, torch.Tensor.unflatten, torch.Tensor.view_as, torch.Tensor.reshape_as,
        torch.squeeze, torch.Tensor.squeeze, torch.unsqueeze, torch.Tensor.unsqueeze,
    }
)  # fmt: skip
CATS: frozenset[Func] = frozenset({torch.cat, torch.concat, torch.concatenate})
MATMULS: frozenset[Func] = frozenset({torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.bmm, torch.Tensor.bmm})
UNBINDS: frozenset[Func] = frozenset({torch.unbind, torch.Tensor.unbind})
# a convolution's output is (N, C, H, W) on its own grid, unless its input's last axes are known not to be one
CONVS: frozenset[Func] = frozenset({torch.conv2d, torch.conv_transpose2d})
PADS: frozenset[Func] = frozenset({torch.nn.functional.pad, torch.constant_pad_nd})
# reductions over given axes: their output drops those axes (or keeps them of size 1)
REDUCTIONS: frozenset[Func] = frozenset(
    {
        torch.amax, torch.Tensor.amax, torch.amin, torch.Tensor.amin, torch.max, torch.Tensor.max,
        torch.min, torch.Tensor.min, torch.mean, torch.Tensor.mean, torch.sum, torch.Tensor.sum,
        torch.nanmean, torch.Tensor.nanmean, torch.nansum, torch.Tensor.nansum,
        torch.logsumexp, torch.Tensor.logsumexp, torch.prod, torch.Tensor.prod,
    }
)  # fmt: skip
SDPA = torch.nn.functional.scaled_dot_product_attention
UNFOLD = torch.nn.functional.unfold
_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19)


def permutation(func: Func, args: tuple[Any, ...], kwargs: dict[str, Any], rank: int) -> tuple[int, ...] | None:
    """The axis permutation a permute / transpose / movedim call applies (output axis i = input axis p[i])."""
    # Replay the call on a meta tensor whose axes have distinct sizes: exact for every signature.
    probe = torch.empty(_PRIMES[:rank], device="meta")
    try:
        if args:
            shape = func(probe, *args[1:], **kwargs).shape
        else:
            shape = func(**{**kwargs, "input": probe}).shape
    except (RuntimeError, TypeError, ValueError, IndexError):  # an unusual signature: no evidence, not an error
        return None
    return tuple(_PRIMES.index(s) for s in shape)


def pad_widths(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int, ...] | None:
    """``(before, after)`` pairs, last axis first, of an ``F.pad`` / ``constant_pad_nd`` call; None if unreadable."""
    pad = args[1] if len(args) > 1 else kwargs.get("pad")
    if not isinstance(pad, (tuple, list)) or len(pad) % 2 or not all(isinstance(p, int) for p in pad):
        return None
    return tuple(pad)


def reduced_dims(args: tuple[Any, ...], kwargs: dict[str, Any], rank: int, out_rank: int) -> tuple[int, ...] | None:
    """The axes a reduction call reduces, or None when unreadable (no ``dim``: a reduction to a scalar).

    ``keepdim`` is read from the ranks (``out_rank == rank``): the signatures differ on where it goes.
    """
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    dims = (dim,) if isinstance(dim, int) else tuple(dim) if isinstance(dim, (tuple, list)) else None
    if not dims or not all(isinstance(d, int) and -rank <= d < rank for d in dims):
        return None
    norm = tuple(sorted({d % rank for d in dims}))
    return norm if out_rank in (rank, rank - len(norm)) else None


def unfold_grid(src: Sequence[int], args: tuple[Any, ...], kwargs: dict[str, Any], out: Sequence[int]) -> tuple[int, int] | None:
    """The grid of patch positions of ``F.unfold`` (im2col) of an ``(N, C, H, W)`` input into ``(N, C * kh * kw, L)``."""
    names = ("kernel_size", "dilation", "padding", "stride")
    given = {**dict(zip(names, args[1:])), **kwargs}
    pairs = []
    for name, default in zip(names, (None, 1, 0, 1)):
        v = given.get(name, default)
        v = (v, v) if isinstance(v, int) else tuple(v) if isinstance(v, (tuple, list)) else None
        if v is None or len(v) != 2:
            return None
        pairs.append(v)
    (k, d, p, s) = pairs
    grid = tuple((int(src[2 + i]) + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2))
    return grid if len(out) == 3 and grid[0] * grid[1] == out[2] else None  # type: ignore[return-value]


def token_slice_prefix(prefix: int, index: Any, src: Sequence[int], out: Sequence[int]) -> int | None:
    """Prefix tokens left by ``x[index]`` of tokens with ``prefix`` ones: ``x[:, k:]`` drops ``k``; None if no tokens are left."""
    if len(out) != 3:
        return None
    if out[1] == src[1]:
        return prefix  # x[..., a:b]: the channels sliced, the tokens kept
    idx = index if isinstance(index, tuple) else (index,)
    full = slice(None)
    if len(idx) >= 2 and idx[0] == full and isinstance(idx[1], slice) and all(i == full for i in idx[2:]):
        s = idx[1]
        start = s.start or 0
        if s.stop is None and s.step in (None, 1) and isinstance(start, int) and 0 <= start <= prefix:
            return prefix - start
    return None
