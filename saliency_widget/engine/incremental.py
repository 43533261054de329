"""Exact incremental occlusion: recompute only what a patch changes (Krypton, Nakandala et al., SIGMOD 2019).

An occluding patch changes a small rectangle of the input, so a small rectangle of each early
feature map; the rest of every occluded copy equals the unoccluded forward. An
:class:`IncrementalPlan` traces the model with ``torch.fx``, runs the unoccluded forward
once keeping every node's output, and then, per batch of patches, carries each map's
changed rectangle (:class:`~.incremental_ops.Region`) through convolutions, pooling,
pointwise layers, sums and concatenations, reading the unchanged context from the kept
outputs. Where a rectangle covers its whole map, or a layer cannot take a rectangle
(adaptive pooling, flatten, linear, ...), the layer runs on the whole occluded maps, as the
full recompute would. Results equal the full recompute to float rounding.

:func:`build_plan` returns the reason instead of a plan when the model cannot be handled
(the user's forward hooks or pre-hooks, which the rectangles' direct ``F.conv2d`` & co. would
skip; ``torch.fx`` cannot trace it; BatchNorm with batch statistics; a constant that varies
along the rows or columns; or the traced forward differs from the model's, e.g. through an
in-place change of a view);
:func:`explain_plan` prints, layer by layer, what one patch costs. The model is never
changed: ``torch.fx`` builds a separate graph module that only refers to its layers, and
in-place operations run out of place on copies (later readers of the changed tensor read the
operation's result).
"""

from __future__ import annotations

import inspect
import operator
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from .capture import foreign_forward_hooks
from .checks import eval_mode
from .incremental_ops import (
    BINARY,
    POINTWISE_FUNCTIONS,
    POINTWISE_METHODS,
    POINTWISE_MODULES,
    Region,
    as_full,
    conv_params,
    materialize,
    read,
    union_rect,
    window_op,
    window_runner,
)

__all__ = ["IncrementalPlan", "batch_statistics", "build_plan", "explain_plan", "trace"]

_OUT_OF_PLACE = {operator.iadd: operator.add, operator.isub: operator.sub, operator.imul: operator.mul,
                 operator.itruediv: operator.truediv}


def _inplace(node: fx.Node, mod: nn.Module | None) -> bool:
    """Whether ``node`` changes its first argument in place (``x.relu_()``, ``+=``, ``inplace=True``)."""
    if node.op == "call_method":
        return str(node.target).endswith("_") and not str(node.target).endswith("__")
    if node.op == "call_module":
        return bool(getattr(mod, "inplace", False))
    if node.op == "call_function":
        return node.target in _OUT_OF_PLACE or bool(node.kwargs.get("inplace")) or node.target is torch.relu_
    return False


def _kind(node: fx.Node, mod: nn.Module | None) -> str:
    """How a node takes a changed rectangle: window, pointwise, binary, cat, meta or full."""
    if node.op == "call_module":
        if conv_params(mod) is not None:  # type: ignore[arg-type]
            return "window"
        if isinstance(mod, POINTWISE_MODULES):
            return "pointwise"
        if isinstance(mod, nn.BatchNorm2d) and mod.running_mean is not None and not mod.training:
            return "pointwise"  # eval BatchNorm: a per-channel affine map
        return "full"
    if node.op == "call_function":
        if node.target in POINTWISE_FUNCTIONS:
            return "pointwise"
        if node.target in BINARY:
            return "binary"
        if node.target is torch.cat:
            return "cat"
        if node.target is getattr:
            return "meta"
        return "full"
    if node.op == "call_method":
        if node.target in POINTWISE_METHODS:
            return "pointwise"
        if node.target in BINARY:
            return "binary"
        if node.target in ("size", "dim"):
            return "meta"
        return "full"
    return node.op  # placeholder, get_attr, output


