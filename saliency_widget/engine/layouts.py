"""Layer layouts: which axes of a layer's output are channels, rows and columns.

A CNN layer outputs ``(N, C, H, W)``. Transformers and their hybrids do not:

``"NCHW"``
    ``(N, C, H, W)``: convolutions, pooling, everything in a classic CNN.
``"NHWC"``
    ``(N, H, W, C)``, channels last: torchvision Swin stages, ConvNeXt block internals,
    Hugging Face Swin / ConvNeXt internals, anything permuted to channels last.
``"tokens"``
    ``(N, P + h*w, C)``: ``P`` prefix tokens (class, distillation, register tokens) then
    the ``h x w`` patch grid in row-major order: ViT, DeiT, DINOv2, Hugging Face Swin.
``"flat"``
    ``(N, C)``: no spatial axes (classifier layers, pooled features).
``"ambiguous"``
    Anything else, or a layer whose layout the evidence does not settle (attention
    maps ``(N, heads, T, T)``, window partitions, a square ``(N, 56, 56, 56)`` seen
    with both an NCHW and an NHWC 56 x 56 grid). Reported as such, never guessed.

The layout is decided from evidence, never from one shape alone. During the recorded
forward pass a :class:`LayoutTracker` (a ``TorchFunctionMode``) follows every tensor from
the ``(N, C, H, W)`` input: a permute ``(0, 2, 3, 1)`` of an NCHW tensor is NHWC with the
same grid, ``flatten(2).transpose(1, 2)`` of an NCHW tensor (a patch embedding) is tokens
with that grid, a concatenation of untagged tokens in front of patch tokens adds prefix
tokens, and ops that keep the rank (norms, linear layers, convolutions, residual adds,
slicing, padding, rolling) keep the layout. A module output the tracker could not follow
(an attention block that reassembles its output from heads) gets a layout only if its
shape agrees with the grids the tracker saw: ``(N, h, w, C)`` with ``(h, w)`` an NHWC grid
and not an NCHW one, ``(N, T, C)`` with ``T`` the token count of exactly one token grid.

:func:`to_nchw` then views any spatial layer output as ``(N, C, H, W)`` (tokens: the prefix
dropped and the patch tokens reshaped, exactly pytorch-grad-cam's documented ViT / Swin
``reshape_transform``), and :func:`from_nchw` maps an ``(N, C, H, W)`` tensor (a backward
seed) back to the layer's own layout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

from ..errors import LayerError

__all__ = [
    "LAYOUTS",
    "SPATIAL_LAYOUTS",
    "Layout",
    "LayoutTracker",
    "from_nchw",
    "nchw_shape",
    "to_nchw",
]

LAYOUTS = ("NCHW", "NHWC", "tokens", "flat", "ambiguous")
SPATIAL_LAYOUTS = ("NCHW", "NHWC", "tokens")


@dataclass(frozen=True)
class Layout:
    """The layout of one layer output.

    Attributes
    ----------
    kind
        One of :data:`LAYOUTS`. Inside the tracker also ``"NCL"`` (``(N, C, h*w)``, a patch
        embedding half-way to tokens) and ``"unknown"`` (computed from the input, layout not followed).
    grid
        ``(h, w)`` of the spatial grid for the spatial layouts, else None.
    prefix
        Number of prefix tokens ``P`` for ``"tokens"`` (class + distillation + registers), else 0.
    """

    kind: str
    grid: tuple[int, int] | None = None
    prefix: int = 0

    @property
    def spatial(self) -> bool:
        """True for the layouts that :func:`to_nchw` can view as ``(N, C, H, W)``."""
        return self.kind in SPATIAL_LAYOUTS

    @property
    def tokens(self) -> int:
        """Token count ``P + h*w`` (tokens layout only)."""
        assert self.grid is not None  # internal invariant, not an input check
        return self.prefix + self.grid[0] * self.grid[1]


FLAT = Layout("flat")
AMBIGUOUS = Layout("ambiguous")
_UNKNOWN = Layout("unknown")  # computed from the input, layout not followed (e.g. reassembled attention heads)


def _fits(shape: Sequence[int], layout: Layout) -> bool:
    """Whether an output of ``shape`` (batch included) can have ``layout``."""
    g = layout.grid
    if layout.kind == "flat":
        return len(shape) == 2
    if layout.kind == "unknown":
        return True
    if g is None:
        return False
    if layout.kind == "NCHW":
        return len(shape) == 4 and tuple(shape[2:]) == g
    if layout.kind == "NHWC":
        return len(shape) == 4 and tuple(shape[1:3]) == g
    if layout.kind == "tokens":
        return len(shape) == 3 and shape[1] == layout.tokens
    if layout.kind == "NCL":
        return len(shape) == 3 and shape[2] == g[0] * g[1]
    return False


def nchw_shape(shape: Sequence[int], layout: Layout) -> tuple[int, ...]:
    """``(C, H, W)`` of a spatial layer output of ``shape`` (batch included); else the shape without the batch."""
    if layout.kind == "NCHW":
        return tuple(int(s) for s in shape[1:])
    if layout.kind == "NHWC":
        return (int(shape[3]), int(shape[1]), int(shape[2]))
    if layout.kind == "tokens" and layout.grid is not None:
        return (int(shape[2]), *layout.grid)
    return tuple(int(s) for s in shape[1:])


def _check_fits(t: torch.Tensor, layout: Layout) -> None:
    if not layout.spatial:
        raise LayerError(
            f"a layer output of shape {tuple(t.shape)} with layout {layout.kind!r} has no (C, H, W) view; "
            f"spatial layouts are {SPATIAL_LAYOUTS}"
        )
    if not _fits(t.shape, layout):
        raise LayerError(f"a tensor of shape {tuple(t.shape)} does not have layout {layout}")


def to_nchw(t: torch.Tensor, layout: Layout) -> torch.Tensor:
    """View a spatial layer output as ``(N, C, H, W)``.

    Parameters
    ----------
    t
        The layer output in its own layout: ``(N, C, H, W)``, ``(N, H, W, C)`` or
        ``(N, P + h*w, C)``.
    layout
        Its :class:`Layout` (spatial).

    Returns
    -------
    torch.Tensor
        ``(N, C, H, W)``, a differentiable view of ``t`` (tokens: prefix dropped, patch
        tokens in row-major order reshaped to ``(h, w)``, as pytorch-grad-cam's ViT
        ``reshape_transform``).
    """
    _check_fits(t, layout)
    if layout.kind == "NCHW":
        return t
    if layout.kind == "NHWC":
        return t.permute(0, 3, 1, 2)
    h, w = layout.grid  # type: ignore[misc]
    return t[:, layout.prefix :].reshape(t.shape[0], h, w, t.shape[2]).permute(0, 3, 1, 2)


def from_nchw(t: torch.Tensor, layout: Layout) -> torch.Tensor:
    """Inverse of :func:`to_nchw`: an ``(N, C, H, W)`` tensor in the layer's own layout.

    Prefix tokens, which have no place on the grid, are zero. Used to send a seed built on
    the ``(N, C, H, W)`` view back through the layer's real output.

    Returns
    -------
    torch.Tensor
        ``(N, C, H, W)``, ``(N, H, W, C)`` or ``(N, P + H*W, C)``, contiguous.
    """
    if not layout.spatial or t.dim() != 4 or layout.grid != tuple(t.shape[2:]):
        raise LayerError(f"a tensor of shape {tuple(t.shape)} is not the (N, C, H, W) view of a layer with layout {layout}")
    if layout.kind == "NCHW":
        return t
    nhwc = t.permute(0, 2, 3, 1)
    if layout.kind == "NHWC":
        return nhwc.contiguous()
    n, c, h, w = t.shape
    prefix = t.new_zeros((n, layout.prefix, c))
    return torch.cat([prefix, nhwc.reshape(n, h * w, c)], dim=1)


# ---------------------------------------------------------------------------- the tracker

_PERMUTES: frozenset[Callable[..., Any]] = frozenset(
    {
        torch.permute, torch.Tensor.permute,
        torch.transpose, torch.Tensor.transpose, torch.swapaxes, torch.Tensor.swapaxes,
        torch.swapdims, torch.Tensor.swapdims,
        torch.movedim, torch.Tensor.movedim, torch.moveaxis, torch.Tensor.moveaxis,
    }
)  # fmt: skip
_RESHAPES: frozenset[Callable[..., Any]] = frozenset(
    {
        torch.reshape, torch.Tensor.reshape, torch.Tensor.view, torch.flatten, torch.Tensor.flatten,
        torch.unflatten, torch.Tensor.unflatten, torch.Tensor.view_as, torch.Tensor.reshape_as,
    }
)  # fmt: skip
_CATS: frozenset[Callable[..., Any]] = frozenset({torch.cat, torch.concat, torch.concatenate})
_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19)


def _tensors(values: Any) -> Iterator[torch.Tensor]:
    for v in values:
        if isinstance(v, torch.Tensor):
            yield v
        elif isinstance(v, (list, tuple)):
            yield from (u for u in v if isinstance(u, torch.Tensor))


def _permutation(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], rank: int) -> tuple[int, ...] | None:
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


def _permuted(layout: Layout, perm: tuple[int, ...]) -> Layout | None:
    if perm == tuple(range(len(perm))):
        return layout
    if layout.kind == "NCHW" and perm == (0, 2, 3, 1):
        return Layout("NHWC", layout.grid)
    if layout.kind == "NHWC" and perm == (0, 3, 1, 2):
        return Layout("NCHW", layout.grid)
    if layout.kind == "NCL" and perm == (0, 2, 1):
        return Layout("tokens", layout.grid, 0)
    if layout.kind == "tokens" and layout.prefix == 0 and perm == (0, 2, 1):
        return Layout("NCL", layout.grid)
    return None


def _reshaped(layout: Layout, src: Sequence[int], out: Sequence[int]) -> Layout | None:
    src, out = tuple(src), tuple(out)
    if src == out:
        return layout
    g = layout.grid
    if g is None or out[0] != src[0]:
        return None
    hw = g[0] * g[1]
    if layout.kind == "NCHW" and out == (src[0], src[1], hw):
        return Layout("NCL", g)
    if layout.kind == "NHWC" and out == (src[0], hw, src[3]):
        return Layout("tokens", g, 0)
    if layout.kind == "tokens" and layout.prefix == 0 and out == (src[0], *g, src[2]):
        return Layout("NHWC", g)
    if layout.kind == "NCL" and out == (src[0], src[1], *g):
        return Layout("NCHW", g)
    return None


class LayoutTracker(TorchFunctionMode):
    """Follow the layout of every tensor computed from the input during a forward pass.

    Enter it innermost (after any other engine mode), call :meth:`watch` on the input,
    run the forward, then ask :meth:`layout_of` for each recorded module output. Only
    the ``with`` block is affected; the model is not touched.

    Notes
    -----
    Tags are kept in a weak dictionary, so the tracker keeps no tensor alive.
    """

    def __init__(self) -> None:
        super().__init__()
        self._tags: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self._grids: dict[str, set[tuple[int, int]]] = {"NCHW": set(), "NHWC": set()}
        self._token_layouts: dict[int, set[Layout]] = {}
        self._batch = -1

    # -------------------------------------------------------------- recording
    def watch(self, x: torch.Tensor) -> None:
        """Declare ``x`` ``(N, C, H, W)``: the model's input."""
        self._batch = int(x.shape[0])
        self._tag(x, Layout("NCHW", (int(x.shape[2]), int(x.shape[3]))))

    def _tag(self, t: torch.Tensor, layout: Layout | None) -> None:
        # every output of an op on input-derived tensors is input-derived: "unknown" if not followed
        if layout is None or not _fits(t.shape, layout):
            layout = _UNKNOWN
        self._tags[t] = layout
        if layout.kind in self._grids:
            self._grids[layout.kind].add(layout.grid)  # type: ignore[arg-type]
        elif layout.kind == "tokens":
            self._token_layouts.setdefault(layout.tokens, set()).add(layout)

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        # every rank: a 6-D window partition carries "computed from the input" to the reassembled output
        if isinstance(out, torch.Tensor):
            outs: tuple[torch.Tensor, ...] = (out,)
        elif isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
            outs = tuple(o for o in out if isinstance(o, torch.Tensor))
        else:
            return out
        # our own bookkeeping (shapes, dims, the meta replay) must not go through the other modes
        with torch._C.DisableTorchFunction():
            self._observe(func, args, kwargs, outs)
        return out

    def _observe(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], outs: tuple[torch.Tensor, ...]) -> None:
        derived = [(t, self._tags[t]) for t in _tensors((*args, *kwargs.values())) if t in self._tags]
        if not derived or not outs:
            for o in outs:
                self._tags.pop(o, None)  # not computed from the input (parameters, constants)
            return
        tagged = [(t, lay) for t, lay in derived if lay.kind != "unknown"]
        first = args[0] if args else kwargs.get("input")
        src: torch.Tensor | None = first if isinstance(first, torch.Tensor) else None
        src_layout = self._tags.get(src) if src is not None else None
        if src_layout is not None and src_layout.kind == "unknown":
            src_layout = None
        if func in _PERMUTES and src is not None and src_layout is not None:
            perm = _permutation(func, args, kwargs, src.dim())
            self._tag(outs[0], None if perm is None else _permuted(src_layout, perm))
        elif func in _RESHAPES and src is not None and src_layout is not None:
            self._tag(outs[0], _reshaped(src_layout, src.shape, outs[0].shape))
        elif func in _CATS and outs[0].dim() == 3:
            self._tag(outs[0], self._cat_tokens(args, kwargs, outs[0]))
        elif func is torch.Tensor.__getitem__ and src is not None and src_layout is not None and src_layout.kind == "tokens":
            self._tag(outs[0], _token_slice(src_layout, args[1], src.shape, outs[0].shape))
        else:
            for o in outs:
                self._tag(o, _kept(o, tagged))

    def _cat_tokens(self, args: tuple[Any, ...], kwargs: dict[str, Any], out: torch.Tensor) -> Layout | None:
        parts = list(args[0] if args else kwargs.get("tensors", ()))
        dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        dim = dim + 3 if isinstance(dim, int) and dim < 0 else dim
        layouts = [self._tags.get(p) if isinstance(p, torch.Tensor) else None for p in parts]
        layouts = [None if lay is None or lay.kind == "unknown" else lay for lay in layouts]
        if dim != 1:
            return _kept(out, [(p, lay) for p, lay in zip(parts, layouts) if lay is not None])
        # [cls, (dist,) (registers,) patches]: untagged tokens in front of patch tokens are prefix tokens
        idx = [i for i, lay in enumerate(layouts) if lay is not None]
        if len(idx) != 1 or layouts[idx[0]].kind != "tokens" or idx[0] != len(parts) - 1:  # type: ignore[union-attr]
            return None
        lay = layouts[idx[0]]
        extra = sum(int(p.shape[1]) for p in parts[: idx[0]])
        return Layout("tokens", lay.grid, lay.prefix + extra)  # type: ignore[union-attr]

    # -------------------------------------------------------------- reading
    def layout_of(self, t: torch.Tensor) -> Layout:
        """The layout of a tensor computed during the tracked forward (a recorded module output).

        Parameters
        ----------
        t
            The tensor object itself, ``(N, ...)``.

        Returns
        -------
        Layout
            ``flat`` for ``(N, C)``; else its tracked layout; else, for a tensor computed from
            the input, the layout its shape agrees with among the grids seen (exactly one);
            else ``ambiguous`` (also for tensors not computed from the input at all).
        """
        if t.dim() == 2:
            return FLAT
        lay = self._tags.get(t)
        if lay is None:
            return AMBIGUOUS
        if lay.kind in SPATIAL_LAYOUTS:
            return lay
        shape = tuple(int(s) for s in t.shape)
        if shape[0] != self._batch:  # e.g. attention windows batched as (N * windows, ...)
            return AMBIGUOUS
        if len(shape) == 4:
            nchw = shape[2:] in self._grids["NCHW"]
            nhwc = shape[1:3] in self._grids["NHWC"]
            if nchw != nhwc:
                return Layout("NCHW", shape[2:]) if nchw else Layout("NHWC", shape[1:3])  # type: ignore[arg-type]
        elif len(shape) == 3:
            candidates = self._token_layouts.get(shape[1], set())
            if len(candidates) == 1:
                return next(iter(candidates))
        return AMBIGUOUS


