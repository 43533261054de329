"""The submodules of a model, listed fast: the engine walks them on every map request.

``nn.Module.modules()`` and ``named_modules()`` build every dotted name through a chain of
nested generators, which costs more than the arithmetic of a small model's forward pass on a
one-image map; the engine needs the modules only, so it walks ``_modules`` itself.
"""

from __future__ import annotations

from torch import nn

__all__ = ["submodules"]


def submodules(model: nn.Module) -> list[nn.Module]:
    """Every module of ``model``, itself first, each once, in ``model.modules()`` order.

    Parameters
    ----------
    model
        Any module (not modified).

    Returns
    -------
    list of nn.Module
        Pre-order (a module before its children, children in registration order), like
        ``list(model.modules())``.
    """
    out: list[nn.Module] = []
    seen: set[int] = set()
    stack = [model]
    while stack:
        m = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        out.append(m)
        children = m._modules
        if children:
            stack.extend(c for c in reversed(children.values()) if c is not None)
    return out
