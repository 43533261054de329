"""Which values the explorer's state accepts: one check per kind of trait, in our error family.

The explorer's traitlets validators call these before a change takes effect, so a bad value
from Python (``w.clip = float("nan")``) or from the front end is refused with a message that
names it and the valid choices, and the controls keep showing the real state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import traitlets

from ..errors import InputError, LayerError, MethodError, choices

__all__ = ["ChoiceTrait", "check_choice", "check_filter"]


class ChoiceTrait(traitlets.Unicode):  # type: ignore[type-arg]
    """A name from a list of choices, whose wrong-type values are refused in our error family.

    A value of the wrong type (None, a number) goes to the owner's ``_validate_choice``, which
    names the valid choices, rather than to traitlets' TraitError.
    """

    def error(self, obj: Any, value: Any, error: Exception | None = None, info: str | None = None) -> Any:
        """Raise the owner's error for ``value`` (traitlets calls this for a value of the wrong type)."""
        if obj is not None and hasattr(obj, "_validate_choice"):
            obj._validate_choice({"trait": self, "value": value, "owner": obj})
        super().error(obj, value, error, info)


def check_choice(name: str, value: Any, valid: Sequence[Any] | None) -> Any:
    """``value`` if it is one of ``valid`` (None: not known yet, anything but None passes).

    Raises
    ------
    MethodError, LayerError, InputError
        For ``method``, ``layer`` and ``view`` respectively, naming the choices (display options
        are checked by :func:`saliency_widget.views.options.check_option`).
    """
    if value is None or (valid is not None and value not in valid):
        err = {"method": MethodError, "layer": LayerError}.get(name, InputError)
        raise err(f"unknown {name} {value!r}; expected one of {choices(valid) if valid is not None else 'a name'}")
    return value


def check_filter(value: int, count: int | None, layer: str) -> int:
    """A filter index in ``0..count-1`` of ``layer`` (``count`` None: not known yet, only negatives fail).

    Raises
    ------
    InputError
        Out of range, naming the valid filters.
    """
    if value < 0 or (count is not None and value >= count):
        valid = f"0..{count - 1}" if count is not None else "0 or more"
        raise InputError(f"filter {value} is out of range for layer {layer!r}: valid filters are {valid}")
    return int(value)