@dataclass
class IncrementalPlan:
    """A traced model with its unoccluded forward kept, ready to score batches of patches.

    Build it with :func:`build_plan` (inside ``torch.no_grad()`` and eval mode).
    """

    gm: fx.GraphModule
    inputs: torch.Tensor  # (N, C, H, W) the unoccluded images
    kinds: dict[fx.Node, str]
    dynamic: set[fx.Node]  # nodes that depend on the input
    base: dict[fx.Node, Any]  # every node's unoccluded output
    last_use: dict[fx.Node, int]
    padded: dict[tuple[fx.Node, tuple[int, int], float], torch.Tensor] = field(default_factory=dict)
    whole_above: float = 0.5  # a rectangle over this fraction of its map becomes the whole map
    tau: float | None = None  # approximate mode: a rectangle's side is at most tau of its map's (None: exact)

    # ------------------------------------------------------------------ one node, whole tensors
    def _call(self, node: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run ``node`` on whole values; in-place operations run out of place (on a copy)."""
        if node.op == "call_module":
            mod = self.gm.get_submodule(str(node.target))
            if getattr(mod, "inplace", False) and args and isinstance(args[0], torch.Tensor):
                args = (args[0].clone(), *args[1:])
            return mod(*args, **kwargs)
        if node.op == "call_function":
            fn: Callable[..., Any] = _OUT_OF_PLACE.get(node.target, node.target)  # type: ignore[arg-type]
            if fn is torch.relu_:
                fn = torch.relu
            if "inplace" in kwargs:
                kwargs = {**kwargs, "inplace": False}
            elif _takes_inplace(fn) and len(args) > _inplace_index(fn):
                i = _inplace_index(fn)
                args = (*args[:i], False, *args[i + 1:])
            return fn(*args, **kwargs)
        if node.op == "call_method":
            self_, *rest = args
            if str(node.target).endswith("_") and not str(node.target).endswith("__"):
                self_ = self_.clone()
            return getattr(self_, str(node.target))(*rest, **kwargs)
        if node.op == "get_attr":
            obj: Any = self.gm
            for part in str(node.target).split("."):
                obj = getattr(obj, part)
            return obj
        raise RuntimeError(f"unexpected node {node.op}")  # pragma: no cover

    def _padded(self, node: fx.Node, pad: tuple[int, int], value: float) -> torch.Tensor:
        key = (node, pad, value)
        if key not in self.padded:
            b = self.base[node]
            self.padded[key] = b if pad == (0, 0) else torch.nn.functional.pad(b, (pad[1], pad[1], pad[0], pad[0]), value=value)
        return self.padded[key]

    # ------------------------------------------------------------------ one node, changed rectangles
    def _step(self, node: fx.Node, env: dict[fx.Node, Any], full: dict[fx.Node, Any]) -> Any:
        def val(a: Any) -> Any:
            return env[a] if a in self.dynamic else self.base[a]

        def whole(a: fx.Node) -> Any:
            v = env[a]
            if isinstance(v, Region):
                if a not in full:
                    full[a] = materialize(v)
                return full[a]
            return v

        kind = self.kinds[node]
        first = node.args[0] if node.args else None
        reg = env.get(first) if isinstance(first, fx.Node) and first in self.dynamic else None
        if isinstance(reg, Region):
            out = self._on_region(node, kind, reg, val)
            if out is not None:
                return out
        if kind == "cat":
            out = self._cat(node, val)
            if out is not None:
                return out
        args = fx.node.map_arg(node.args, lambda a: whole(a) if a in self.dynamic else self.base[a])
        kwargs = fx.node.map_arg(node.kwargs, lambda a: whole(a) if a in self.dynamic else self.base[a])
        return self._call(node, args, kwargs)  # type: ignore[arg-type]

    def _on_region(self, node: fx.Node, kind: str, reg: Region, val: Callable[[Any], Any]) -> Any:
        """The node on a rectangle, or None when it needs the whole map."""
        out_base = self.base[node]
        same = isinstance(out_base, torch.Tensor) and out_base.shape == reg.base.shape
        if kind == "window":
            mod = self.gm.get_submodule(str(node.target))
            k, s, p, d = conv_params(mod)  # type: ignore[misc]
            pad_value, run = window_runner(mod)
            inp = node.args[0]
            assert isinstance(inp, fx.Node)  # noqa: S101 - reg came from it
            return window_op(reg, kind, k, s, p, d, self._padded(inp, p, pad_value), tuple(out_base.shape[-2:]),  # type: ignore[arg-type]
                             run, out_base, self.tau)
        if kind == "meta":
            if node.op == "call_function" and node.args[1] == "shape":
                return reg.shape
            if node.op == "call_function" and node.args[1] in ("dtype", "device"):
                return getattr(reg.r, str(node.args[1]))
            if node.op == "call_method" and node.target == "dim":
                return 4
            if node.op == "call_method" and node.target == "size":
                dims = [*node.args[1:], *node.kwargs.values()]
                return reg.shape if not dims else reg.shape[int(dims[0])]  # type: ignore[arg-type]
            return None
        if kind == "pointwise" and same:
            if any(isinstance(val(a), Region) for a in node.all_input_nodes[1:]):
                return None
            args = fx.node.map_arg(node.args[1:], val)
            kwargs = fx.node.map_arg(node.kwargs, val)
            r = self._call(node, (reg.r, *args), kwargs)  # type: ignore[arg-type]
            return Region(r, reg.ys, reg.xs, out_base, reg.img)
        if kind == "binary" and same:
            others = [a for a in node.args[1:2]]
            other = val(others[0]) if others and isinstance(others[0], fx.Node) else (others[0] if others else None)
            if isinstance(other, Region) and other.base.shape[-2:] == reg.base.shape[-2:]:
                ys, xs, h, w = union_rect([reg, other])
                a = read(reg, ys, xs, h, w, reg.base, (0, 0))
                b = read(other, ys, xs, h, w, other.base, (0, 0))
                r = self._call(node, (a, b, *fx.node.map_arg(node.args[2:], val)), fx.node.map_arg(node.kwargs, val))  # type: ignore[arg-type]
                return r if (h, w) == tuple(reg.base.shape[-2:]) else Region(r, ys, xs, out_base, reg.img)
            const = not (isinstance(others[0], fx.Node) and others[0] in self.dynamic) if others else True
            if const and not (isinstance(other, torch.Tensor) and other.dim() >= 2 and tuple(other.shape[-2:]) != (1, 1)):
                args = fx.node.map_arg(node.args[1:], val)
                r = self._call(node, (reg.r, *args), fx.node.map_arg(node.kwargs, val))  # type: ignore[arg-type]
                return Region(r, reg.ys, reg.xs, out_base, reg.img)
        return None

    def _cat(self, node: fx.Node, val: Callable[[Any], Any]) -> Any:
        """``torch.cat`` of rectangles along the channels, on their union; None otherwise."""
        items = node.args[0]
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        if dim not in (1, -3) or not isinstance(items, (list, tuple)) or not items:
            return None
        regs = [val(a) if isinstance(a, fx.Node) and a in self.dynamic else None for a in items]
        if not all(isinstance(g, Region) for g in regs):
            return None
        rs: list[Region] = regs  # type: ignore[assignment]
        if len({g.base.shape[-2:] for g in rs}) != 1:
            return None
        ys, xs, h, w = union_rect(rs)
        r = torch.cat([read(g, ys, xs, h, w, g.base, (0, 0)) for g in rs], 1)
        return r if (h, w) == tuple(rs[0].base.shape[-2:]) else Region(r, ys, xs, self.base[node], rs[0].img)

    # ------------------------------------------------------------------ a batch of patches
    def run(self, img: torch.Tensor, corners: torch.Tensor, window: tuple[int, int], fill: torch.Tensor,
            log: list[tuple[str, str, str]] | None = None) -> Any:
        """The model's output on occluded copies: image ``img[b]`` with a patch of ``fill`` at ``corners[b]``.

        Parameters
        ----------
        img
            ``(B,)`` int64 image index of each copy.
        corners
            ``(B, 2)`` int64 top-left corner ``(y, x)`` of each patch.
        window
            Patch size ``(wy, wx)``.
        fill
            Patch value: a scalar or ``(C, 1, 1)`` tensor.
        log
            When a list, one ``(node, kind, rectangle)`` row per node is appended.
        """
        env: dict[fx.Node, Any] = {}
        full: dict[fx.Node, Any] = {}
        C = self.inputs.shape[1]
        for i, node in enumerate(self.gm.graph.nodes):
            if node not in self.dynamic:
                continue
            if node.op == "placeholder":
                r = torch.broadcast_to(fill, (img.shape[0], C, *window)).clone()
                env[node] = Region(r, corners[:, 0].contiguous(), corners[:, 1].contiguous(), self.inputs, img)
            elif node.op == "output":
                return fx.node.map_arg(node.args[0], lambda a: as_full(env[a]) if a in self.dynamic else self.base[a])  # type: ignore[arg-type,return-value]
            else:
                v = self._step(node, env, full)
                if isinstance(v, Region) and v.r.shape[-2] * v.r.shape[-1] > self.whole_above * v.base.shape[-2] * v.base.shape[-1]:
                    v = materialize(v)  # nearly the whole map: cheaper as one tensor than as a rectangle
                env[node] = v
            if log is not None:
                v = env[node]
                where = (f"{tuple(v.r.shape[-2:])} of {tuple(v.base.shape[-2:])}" if isinstance(v, Region)
                         else "whole" if isinstance(v, torch.Tensor) else type(v).__name__)
                log.append((node.name, self.kinds[node], where))
            for a in node.all_input_nodes:
                if self.last_use.get(a) == i:
                    env.pop(a, None)
                    full.pop(a, None)
        raise RuntimeError("graph without output")  # pragma: no cover


class _OwnThreadTracer(fx.Tracer):
    """``torch.fx``'s tracer, leaving the forwards of other threads alone.

    While it traces, torch.fx replaces ``nn.Module.__call__`` and ``__getattr__`` for the whole
    process: with the stock tracer, another session's forward (any model, any thread) running
    at that moment would get ``Proxy`` objects back instead of tensors. Here module calls and
    attribute reads from any other thread than the tracing one run as usual.
    """

    def __init__(self) -> None:
        super().__init__()
        self._owner = threading.get_ident()

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A node for a leaf module in the tracing thread; a plain call anywhere else."""
        if threading.get_ident() != self._owner:
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        """A parameter proxy in the tracing thread; the attribute itself anywhere else."""
        if threading.get_ident() != self._owner:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)


