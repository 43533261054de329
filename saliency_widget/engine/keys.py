"""The layer key: which execution of which module, written ``"name"`` or ``"name#call"``."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LayerError

__all__ = ["LayerKey"]


@dataclass(frozen=True, order=True)
class LayerKey:
    """One execution of one module in a forward pass.

    Attributes
    ----------
    name
        Dotted module name as in ``model.named_modules()``.
    call
        Which execution of the module (0 = first); a reused module (ResNet's
        ``layer1.0.relu``) runs several times per forward.

    Examples
    --------
    >>> LayerKey.parse("layer1.0.relu#1")
    LayerKey(name='layer1.0.relu', call=1)
    >>> str(LayerKey("features.3", 0))
    'features.3'
    """

    name: str
    call: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise LayerError(f"a layer name must be a str, got {type(self.name).__name__} {self.name!r}")
        if isinstance(self.call, bool) or not isinstance(self.call, int) or self.call < 0:
            raise LayerError(f"a layer call index must be an int >= 0, got {self.call!r} for layer {self.name!r}")

    @classmethod
    def parse(cls, key: str | LayerKey, call: int = 0) -> LayerKey:
        """Read ``"name#call"`` (or ``"name"`` with ``call``) into a key.

        Parameters
        ----------
        key
            ``"name"``, ``"name#call"`` or a :class:`LayerKey` (returned as is).
        call
            The call index when ``key`` names none; a key's own ``#call`` wins over a
            default of 0, and a conflicting non-zero ``call`` is an error.

        Returns
        -------
        LayerKey
        """
        if isinstance(key, LayerKey):
            return key
        if not isinstance(key, str):
            raise LayerError(f"a layer key must be a str like 'features.3' or 'layer1.0.relu#1', got {type(key).__name__} {key!r}")
        name, sep, suffix = key.rpartition("#")
        if sep and suffix.isdigit():
            if call not in (0, int(suffix)):
                raise LayerError(f"layer key {key!r} names call {suffix} but call={call!r} was passed; give one of them")
            return cls(name, int(suffix))
        return cls(key, call)

    def __str__(self) -> str:
        return self.name if self.call == 0 else f"{self.name}#{self.call}"
