"""One declaration per user setting: its type, valid values, default, label and help, and the one check.

A setting is a field of a frozen dataclass (:class:`~.options.DisplayOptions`,
:class:`~.settings.MethodSettings`) declared with :func:`setting`; the field's metadata holds its
:class:`Spec`. Everything else is generated from the specs: the widget's traits, their
validators, its controls and their browser links (``saliency_widget.widget.optionwidgets``), the
checks of :func:`check_value`, and the exports. A new setting is therefore one field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any

from ..errors import InputError, choices

__all__ = ["KINDS", "Spec", "check_value", "setting", "specs_of"]

#: The kinds of setting: a name from a list, a float or an int in a range, a flag.
KINDS = ("choice", "float", "int", "bool")


@dataclass(frozen=True)
class Spec:
    """What one setting accepts and how it is offered to the user.

    Attributes
    ----------
    name
        The field's name (the trait's, the state's and the export's key).
    kind
        One of :data:`KINDS`.
    default
        The value before the user changes it.
    label
        Short text of the control.
    help
        One line: what the setting does (the control's tooltip).
    choices
        Valid names of a ``"choice"`` (empty when they are known only at run time, e.g. layers).
    lo, hi
        Valid range of a number (None: unbounded); ``lo_open`` excludes ``lo`` itself.
    what
        What a number is, for messages ("a percentile", "a number of samples").
    note
        Appended to the range in messages (e.g. "(100 = no clipping)").
    shown
        ``(min, max)`` of the control's slider when narrower than the valid range (a valid value
        outside widens it).
    step
        The control's step.
    methods
        The methods a method setting applies to (empty for display options).
    engine
        The engine option it is passed as (``explainer.saliency(method=..., <engine>=value)``).
    log
        A number spanning decades (e.g. a stabiliser ε): its slider moves along ``log10`` of it
        (``shown`` then bounds the value, > 0).
    when
        ``(other setting, values)``: the setting is read only while the other setting has one
        of ``values`` (e.g. γ only with the composite that has a γ rule); None: always.
    """

    name: str
    kind: str
    default: Any
    label: str
    help: str
    choices: tuple[Any, ...] = ()
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    what: str = "a number"
    note: str = ""
    shown: tuple[float, float] | None = None
    step: float | None = None
    methods: tuple[str, ...] = ()
    engine: str = ""
    log: bool = False
    when: tuple[str, tuple[Any, ...]] | None = None

    @property
    def range_text(self) -> str:
        """The valid range in words, e.g. ``(0, 100]``, ``1..1000`` or ``>= 0``."""
        if self.kind == "int":
            if self.hi is None:
                return f">= {_num(self.lo)}"
            return f"{_num(self.lo)}..{_num(self.hi)}"
        if self.hi is None:
            return f"> {_num(self.lo)}" if self.lo_open else f">= {_num(self.lo)}"
        return f"{'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}]"

    def slider_range(self) -> tuple[float, float]:
        """``(min, max)`` a slider offers (the shown range, else the valid one)."""
        if self.shown is not None:
            return self.shown
        return (float(self.lo if self.lo is not None else 0.0), float(self.hi if self.hi is not None else 100.0))


def _num(v: float | None) -> str:
    return "-inf" if v is None else (str(int(v)) if float(v).is_integer() else str(v))


def setting(kind: str, default: Any, label: str, help: str, **spec: Any) -> Any:
    """A dataclass field declaring one setting (see :class:`Spec` for ``spec``'s keys).

    Returns
    -------
    dataclasses.Field
        ``field(default=default)`` whose metadata holds the :class:`Spec` (its name is filled in
        by :func:`specs_of`).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown setting kind {kind!r}; expected one of {KINDS}")
    return field(default=default, metadata={"spec": Spec("", kind, default, label, help, **spec)})


def specs_of(cls: type) -> tuple[Spec, ...]:
    """The :class:`Spec` of every field of the dataclass ``cls``, in field order."""
    out = []
    for f in fields(cls):
        spec = f.metadata.get("spec")
        if not isinstance(spec, Spec):
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with setting()")
        out.append(replace(spec, name=f.name, default=_default(f)))
    return tuple(out)


def _default(f: Field[Any]) -> Any:
    return f.default if f.default is not MISSING else None


def check_value(spec: Spec, value: Any, valid: Sequence[Any] | None = None) -> Any:
    """``value`` as ``spec`` wants it (normalised), or an :class:`InputError` naming it and the valid values.

    Parameters
    ----------
    spec
        The setting.
    value
        The proposed value.
    valid
        The choices of a ``"choice"`` known only at run time (default ``spec.choices``; None
        and no ``spec.choices``: any name).

    Returns
    -------
    str, float, int or bool
        The value, normalised (a float as float, a flag as bool).

    Raises
    ------
    InputError
        A name not among the choices, a wrong type, NaN, or a number out of range.
    """
    name = spec.name
    if spec.kind == "choice":
        names = tuple(valid) if valid is not None else spec.choices
        if not isinstance(value, str) or (names and value not in names) or (not names and not value):
            raise InputError(f"unknown {name} {value!r}; expected one of {choices(names) if names else 'a name'}")
        return value
    if spec.kind == "bool":
        if not isinstance(value, (bool, int)) or value not in (0, 1):
            raise InputError(f"{name} must be True or False, got {value!r}")
        return bool(value)
    what = f"{spec.what} in {spec.range_text}{' ' + spec.note if spec.note else ''}"
    if spec.kind == "int":
        ok_type = not isinstance(value, bool) and (isinstance(value, int) or (isinstance(value, float) and value.is_integer()))
        if not ok_type and hasattr(value, "__index__") and not isinstance(value, bool):  # numpy ints
            ok_type = True
        if not ok_type:
            raise InputError(f"{name} must be {what}, got {value!r}")
        v: float = int(value)
    else:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be {what}, got {value!r}") from None
        if isinstance(value, bool) or math.isnan(v):
            raise InputError(f"{name} must be {what}, got {value!r}")
    low_ok = spec.lo is None or (v > spec.lo if spec.lo_open else v >= spec.lo)
    if not low_ok or (spec.hi is not None and v > spec.hi):
        raise InputError(f"{name} must be {what}, got {value!r}")
    return int(v) if spec.kind == "int" else v
