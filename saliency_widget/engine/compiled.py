"""``torch.compile``: explain the original module, or refuse loudly.

A compiled graph never calls the Python ReLU functions that the rule interception (and the
layer hooks) rely on, so a compiled model would silently get the plain gradient under
DeconvNet's or Guided Backprop's name. ``torch.compile(model)`` returns an
``OptimizedModule`` that keeps the original module, with the same parameters, in
``_orig_mod``: running that one is the same function, and every rule is exact. Compilation
that cannot be undone without changing the user's model (a compiled submodule, an
in-place ``module.compile()``, a ``@torch.compile`` forward) is refused with a
:class:`~saliency_widget.errors.ModelError`.
"""

from __future__ import annotations

import sys
from typing import Any

from torch import nn

from ..errors import ModelError
from .walk import submodules

__all__ = ["unwrap_compiled"]


def _optimized_module_type() -> type | None:
    # Only loaded once someone used torch.compile: importing torch._dynamo costs ~1 s.
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")
    return getattr(eval_frame, "OptimizedModule", None) if eval_frame is not None else None


def unwrap_compiled(model: nn.Module) -> nn.Module:
    """The module to explain: ``model`` itself, or the original module of a ``torch.compile`` wrapper.

    Parameters
    ----------
    model
        The user's model (not modified).

    Returns
    -------
    nn.Module
        ``model._orig_mod`` (repeatedly) for an ``OptimizedModule``, else ``model``. Callers can
        tell a compiled model apart by ``unwrap_compiled(model) is not model``.

    Raises
    ------
    ModelError
        If a submodule is compiled, if a module was compiled in place with
        ``module.compile()``, or if a module's ``forward`` is decorated with ``torch.compile``.
    """
    optimized = _optimized_module_type()
    if optimized is None:
        return model
    while isinstance(model, optimized):
        orig: Any = getattr(model, "_orig_mod", None)
        if not isinstance(orig, nn.Module):
            raise ModelError(
                f"got a torch.compile'd model ({type(model).__name__}) whose original module cannot be found "
                f"(its _orig_mod is {type(orig).__name__}); pass the model from before torch.compile"
            )
        model = orig
    for module in submodules(model):  # the names only for a message: named_modules() costs more
        if isinstance(module, optimized):
            raise ModelError(
                f"{_where(model, module)} is torch.compile'd ({type(module).__name__}); inside a compiled graph the ReLU rules "
                "and layer hooks cannot act, so maps would silently fall back to plain gradients. Pass the "
                f"model with the original submodule ({_name(model, module)}._orig_mod) in its place"
            )
        if module.__dict__.get("_compiled_call_impl") is not None:
            raise ModelError(
                f"{_where(model, module)} ({type(module).__name__}) was compiled in place with .compile(); its compiled graph "
                "bypasses the ReLU rules and layer hooks. Pass an uncompiled copy of the model "
                "(or compile it with torch.compile(model), which saliency-widget can unwrap)"
            )
        forward = getattr(type(module), "forward", None)
        if getattr(forward, "_torchdynamo_orig_callable", None) is not None or getattr(
            module.__dict__.get("forward"), "_torchdynamo_orig_callable", None
        ) is not None:
            raise ModelError(
                f"{_where(model, module)} ({type(module).__name__}) has a torch.compile'd forward; its compiled graph bypasses "
                "the ReLU rules and layer hooks. Remove the @torch.compile decorator to explain it"
            )
    return model


def _name(model: nn.Module, module: nn.Module) -> str:
    return next(n for n, m in model.named_modules() if m is module)


def _where(model: nn.Module, module: nn.Module) -> str:
    name = _name(model, module)
    return f"submodule {name!r}" if name else "the model"