# torch.fx keeps its patches in one process-wide stack, which two traces at once would corrupt
# (one could leave nn.Module.__call__ patched for good): one trace at a time.
_trace_lock = threading.Lock()


def trace(model: nn.Module) -> fx.GraphModule:
    """``torch.fx.symbolic_trace(model)``, safe while other threads run models.

    Raises whatever tracing raises (``torch.fx`` cannot trace data-dependent control flow).
    """
    with _trace_lock:
        tracer = _OwnThreadTracer()
        graph = tracer.trace(model)
    return fx.GraphModule(tracer.root, graph, type(model).__name__)


def _takes_inplace(fn: Any) -> bool:
    try:
        return "inplace" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _inplace_index(fn: Any) -> int:
    return list(inspect.signature(fn).parameters).index("inplace")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b)


def build_plan(model: nn.Module, inputs: torch.Tensor, agrees: Callable[[Any], bool] | None = None) -> IncrementalPlan | str:
    """Trace ``model`` and run its unoccluded forward on ``inputs`` ``(N, C, H, W)``, keeping every output.

    Call it under ``torch.no_grad()`` with the model in eval mode. ``agrees(output)`` checks
    the traced forward's output against the model's (default: one more ``model(inputs)``, compared
    with ``allclose``). Returns the plan, or the reason (a sentence) why incremental occlusion
    cannot run on this model.
    """
    if inputs.dim() != 4:
        return f"the input has shape {tuple(inputs.shape)}, not (N, C, H, W)"
    hooks = foreign_forward_hooks(model)
    if hooks:
        # the changed rectangles run F.conv2d & co. directly, which skips a module's hooks
        return (f"the model has {_phrase(hooks)}; the changed-rectangle path calls the layers' functions "
                "directly and would skip it")
    try:
        gm = trace(model)
    except Exception as err:  # any tracing failure means: run the full recompute
        return f"torch.fx cannot trace {type(model).__name__}: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
    nodes = list(gm.graph.nodes)
    holders = [n for n in nodes if n.op == "placeholder"]
    if len(holders) != 1:
        return f"the traced forward takes {len(holders)} inputs, not one image batch"
    dynamic: set[fx.Node] = set(holders)
    kinds: dict[fx.Node, str] = {}
    order = {n: i for i, n in enumerate(nodes)}
    last_use: dict[fx.Node, int] = {}
    for n in nodes:
        mod = gm.get_submodule(str(n.target)) if n.op == "call_module" else None
        kinds[n] = _kind(n, mod)
        if isinstance(mod, nn.modules.batchnorm._BatchNorm) and (mod.training or mod.running_mean is None):
            return (f"{n.target} ({type(mod).__name__}) normalises with batch statistics, which mix the occluded "
                    "copies (occlusion scores each copy alone, in batches of one)")
        if any(a in dynamic for a in n.all_input_nodes):
            dynamic.add(n)
        for a in n.all_input_nodes:
            last_use[a] = order[n]
        if _inplace(n, mod) and n.args and isinstance(n.args[0], fx.Node):
            # ``t.relu_(); use(t)``: the plan runs in-place operations out of place, so later
            # readers of t read the operation's result instead (exact: that is t's value then)
            for u in [u for u in n.args[0].users if order[u] > order[n]]:
                u.replace_input_with(n.args[0], n)
    plan = IncrementalPlan(gm, inputs, kinds, dynamic, {}, last_use)
    env = plan.base
    try:
        for n in nodes:
            if n.op == "placeholder":
                env[n] = inputs
            elif n.op == "output":
                got = fx.node.map_arg(n.args[0], lambda a: env[a])
            else:
                env[n] = plan._call(n, fx.node.map_arg(n.args, lambda a: env[a]), fx.node.map_arg(n.kwargs, lambda a: env[a]))  # type: ignore[arg-type]
        ok = agrees(got) if agrees is not None else _same(got, model(inputs.clone()))
    except Exception as err:
        return f"the traced forward fails: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
    if not ok:
        return "the traced forward's output differs from the model's (data-dependent control flow or aliasing)"
    for n in nodes:
        if kinds[n] != "binary" or n not in dynamic:
            continue
        for a in n.args[:2]:
            c = env.get(a) if isinstance(a, fx.Node) and a not in dynamic else a
            if isinstance(c, torch.Tensor) and any(int(d) != 1 for d in c.shape[-2:]):
                # a rectangle would meet the wrong columns (or rows) of the constant
                return (f"{n.name} ({n.target if isinstance(n.target, str) else getattr(n.target, '__name__', n.target)}) "
                        f"combines a feature map with a constant of shape {tuple(c.shape)} that varies along the "
                        "image's rows or columns; changed rectangles take only constants that are the same at "
                        "every position")
    return plan


