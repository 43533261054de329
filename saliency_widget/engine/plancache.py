"""Incremental occlusion plans, kept between calls and dropped when the model changes.

Building a plan (:func:`~.incremental.build_plan`) costs one ``torch.fx`` trace and one forward
pass that keeps every intermediate output. The widget asks for the occlusion map of the same
image again and again (another class, back from another method), so the plan is kept per model
and used again when all of these hold:

* the same inputs (shape, dtype, device and values), the same window, stride and
  ``approximate`` setting, and the same autocast and TF32 settings;
* the same parameters and buffers: each one's identity, storage (``data_ptr``) and version
  counter (``_version``, bumped by every in-place change: an optimiser step,
  ``load_state_dict``, ``with torch.no_grad(): p.mul_(2)``) and the same submodules;
* no forward hook or pre-hook of the user's on any module, nor a global one (the plan calls
  the layers' functions directly and would skip them: :func:`~.incremental.build_plan` then
  refuses, and nothing is cached);
* the plan's unoccluded output still agrees with the model's fresh one (``agrees``): this
  also catches writes the version counters cannot see (``p.data.copy_(...)``).

At most :data:`MAX_PER_MODEL` plans per model are kept (they hold every intermediate output of
their inputs); they go with the model (weak references) or with :func:`clear_plans`.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from .capture import foreign_forward_hooks
from .incremental import IncrementalPlan, build_plan

__all__ = ["MAX_PER_MODEL", "cached_plan", "clear_plans", "kept_plans", "model_state"]

MAX_PER_MODEL = 2

_lock = threading.Lock()


@dataclass(eq=False)  # compared by identity (a plan holds tensors)
class _Entry:
    plan: IncrementalPlan
    key: tuple[Any, ...]
    state: tuple[Any, ...]


_plans: weakref.WeakKeyDictionary[nn.Module, list[_Entry]] = weakref.WeakKeyDictionary()


def model_state(model: nn.Module) -> tuple[Any, ...]:
    """What a plan depends on besides its inputs: every parameter's and buffer's identity, storage and version, and the submodules."""
    tensors = tuple((id(t), t.data_ptr(), t._version) for t in itertools.chain(model.parameters(), model.buffers()))
    return tensors, tuple(id(m) for m in model.modules())


def _output(plan: IncrementalPlan) -> Any:
    """The traced forward's output on the plan's (unoccluded) inputs, as :func:`build_plan` computed it."""
    node = next(n for n in reversed(plan.gm.graph.nodes) if n.op == "output")
    return fx.node.map_arg(node.args[0], lambda a: plan.base[a])


def _same_inputs(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and bool(torch.equal(a, b))


def cached_plan(
    model: nn.Module, inputs: torch.Tensor, agrees: Callable[[Any], bool], key: tuple[Any, ...]
) -> IncrementalPlan | str:
    """The plan of ``model`` for ``inputs`` ``(N, C, H, W)``: a kept one if still valid, else :func:`build_plan`'s.

    Parameters
    ----------
    model
        The network (eval mode, under ``torch.no_grad()``, as :func:`build_plan` wants).
    inputs
        The unoccluded images ``(N, C, H, W)``.
    agrees
        ``agrees(output)``: True when a traced forward's output matches the model's fresh one.
    key
        The call's settings the plan is kept for: ``(window, stride, approximate)``.

    Returns
    -------
    IncrementalPlan or str
        The plan, or the reason (a sentence) why incremental occlusion cannot run.
    """
    if foreign_forward_hooks(model):
        return build_plan(model, inputs, agrees)  # the reason (never cached: hooks come and go)
    # the kept intermediate outputs were computed under these: autocast and TF32 change them
    dev = inputs.device.type
    key = (*key, torch.is_autocast_enabled(dev), torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else None,
           torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    state = model_state(model)
    with _lock:
        entries = list(_plans.get(model, []))
    for e in entries:
        if e.key == key and _same_inputs(e.plan.inputs, inputs):
            if e.state == state and agrees(_output(e.plan)):
                with _lock:  # most recently used first
                    kept = _plans.get(model, [])
                    if e in kept:
                        kept.remove(e)
                        kept.insert(0, e)
                return e.plan
            _drop(model, e)  # the model changed: this plan is stale
    plan = build_plan(model, inputs, agrees)
    if not isinstance(plan, str):
        with _lock:
            kept = _plans.setdefault(model, [])
            kept.insert(0, _Entry(plan, key, state))
            del kept[MAX_PER_MODEL:]
    return plan


def _drop(model: nn.Module, entry: _Entry) -> None:
    with _lock:
        kept = _plans.get(model, [])
        if entry in kept:
            kept.remove(entry)


def clear_plans(model: nn.Module | None = None) -> None:
    """Forget the kept plans of ``model`` (None: of every model)."""
    with _lock:
        if model is None:
            _plans.clear()
        else:
            _plans.pop(model, None)


def kept_plans(model: nn.Module) -> int:
    """How many plans are kept for ``model`` (at most :data:`MAX_PER_MODEL`)."""
    with _lock:
        return len(_plans.get(model, []))
