"""The frozen state one explorer view is computed from.

A :class:`Snapshot` copies the explorer's controls (image version, method, class, layer,
filter, clicked position, view) with its display options and method settings at the moment a
render is requested, so the worker thread computes from values that no later click changes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from .options import DisplayOptions
from .settings import MethodSettings

__all__ = ["Snapshot"]


@dataclass(frozen=True, init=False)
class Snapshot:
    """Immutable copy of the state one view is computed from.

    Attributes
    ----------
    version
        Image version (bumped by every new image); a result for an older version is stale.
    method
        Registered method name of the main map.
    target
        Class index, or None for the predicted class.
    layer
        Layer key (``"name"`` or ``"name#call"``) of the feature map.
    channel
        Filter of ``layer``.
    position
        ``(y, x)`` of the projected activation, or None for the filter's strongest.
    view
        ``"single"`` or ``"compare"`` (every method side by side).
    options
        The display options (each also readable as an attribute: ``snapshot.cmap``).
    settings
        The methods' settings (each also readable as an attribute: ``snapshot.ig_steps``).

    The constructor also takes every display option and method setting by name
    (``Snapshot(..., cmap="gray", ig_steps=8)``); those not given keep their defaults.
    """

    version: int
    method: str
    target: int | None
    layer: str
    channel: int
    position: tuple[int, int] | None
    view: str
    options: DisplayOptions
    settings: MethodSettings

    def __init__(
        self, version: int, method: str, target: int | None, layer: str, channel: int,
        position: tuple[int, int] | None, view: str = "single", options: DisplayOptions | None = None,
        settings: MethodSettings | None = None, **values: Any,
    ) -> None:
        display = {k: values.pop(k) for k in DisplayOptions.names() if k in values}
        chosen = {k: values.pop(k) for k in MethodSettings.names() if k in values}
        if values:
            raise TypeError(f"Snapshot got unknown field(s) {sorted(values)}")
        opts = replace(options, **display) if options is not None else DisplayOptions(**display)
        sets = replace(settings, **chosen) if settings is not None else MethodSettings(**chosen)
        for name, value in [("version", version), ("method", method), ("target", target), ("layer", layer), ("channel", channel),
                            ("position", position), ("view", view), ("options", opts), ("settings", sets)]:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # a display option or a method setting by its own name (snapshot.cmap, snapshot.ig_steps)
        for part in ("options", "settings"):
            held = self.__dict__.get(part)
            if held is not None and name in type(held).names():
                return getattr(held, name)
        raise AttributeError(f"'Snapshot' object has no attribute {name!r}")

    def state(self) -> dict[str, Any]:
        """The state as one flat JSON-able dict: the fields, every display option and every method setting."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("options", "settings")}
        return {**out, **self.options.as_dict(), **self.settings.as_dict()}
