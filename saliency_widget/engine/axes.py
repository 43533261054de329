"""Axis algebra for the layout tracker: what each axis of a tensor is made of, through any reshape.

Every axis of a tracked tensor is a product of *factors*, most significant first. A factor is
the batch (``"n"``), channels (``"c"``), a digit of the rows (``"h"``) or columns (``"w"``) of a
grid, a token axis with prefix tokens (``"t"``, never split), or something not followed (``"x"``).
A row digit knows its place in the row index: ``row = ... + digit * stride + ...`` over a grid of
``total`` rows. So a reshape that splits the rows into ``(H / P, P)`` gives an *outer* digit
(``stride = P``) and an *inner* one (``stride = 1``); a reshape that merges them back in that order
gives the rows again.

This is what makes layouts follow structure rather than shapes:

* a channel shuffle (``view(N, g, C / g, H, W) -> transpose(1, 2) -> view(N, C, H, W)``) only
  reorders channel factors: the rows and columns stay whole, the result is ``(N, C, H, W)``;
* a window partition (``(N, C, H, W) -> (N, H/P * W/P, P * P, C)``) puts outer digits on one axis
  and inner digits on another: no axis is the grid, so it is never read as one, whatever its sizes;
* a patch embedding written as a reshape (einops ``b c (h p1) (w p2) -> b (h w) (p1 p2 c)``) puts
  the outer digits (the patch grid) on the token axis and the inner digits among the channels:
  tokens on the ``(H / p1, W / p2)`` grid;
* the reverse of a partition merges outer and inner digits back: the grid again;
* a padding (``F.pad``) of a whole grid axis makes the digit of a *padded* grid (``pad``): not the
  image's grid (a window padding of a 4 x 6 grid to one 14 x 14 window is mostly zeros), but
  followed through a partition and its reverse, and the crop that removes the padding gives the
  grid back;
* a reduction (``amax``, ``mean``...) over the least significant digits of the rows and columns is a
  pooling: the digits left are those of the coarser grid (Hiera's mask-unit pooling).

:func:`canonical` names the layout an axes description has (NCHW, NHWC, tokens, or the tracker's
internal NCL), or None for anything else (window partitions, attention maps, head splits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

__all__ = [
    "Axes", "Factor", "canonical", "combine", "conv_axes", "einsum_axes", "index_axes", "kept_axes", "matmul_axes",
    "pad_axes", "reduce_axes", "reshape_axes",
]  # fmt: skip


class Factor(NamedTuple):
    """One factor of an axis.

    Attributes
    ----------
    kind
        ``"n"`` batch, ``"c"`` channels, ``"h"`` / ``"w"`` a digit of the grid's rows / columns,
        ``"t"`` a token axis with prefix tokens (atomic), ``"x"`` not followed.
    size
        Number of values along the factor.
    stride
        ``"h"`` / ``"w"``: the digit's weight in the row / column index; ``"t"``: the prefix count.
    total
        ``"h"`` / ``"w"``: rows / columns of the whole grid; ``"t"``: the grid's columns.
    pad
        ``"h"`` / ``"w"``: ``(before, after)`` rows / columns a padding added to the image's grid
        (``total`` counts them); ``(0, 0)`` for the image's own grid.
    """

    kind: str
    size: int
    stride: int = 1
    total: int = 0
    pad: tuple[int, int] = (0, 0)

    @property
    def outer(self) -> bool:
        """A grid digit that is the most significant one (the whole axis, or the coarse grid of a split)."""
        return self.kind in "hw" and self.stride * self.size == self.total


Axis = tuple[Factor, ...]
Axes = tuple[Axis, ...]


def _size(axis: Axis) -> int:
    s = 1
    for f in axis:
        s *= f.size
    return s


def fits(axes: Axes, shape: Sequence[int]) -> bool:
    """Whether ``axes`` describes a tensor of ``shape``."""
    return len(axes) == len(shape) and all(_size(a) == int(s) for a, s in zip(axes, shape))


def _merge(axis: Axis) -> Axis:
    """Adjacent factors that are one: two digits of the same grid in order, channel with channel."""
    out: list[Factor] = []
    for f in axis:
        if f.size == 1 and f.kind not in "nthw":  # a grid of one row keeps its row axis
            continue
        if out:
            p = out[-1]
            if p.kind == f.kind == "c":
                out[-1] = Factor("c", p.size * f.size)
                continue
            if p.kind == f.kind and p.kind in "hw" and (p.total, p.pad) == (f.total, f.pad) and p.stride == f.stride * f.size:
                out[-1] = Factor(p.kind, p.size * f.size, f.stride, f.total, f.pad)
                continue
        out.append(f)
    return tuple(out)


def reshape_axes(axes: Axes, shape: Sequence[int]) -> Axes | None:
    """The axes after ``reshape(shape)`` (also view, flatten, unflatten): factors regrouped in order.

    A factor is split where an output axis needs part of it (a grid digit into an outer and an
    inner digit); None when the sizes do not divide (a reshape that mixes values across factors).
    """
    todo = [f for a in axes for f in a]
    todo.reverse()  # a stack: the next factor is todo[-1]
    out: list[Axis] = []
    for s in (int(v) for v in shape):
        taken: list[Factor] = []
        if s == 1:
            if todo and todo[-1].size == 1:
                taken.append(todo.pop())
            out.append(tuple(taken))
            continue
        need = s
        while need > 1:
            if not todo:
                return None
            f = todo.pop()
            if f.size == 1:
                taken.append(f)
            elif need % f.size == 0:
                taken.append(f)
                need //= f.size
            elif f.size % need == 0:
                inner = f.size // need
                if f.kind in "hw":
                    taken.append(Factor(f.kind, need, f.stride * inner, f.total, f.pad))
                    todo.append(Factor(f.kind, inner, f.stride, f.total, f.pad))
                else:  # channels split into channels; the batch or a token axis split is not followed
                    kind = "c" if f.kind == "c" else "x"
                    taken.append(Factor(kind, need))
                    todo.append(Factor(kind, inner))
                need = 1
            else:
                return None
        out.append(_merge(tuple(taken)))
    if any(f.size != 1 for f in todo):
        return None
    return tuple(out)


def _is_channels(axis: Axis) -> bool:
    # channels, possibly with inner grid digits (the pixels of a patch, a space-to-depth)
    return all(f.kind == "c" or f.size == 1 or (f.kind in "hw" and not f.outer) for f in axis)


def _grid_axis(axis: Axis, kind: str, padded: bool = False) -> int | None:
    """Rows (``kind="h"``) or columns of the grid if ``axis`` is exactly that grid axis (outer digit), else None."""
    if len(axis) == 1 and axis[0].kind == kind and axis[0].outer and (padded or axis[0].pad == (0, 0)):
        return axis[0].size
    return None


def canonical(axes: Axes, batch: int, padded: bool = False) -> tuple[str, tuple[int, int] | None, int] | None:
    """``(kind, grid, prefix)`` of the layout ``axes`` has, or None when it has none of them.

    ``kind`` is ``"NCHW"``, ``"NHWC"``, ``"tokens"`` or ``"NCL"`` (``(N, C, h*w)``). A padded grid
    is none of them, unless ``padded`` (the tracker's own question: is it a grid but for the padding?).
    """
    if not axes or len(axes[0]) != 1 or axes[0][0].kind != "n" or axes[0][0].size != batch:
        return None
    if len(axes) == 4:
        if _is_channels(axes[1]):
            h, w = _grid_axis(axes[2], "h", padded), _grid_axis(axes[3], "w", padded)
            if h is not None and w is not None:
                return ("NCHW", (h, w), 0)
        if _is_channels(axes[3]):
            h, w = _grid_axis(axes[1], "h", padded), _grid_axis(axes[2], "w", padded)
            if h is not None and w is not None:
                return ("NHWC", (h, w), 0)
        return None
    if len(axes) == 3:
        for tok, chan, kind in ((axes[1], axes[2], "tokens"), (axes[2], axes[1], "NCL")):
            if not _is_channels(chan):
                continue
            if len(tok) == 2 and _grid_axis(tok[:1], "h", padded) and _grid_axis(tok[1:], "w", padded):
                return (kind, (tok[0].size, tok[1].size), 0)
            if kind == "tokens" and len(tok) == 1 and tok[0].kind == "t":
                t = tok[0]
                return ("tokens", ((t.size - t.stride) // t.total, t.total), t.stride)
    return None


def _changed(axis: Axis, size: int) -> Axis:
    """An axis whose size an op changed: still channels if it was channels, else not followed."""
    if _size(axis) == size:
        return axis
    if size == 1:
        return ()
    return (Factor("c" if axis and all(f.kind == "c" for f in axis) else "x", size),)


def kept_axes(axes: Axes, shape: Sequence[int]) -> tuple[Axis | None, ...] | None:
    """Axes of the output of a rank-keeping op (norm, linear, add, split, cat) of shape ``shape``.

    An axis of size 1 broadcast to a larger one says nothing about the output's axis: None there.
    """
    if len(axes) != len(shape):
        return None
    return tuple(None if _size(a) == 1 and int(s) > 1 else _changed(a, int(s)) for a, s in zip(axes, shape))


def combine(candidates: Sequence[tuple[Axis | None, ...] | None], shape: Sequence[int]) -> Axes | None:
    """The axes the operands of an elementwise op agree on (broadcast axes left to the others); None on a conflict."""
    if not candidates or any(c is None for c in candidates):
        return None
    out: list[Axis] = []
    for i, size in enumerate(shape):
        seen = {c[i] for c in candidates if c is not None and c[i] is not None}
        if len(seen) > 1:
            return None
        out.append(seen.pop() if seen else ((Factor("x", int(size)),) if int(size) > 1 else ()))  # type: ignore[arg-type]
    return tuple(out)


def index_axes(axes: Axes, index: object, shape: Sequence[int]) -> Axes | None:
    """Axes of ``t[index]`` for an index of ints, slices, None and one Ellipsis; None otherwise."""
    idx = index if isinstance(index, tuple) else (index,)
    if sum(i is Ellipsis for i in idx) > 1 or not all(isinstance(i, (int, slice)) or i is None or i is Ellipsis for i in idx):
        return None
    used = sum(isinstance(i, (int, slice)) for i in idx)
    if used > len(axes):
        return None
    expanded: list[object] = []
    for i in idx:
        if i is Ellipsis:
            expanded.extend([slice(None)] * (len(axes) - used))
        else:
            expanded.append(i)
    if not any(i is Ellipsis for i in idx):
        expanded.extend([slice(None)] * (len(axes) - used))
    out: list[Axis] = []
    k = 0
    for i in expanded:
        if i is None:
            out.append(())
        elif isinstance(i, int):
            k += 1
        else:
            out.append(_unpadded(axes[k], i))  # type: ignore[arg-type]
            k += 1
    if len(out) != len(shape):
        return None
    return tuple(_changed(a, int(s)) for a, s in zip(out, shape))


def _unpadded(axis: Axis, index: slice) -> Axis:
    """``axis[index]``'s factors when the slice crops exactly the padding off a padded grid axis; else ``axis``."""
    if len(axis) != 1 or not axis[0].outer or axis[0].pad == (0, 0):
        return axis
    f = axis[0]
    start, stop, step = index.indices(f.size)
    size = f.total - f.pad[0] - f.pad[1]
    if step == 1 and start == f.pad[0] and stop - start == size:
        return (Factor(f.kind, size, 1, size),)
    return axis


def pad_axes(axes: Axes, pads: Sequence[int]) -> Axes:
    """Axes after ``F.pad(t, pads)`` (``pads``: ``(before, after)`` pairs from the last axis backwards).

    A whole grid axis padded is the axis of a padded grid (see :class:`Factor`); any other axis
    whose size changes is channels if it was, else not followed.
    """
    out = list(axes)
    for i in range(min(len(pads) // 2, len(axes))):
        before, after = int(pads[2 * i]), int(pads[2 * i + 1])
        d = len(axes) - 1 - i
        size = _size(axes[d]) + before + after
        if (before, after) == (0, 0):
            continue
        f = axes[d][0] if len(axes[d]) == 1 else None
        if f is not None and f.outer:
            out[d] = (Factor(f.kind, size, 1, size, (f.pad[0] + before, f.pad[1] + after)),)
        else:
            out[d] = _changed(axes[d], size)
    return tuple(out)


def reduce_axes(axes: Axes, dims: Sequence[int], keepdim: bool) -> Axes:
    """Axes after a reduction (max, mean, sum...) over ``dims``: those axes dropped (size 1 if ``keepdim``).

    A reduction over the least significant digits of a grid's rows (or columns) pools them: the
    digits left are renumbered as the digits of the coarser grid (``total / pooled``), so that a
    reduction over the inner digits of every window gives the pooled grid (Hiera's mask-unit pooling).
    """
    drop = {d % len(axes) for d in dims}
    gone = [f for d in drop for f in axes[d]]
    kept = [() if i in drop else a for i, a in enumerate(axes) if keepdim or i not in drop]
    for kind in "hw":
        pooled = [f for f in gone if f.kind == kind and f.size > 1]
        left = [f for a in kept for f in a if f.kind == kind and f.size > 1]
        if not pooled or not left or len({(f.total, f.pad) for f in pooled + left}) != 1 or pooled[0].pad != (0, 0):
            continue
        s = min(f.stride for f in left)
        if _size(tuple(pooled)) != s or any(f.stride >= s for f in pooled):
            continue  # not the least significant digits: not a pooling of the grid
        kept = [tuple(Factor(kind, f.size, max(1, f.stride // s), f.total // s) if f.kind == kind else f for f in a) for a in kept]
    return tuple(_merge(a) for a in kept)


def conv_axes(axes: Axes, shape: Sequence[int]) -> Axes | None:
    """Axes of a 2-D convolution of a tensor with ``axes``, or None when its output is a grid of its own.

    A convolution makes ``(N, C, H, W)`` of its input's last two axes: a grid again after any
    reshape that keeps rows on axis 2 and columns on axis 3 (or that the tracker lost). An input
    whose axis 2 or 3 is known to be something else (tokens, heads, channels, the other grid axis:
    a talking-head convolution over an attention map ``(N, heads, T, T)``, MobileViT-v2's
    convolutions over unfolded patches ``(N, C, pixels, patches)``) keeps those axes: no grid.
    """
    if len(axes) != 4 or len(shape) != 4:
        return None
    if all(f.kind in "hx" or f.size == 1 for f in axes[2]) and all(f.kind in "wx" or f.size == 1 for f in axes[3]):
        return None
    return (axes[0], _changed(axes[1], int(shape[1])), _changed(axes[2], int(shape[2])), _changed(axes[3], int(shape[3])))


def matmul_axes(a: Axes | None, b: Axes | None, a_shape: Sequence[int], b_shape: Sequence[int], shape: Sequence[int]) -> Axes | None:
    """Axes of ``a @ b``: the broadcast batch axes, ``a``'s rows and ``b``'s columns.

    An operand that is not followed (a weight) contributes plain channels where the other's
    contracted axis was channels.
    """
    if len(a_shape) < 2 or len(b_shape) < 2 or len(shape) < 2 or (a is None and b is None):
        return None
    r = len(shape)
    out: list[Axis] = []
    for i in range(r - 2):
        size = int(shape[i])
        pick: Axis | None = None
        for ax, sh in ((a, a_shape), (b, b_shape)):
            j = i - (r - len(sh))
            if ax is not None and 0 <= j < len(sh) - 2 and int(sh[j]) == size:
                pick = ax[j]
                break
        out.append(pick if pick is not None else ((Factor("x", size),) if size > 1 else ()))
    rows = a[-2] if a is not None else _changed(b[-2], int(shape[-2])) if b is not None else ()  # type: ignore[index]
    cols = b[-1] if b is not None else _changed(a[-1], int(shape[-1])) if a is not None else ()
    out.extend([_changed(rows, int(shape[-2])), _changed(cols, int(shape[-1]))])
    return tuple(out)


def einsum_axes(equation: str, operands: Sequence[Axes | None], shapes: Sequence[Sequence[int]], shape: Sequence[int]) -> Axes | None:
    """Axes of ``torch.einsum(equation, *operands)``: each output letter's axis from the first followed operand that has it."""
    eq = equation.replace(" ", "")
    if "..." in eq or "->" not in eq:
        return None
    ins, res = eq.split("->")
    terms = ins.split(",")
    if len(terms) != len(operands) or len(res) != len(shape):
        return None
    out: list[Axis] = []
    for letter, size in zip(res, shape):
        found: Axis | None = None
        for term, ax, sh in zip(terms, operands, shapes):
            if ax is not None and letter in term and len(term) == len(sh) and int(sh[term.index(letter)]) == int(size):
                found = ax[term.index(letter)]
                break
        out.append(found if found is not None else ((Factor("x", int(size)),) if int(size) > 1 else ()))
    return tuple(out)
