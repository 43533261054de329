"""What one image's views already computed: maps, activations and projections, bounded."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from ..engine import Explainer

__all__ = ["ViewMemo"]


class _LRU(OrderedDict):  # type: ignore[type-arg]
    """Tiny bounded memo (maps are a few hundred KB each; keep the last few)."""

    def __init__(self, maxsize: int = 24) -> None:
        super().__init__()
        self.maxsize = maxsize

    def get_or(self, key: Hashable, make: Callable[[], Any]) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        self[key] = value
        if len(self) > self.maxsize:
            self.popitem(last=False)
        return value


@dataclass
class ViewMemo:
    """Maps, activations, projections and method-independent panels already computed for one explainer.

    Switching display options, or back to a method seen before, then costs no backward pass.
    Bound to the explainer it was filled from: a new explainer (a new image) clears it.
    """

    saliency: _LRU = field(default_factory=_LRU)
    activation: _LRU = field(default_factory=_LRU)
    projection: _LRU = field(default_factory=_LRU)
    panels: _LRU = field(default_factory=_LRU)
    owner: int | None = None

    def bind(self, explainer: Explainer) -> None:
        """Clear the memo unless it was filled from ``explainer``."""
        if self.owner != id(explainer):
            self.saliency.clear()
            self.activation.clear()
            self.projection.clear()
            self.panels.clear()
            self.owner = id(explainer)