def _kept(out: torch.Tensor, tagged: list[tuple[torch.Tensor, Layout]]) -> Layout | None:
    """Layout of the output of a rank-keeping op (norm, linear, conv, add, pad, roll, slice...)."""
    rank = out.dim()
    same = {lay for t, lay in tagged if t.dim() == rank and t.shape[0] == out.shape[0] and lay.kind != "flat"}
    kinds = {lay.kind for lay in same}
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    if kind == "NCHW":
        return Layout("NCHW", (int(out.shape[2]), int(out.shape[3])))
    if kind == "NHWC":
        return Layout("NHWC", (int(out.shape[1]), int(out.shape[2])))
    # tokens / NCL: the token axis must be the same tokens (a linear layer, a norm, an add)
    return same.pop() if len(same) == 1 else None


def _token_slice(layout: Layout, index: Any, src: Sequence[int], out: Sequence[int]) -> Layout | None:
    """``x[:, k:]`` drops ``k`` prefix tokens; ``x[..., a:b]`` keeps the tokens; anything else: no layout."""
    if len(out) != 3:
        return None
    if out[1] == src[1]:
        return layout
    idx = index if isinstance(index, tuple) else (index,)
    full = slice(None)
    if len(idx) >= 2 and idx[0] == full and isinstance(idx[1], slice) and all(i == full for i in idx[2:]):
        s = idx[1]
        start = s.start or 0
        if s.stop is None and s.step in (None, 1) and isinstance(start, int) and 0 <= start <= layout.prefix:
            return Layout("tokens", layout.grid, layout.prefix - start)
    return None
