"""How a map is displayed: one frozen :class:`DisplayOptions`, whose fields declare every display option.

Each field is declared once with :func:`~.spec.setting` (kind, default, valid values, label,
help). The widget's traits, validators, controls and browser links, the checks of
:func:`check_option`, the interactive page and the CLI are generated from these declarations,
so a new display option is one field here plus its drawing in ``js/render.js`` (and
:func:`saliency_widget.viz.render.render_map`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import InputError, choices
from ..viz.render import COLORMAPS, DIVERGING, SIGNS
from .spec import Spec, check_value, setting, specs_of

__all__ = ["CLIPS", "COLORMAPS", "DIVERGING", "DisplayOptions", "SIGNS", "check_option", "display_specs"]

#: Clip percentiles the offline page offers in its menu (any value in (0, 100] is valid).
CLIPS: tuple[float, ...] = (90.0, 95.0, 98.0, 99.0, 99.5, 99.9, 100.0)


@dataclass(frozen=True)
class DisplayOptions:
    """How a raw map becomes pixels (see :func:`saliency_widget.viz.render.render_map`).

    Attributes
    ----------
    sign
        ``"absolute"`` (max over channels of ``|g|``), ``"positive"``, ``"negative"`` or
        ``"signed"`` (sum over channels, diverging colormap).
    clip
        Percentile of the magnitudes that saturates the colormap, in (0, 100] (100 = none).
    cmap
        Colormap name; a signed map uses ``coolwarm`` when ``cmap`` is not diverging.
    overlay
        Draw the map over the input image.
    alpha
        Opacity of the overlay in [0, 1] (per pixel times the map's weight).
    """

    sign: str = setting(
        "choice", "absolute", "sign", "which values the map shows: their magnitude, only positive or negative ones, or both signs",
        choices=SIGNS,
    )
    clip: float = setting(
        "float", 99.0, "clip %",
        "clip the top (100 − clip)% of values to the colormap's end, so a few extreme pixels do not wash out the map",
        lo=0.0, hi=100.0, lo_open=True, what="a percentile", note="(100 = no clipping)", shown=(90.0, 100.0), step=0.1,
    )
    cmap: str = setting(
        "choice", "magma", "colormap",
        "the colours of the maps (the scale under each map shows the values); a signed map needs a diverging "
        "colormap: choosing sign 'signed' switches to one, and back afterwards",
        choices=COLORMAPS,
    )
    overlay: bool = setting("bool", False, "overlay", "draw the map over the input image")
    alpha: float = setting("float", 0.6, "alpha", "opacity of the map drawn over the input", lo=0.0, hi=1.0, what="an opacity",
                           step=0.05)

    def __post_init__(self) -> None:
        for spec in display_specs(type(self)):
            object.__setattr__(self, spec.name, check_value(spec, getattr(self, spec.name)))

    @property
    def shown_cmap(self) -> str:
        """The colormap actually drawn: a sequential ``cmap`` becomes ``coolwarm`` for a signed map."""
        return self.cmap if self.sign != "signed" or self.cmap in DIVERGING else "coolwarm"

    def as_dict(self) -> dict[str, Any]:
        """The options as a JSON-able dict."""
        return asdict(self)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in order (the traits a display-only change touches)."""
        return tuple(f.name for f in fields(cls))


def display_specs(cls: type | None = None) -> tuple[Spec, ...]:
    """The :class:`~.spec.Spec` of every display option (of ``cls``, default :class:`DisplayOptions`), in order."""
    return specs_of(cls if cls is not None else DisplayOptions)


def check_option(name: str, value: Any) -> Any:
    """``value`` as display option ``name`` wants it, or an :class:`InputError` naming it and the choices.

    Parameters
    ----------
    name
        A field of :class:`DisplayOptions` (``"sign"``, ``"clip"``, ``"cmap"``, ``"overlay"``, ``"alpha"``).
    value
        The proposed value.

    Returns
    -------
    str, float or bool
        The value, normalised (``clip`` and ``alpha`` as float, ``overlay`` as bool).

    Raises
    ------
    InputError
        An unknown option, a name not among the choices, NaN, or a number out of range.
    """
    specs = {s.name: s for s in display_specs()}
    if name not in specs:
        raise InputError(f"unknown display option {name!r}; expected one of {choices(specs)}")
    return check_value(specs[name], value)
