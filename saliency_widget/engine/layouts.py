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
    Anything else, or a layer whose layout the evidence does not settle: attention maps
    ``(N, heads, T, T)``, heads split off the channels, window partitions
    ``(N, windows, pixels, C)`` (also when their sizes happen to equal a grid's), batches of
    windows ``(N * windows, ...)``, a grid with its rows and columns swapped, a padded grid
    (a window padding: the image covers part of it), a convolution over an attention map or
    over unfolded patches. Reported as such, never guessed.

The layout is decided from evidence, never from a shape. During the recorded forward pass a
:class:`LayoutTracker` (a ``TorchFunctionMode``) follows every tensor from the
``(N, C, H, W)`` input, op by op, as a product of factors per axis (batch, channels, digits of
the rows and columns; :mod:`.axes`): a permute ``(0, 2, 3, 1)`` of an NCHW tensor is NHWC with
the same grid, ``flatten(2).transpose(1, 2)`` (or a 6-D rearrange, or ``F.unfold``) of an
NCHW tensor is tokens on the patch grid, a channel shuffle keeps the grid, a window partition
is no grid and its reverse is the grid again, a padding (``F.pad``) makes a padded grid, no grid
until a crop removes the padding or a pooling or convolution makes a grid of it, a reduction
(max, mean) over the inner digits of the rows and columns pools them (Hiera's mask units),
attention (matmul, ``scaled_dot_product_attention``, einsum) keeps the token axis of its
queries, a concatenation of untagged tokens in front of patch tokens adds prefix tokens, a
convolution's output is NCHW on its own grid unless its input's last two axes are known to be
something else (an attention map's tokens, unfolded patches), and ops that keep the rank (norms,
linear layers, residual adds, slicing, rolling) keep the axes whose sizes they keep. A module
output the tracker could not follow is ``ambiguous``. :mod:`.layout_ops` lists the ops by family.

:func:`to_nchw` then views any spatial layer output as ``(N, C, H, W)`` (tokens: the prefix
dropped and the patch tokens reshaped, exactly pytorch-grad-cam's documented ViT / Swin
``reshape_transform``), and :func:`from_nchw` maps an ``(N, C, H, W)`` tensor (a backward
seed) back to the layer's own layout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

from ..errors import LayerError
from . import axes as ax
from . import layout_ops as ops
from .axes import Axes, Factor, canonical, combine, einsum_axes, fits, index_axes, kept_axes, matmul_axes, reshape_axes

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
    axes
        Inside the tracker, kind ``"axes"``: what each axis is made of (see :mod:`.axes`), for a
        tensor that has none of the layouts (a window partition, heads split off the channels).
    """

    kind: str
    grid: tuple[int, int] | None = None
    prefix: int = 0
    axes: Axes | None = field(default=None, repr=False)

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
    if layout.kind == "axes":
        return layout.axes is not None and fits(layout.axes, shape)
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

def _tensors(values: Any) -> Iterator[torch.Tensor]:
    for v in values:
        if isinstance(v, torch.Tensor):
            yield v
        elif isinstance(v, (list, tuple)):
            yield from (u for u in v if isinstance(u, torch.Tensor))


def _axes_of(layout: Layout, shape: Sequence[int]) -> Axes | None:
    """What each axis of a tensor with ``layout`` is made of (see :mod:`.axes`); None if not followed."""
    if layout.kind == "axes":
        return layout.axes
    g = layout.grid
    if g is None or not _fits(shape, layout):
        return None
    n, (h, w) = int(shape[0]), g
    batch = (Factor("n", n),)
    rows, cols = Factor("h", h, 1, h), Factor("w", w, 1, w)
    grid = (rows, cols)
    if layout.kind == "NCHW":
        return (batch, _chan(shape[1]), (rows,), (cols,))
    if layout.kind == "NHWC":
        return (batch, (rows,), (cols,), _chan(shape[3]))
    if layout.kind == "NCL":
        return (batch, _chan(shape[1]), grid)
    if layout.kind == "tokens":
        tok = grid if layout.prefix == 0 else (Factor("t", layout.tokens, layout.prefix, w),)
        return (batch, tok, _chan(shape[2]))
    return None


def _chan(size: int) -> tuple[Factor, ...]:
    return (Factor("c", int(size)),) if int(size) > 1 else ()


class LayoutTracker(TorchFunctionMode):
    """Follow the layout of every tensor computed from the input during a forward pass.

    Enter it innermost (after any other engine mode), call :meth:`watch` on the input,
    run the forward, then ask :meth:`layout_of` for each recorded module output. Only
    the ``with`` block is affected; the model is not touched.

    Notes
    -----
    Tags are kept in a weak dictionary, so the tracker keeps no tensor alive. Per op: a
    permute, reshape, view, flatten, unflatten, squeeze or unsqueeze regroups the factors of
    the axes (:mod:`.axes`), so rows and columns are followed through channel shuffles and
    window partitions and their reverse; a padding makes a padded grid (:mod:`.axes`); a
    reduction over axes drops them, pooling a grid when they are its inner digits; a
    convolution's output is ``(N, C, H, W)`` on its own grid unless its input's last two axes
    are known not to be rows and columns; matmul, ``scaled_dot_product_attention`` and einsum
    keep the row axis of their first operand and the column axis of the last (attention keeps
    the token axis of its queries); unbind and indexing drop or keep axes; concatenations of
    untagged tokens in front of patch tokens add prefix tokens; every other op that keeps the
    rank keeps the axes whose sizes it keeps.
    """

    def __init__(self) -> None:
        super().__init__()
        self._tags: WeakIdKeyDictionary = WeakIdKeyDictionary()
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

    def _layout(self, axes: Axes | None) -> Layout | None:
        """The layout named by ``axes`` (NCHW, NHWC, tokens, NCL), else an ``"axes"`` layout keeping them."""
        if axes is None:
            return None
        named = canonical(axes, self._batch)
        if named is None:
            return Layout("axes", axes=axes)
        return Layout(*named)

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

    def _known(self, t: Any) -> Layout | None:
        lay = self._tags.get(t) if isinstance(t, torch.Tensor) else None
        return None if lay is None or lay.kind == "unknown" else lay

    def _observe(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], outs: tuple[torch.Tensor, ...]) -> None:
        derived = [(t, self._tags[t]) for t in _tensors((*args, *kwargs.values())) if t in self._tags]
        if not derived or not outs:
            for o in outs:
                self._tags.pop(o, None)  # not computed from the input (parameters, constants)
            return
        tagged = [(t, lay) for t, lay in derived if lay.kind != "unknown"]
        first = args[0] if args else kwargs.get("input")
        src: torch.Tensor | None = first if isinstance(first, torch.Tensor) else None
        src_layout = self._known(src)
        out = outs[0]
        if func in ops.CONVS:
            axes = self._axes(src)
            kept = None if axes is None else ax.conv_axes(axes, out.shape)  # last two axes known to be no grid's
            if out.dim() != 4 or out.shape[0] != self._batch:
                self._tag(out, None)
            elif kept is not None:
                self._tag(out, self._layout(kept))
            else:
                self._tag(out, Layout("NCHW", (int(out.shape[2]), int(out.shape[3]))))
        elif func in ops.MATMULS or func is ops.SDPA or func is torch.einsum:
            self._tag(out, self._layout(self._product_axes(func, args, kwargs, out)))
        elif src is None or src_layout is None:
            if func in ops.CATS:
                self._tag(out, self._cat(args, kwargs, out))
            else:
                for o in outs:
                    self._tag(o, self._kept(o, tagged))
        elif func in ops.PERMUTES:
            perm = ops.permutation(func, args, kwargs, src.dim())
            axes = _axes_of(src_layout, src.shape)
            self._tag(out, None if perm is None or axes is None else self._layout(tuple(axes[i] for i in perm)))
        elif func in ops.RESHAPES:
            axes = _axes_of(src_layout, src.shape)
            self._tag(out, None if axes is None else self._layout(reshape_axes(axes, out.shape)))
        elif func in ops.UNBINDS:
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
            axes = _axes_of(src_layout, src.shape)
            if axes is not None and isinstance(dim, int):
                rest = axes[: dim % src.dim()] + axes[dim % src.dim() + 1 :]
                for o in outs:
                    self._tag(o, self._layout(rest))
        elif func is torch.Tensor.__getitem__:
            self._tag(out, self._index(src, src_layout, args[1], out))
        elif func is ops.UNFOLD and src_layout.kind == "NCHW":
            grid = ops.unfold_grid(src.shape, args, kwargs, out.shape)
            self._tag(out, None if grid is None else Layout("NCL", grid))
        elif func in ops.PADS:
            widths, axes = ops.pad_widths(args, kwargs), _axes_of(src_layout, src.shape)
            self._tag(out, None if widths is None or axes is None else self._layout(ax.pad_axes(axes, widths)))
        elif func in ops.REDUCTIONS and (out.dim() != src.dim() or src_layout.kind == "axes"):
            dims, axes = ops.reduced_dims(args, kwargs, src.dim(), out.dim()), _axes_of(src_layout, src.shape)
            reduced = None if dims is None or axes is None else self._layout(ax.reduce_axes(axes, dims, out.dim() == src.dim()))
            for o in outs:  # (values, indices) of a max over a dim; an elementwise max(a, b) keeps the rank
                self._tag(o, reduced if reduced is not None else self._kept(o, tagged))
        else:
            for o in outs:
                self._tag(o, self._kept(o, tagged))

    def _product_axes(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], out: torch.Tensor) -> Axes | None:
        """Axes of a matmul, an attention or an einsum output."""
        if func is torch.einsum:
            eq, *operands = args if args else (kwargs.get("equation"), *kwargs.get("operands", ()))
            if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
                operands = list(operands[0])
            if not isinstance(eq, str) or not all(isinstance(o, torch.Tensor) for o in operands):
                return None
            axes = [self._axes(o) for o in operands]
            return einsum_axes(eq, axes, [o.shape for o in operands], out.shape)
        if func is ops.SDPA:
            q, v = (args[0] if args else kwargs.get("query")), (args[2] if len(args) > 2 else kwargs.get("value"))
            qa, va = self._axes(q), self._axes(v)
            if qa is None or va is None:
                return None
            return qa[:-1] + va[-1:] if fits(qa[:-1] + va[-1:], out.shape) else None
        a, b = (args[0], args[1]) if len(args) > 1 else (kwargs.get("input"), kwargs.get("other", kwargs.get("mat2")))
        if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
            return None
        return matmul_axes(self._axes(a), self._axes(b), a.shape, b.shape, out.shape)

    def _axes(self, t: Any) -> Axes | None:
        lay = self._known(t)
        return None if lay is None else _axes_of(lay, t.shape)

    def _index(self, src: torch.Tensor, layout: Layout, index: Any, out: torch.Tensor) -> Layout | None:
        if layout.kind == "tokens":
            prefix = ops.token_slice_prefix(layout.prefix, index, src.shape, out.shape)
            return None if prefix is None else Layout("tokens", layout.grid, prefix)
        axes = _axes_of(layout, src.shape)
        got = None if axes is None else self._layout(index_axes(axes, index, out.shape))
        if (got is None or got.kind == "axes") and out.dim() == src.dim() and self._grid_kind(src, layout, out) in ("NCHW", "NHWC"):
            # a crop or a strided subsampling of a grid (padded or not): a new grid; a crop of its padding: the grid (got)
            return self._kept(out, [(src, layout)])
        return got

    def _cat(self, args: tuple[Any, ...], kwargs: dict[str, Any], out: torch.Tensor) -> Layout | None:
        parts = list(args[0] if args else kwargs.get("tensors", ()))
        dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        dim = dim + out.dim() if isinstance(dim, int) and dim < 0 else dim
        layouts = [self._known(p) for p in parts]
        if dim != 1 or out.dim() != 3:
            return self._kept(out, [(p, lay) for p, lay in zip(parts, layouts) if lay is not None])
        # [cls, (dist,) (registers,) patches]: untagged tokens in front of patch tokens are prefix tokens
        idx = [i for i, lay in enumerate(layouts) if lay is not None]
        if len(idx) != 1 or layouts[idx[0]].kind != "tokens" or idx[0] != len(parts) - 1:  # type: ignore[union-attr]
            return self._kept(out, [(p, lay) for p, lay in zip(parts, layouts) if lay is not None])
        lay = layouts[idx[0]]
        extra = sum(int(p.shape[1]) for p in parts[: idx[0]])
        return Layout("tokens", lay.grid, lay.prefix + extra)  # type: ignore[union-attr]

    def _kept(self, out: torch.Tensor, tagged: list[tuple[torch.Tensor, Layout]]) -> Layout | None:
        """Layout of the output of a rank-keeping op (norm, linear, conv, add, pad, roll, slice, split...)."""
        rank = out.dim()
        same = [(t, lay) for t, lay in tagged if t.dim() == rank and t.shape[0] == out.shape[0] and lay.kind != "flat"]
        kinds = {self._grid_kind(t, lay, out) for t, lay in same}
        if kinds and kinds <= {"NCHW", "NHWC"} and len(kinds) == 1:
            # a pooling or a strided slice of a grid (padded or not): the same layout on the output's grid
            kind = kinds.pop()
            return Layout(kind, (int(out.shape[2]), int(out.shape[3])) if kind == "NCHW" else (int(out.shape[1]), int(out.shape[2])))
        per = []
        for t, lay in same:
            axes = _axes_of(lay, t.shape)
            per.append(None if axes is None else kept_axes(axes, out.shape))
        agreed = combine(per, out.shape)
        if agreed is not None:
            return self._layout(agreed)
        # a residual add of a grid and a branch not on it (MLP-Mixer's token mixing): the output is on the grid
        named = {lay for lay in (self._layout(combine([p], out.shape)) for p in per) if lay is not None and lay.kind != "axes"}
        return named.pop() if len(named) == 1 else None

    def _grid_kind(self, t: torch.Tensor, lay: Layout, out: torch.Tensor) -> str:
        """NCHW / NHWC for a grid, and for a padded grid whose size ``out`` changes (a pooling after a padding); else the kind."""
        named = canonical(lay.axes, self._batch, padded=True) if lay.kind == "axes" and lay.axes is not None else None
        if named is not None and named[0] in ("NCHW", "NHWC") and out.dim() == 4:
            at = slice(2, 4) if named[0] == "NCHW" else slice(1, 3)
            return named[0] if t.shape[at] != out.shape[at] else lay.kind
        return lay.kind

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
            ``flat`` for ``(N, C)``; else its tracked layout when that is NCHW, NHWC or
            tokens; else ``ambiguous``: a window partition, an attention map, heads split off
            the channels, a tensor whose layout was not followed or not computed from the input.
            Never guessed from the shape alone.
        """
        if t.dim() == 2:
            return FLAT
        lay = self._tags.get(t)
        if lay is None or lay.kind not in SPATIAL_LAYOUTS or int(t.shape[0]) != self._batch:
            return AMBIGUOUS
        return lay