def batch_statistics(model: nn.Module) -> list[str]:
    """The modules of ``model`` that normalise with batch statistics even in eval mode, in one phrase each.

    A BatchNorm without running statistics (``track_running_stats=False``) normalises every
    forward by the batch it is given, so an occluded copy's score would depend on the copies
    batched with it (and on ``batch_size``); occlusion scores each copy alone instead. Modules
    in training mode are not listed: occlusion runs in eval mode, where they use their running
    statistics.
    """
    return [
        f"{name!r} ({type(m).__name__}) normalises with batch statistics (it keeps no running statistics)"
        for name, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.running_mean is None or m.running_var is None)
    ]


def _phrase(items: list[str], most: int = 3) -> str:
    """``"a, b and c"``; beyond ``most`` items, ``"a, b, c and 2 more"``."""
    if len(items) > most:
        return ", ".join(items[:most]) + f" and {len(items) - most} more"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def explain_plan(model: nn.Module, inputs: torch.Tensor, window: int | tuple[int, int] = 16) -> str:
    """How incremental occlusion runs on ``model`` for ``inputs`` ``(N, C, H, W)``: a readable plan.

    Either the reason it falls back to the full recompute, or one line per node of the traced
    forward: its kind (window, pointwise, binary, cat, full, ...) and the rectangle a patch of
    ``window`` pixels in the top-left corner changes (``whole``: the full map is computed).
    """
    wy, wx = (window, window) if isinstance(window, int) else window
    with torch.no_grad(), eval_mode(model):
        plan = build_plan(model, inputs)
        if isinstance(plan, str):
            return f"full recompute: {plan}"
        rows: list[tuple[str, str, str]] = []
        try:
            plan.run(torch.zeros(1, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long), (wy, wx),
                     torch.zeros((), dtype=inputs.dtype), rows)
        except RuntimeError as err:  # occlusion falls back to the full path the same way
            return f"full recompute: the incremental plan fails: {type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}"
    first = next((r[0] for r in rows if r[2] == "whole"), None)
    head = f"incremental: a {wy}x{wx} patch changes a rectangle of each map; whole maps from node {first} on"
    return "\n".join([head, *(f"  {n:<32} {k:<10} {w}" for n, k, w in rows)])
