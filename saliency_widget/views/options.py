"""How a map is displayed: one frozen :class:`DisplayOptions` and the one check of its values.

The widget's traits, the interactive page, the static report and the CLI all describe a map's
display with these five values; :func:`check_option` is the only place that says which values
are valid, so a new display option is added here (and drawn by ``js/render.js`` and
:func:`saliency_widget.viz.render.render_map`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import InputError, choices
from ..viz.render import COLORMAPS, DIVERGING, SIGNS

__all__ = ["CLIPS", "COLORMAPS", "DIVERGING", "DisplayOptions", "SIGNS", "check_option"]

#: Clip percentiles the offline page offers in its menu (any value in (0, 100] is valid).
CLIPS: tuple[float, ...] = (90.0, 95.0, 98.0, 99.0, 99.5, 99.9, 100.0)


def check_option(name: str, value: Any) -> Any:
    """``value`` as display option ``name`` wants it, or an :class:`InputError` naming it and the choices.

    Parameters
    ----------
    name
        ``"sign"``, ``"clip"``, ``"cmap"``, ``"overlay"`` or ``"alpha"``.
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
    if name in ("sign", "cmap"):
        valid = SIGNS if name == "sign" else COLORMAPS
        if not isinstance(value, str) or value not in valid:
            raise InputError(f"unknown {name} {value!r}; expected one of {choices(valid)}")
        return value
    if name in ("clip", "alpha"):
        what = "a percentile in (0, 100] (100 = no clipping)" if name == "clip" else "an opacity in [0, 1]"
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be {what}, got {value!r}") from None
        ok = 0.0 < v <= 100.0 if name == "clip" else 0.0 <= v <= 1.0
        if isinstance(value, bool) or math.isnan(v) or not ok:
            raise InputError(f"{name} must be {what}, got {value!r}")
        return v
    if name == "overlay":
        if not isinstance(value, (bool, int)) or value not in (0, 1):
            raise InputError(f"overlay must be True or False, got {value!r}")
        return bool(value)
    raise InputError(f"unknown display option {name!r}; expected one of {choices(f.name for f in fields(DisplayOptions))}")


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

    sign: str = "absolute"
    clip: float = 99.0
    cmap: str = "magma"
    overlay: bool = False
    alpha: float = 0.6

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, check_option(f.name, getattr(self, f.name)))

    @property
    def shown_cmap(self) -> str:
        """The colormap actually drawn: a sequential ``cmap`` becomes ``coolwarm`` for a signed map."""
        return self.cmap if self.sign != "signed" or self.cmap in DIVERGING else "coolwarm"

    def as_dict(self) -> dict[str, Any]:
        """The five options as a JSON-able dict."""
        return asdict(self)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in order (the traits a display-only change touches)."""
        return tuple(f.name for f in fields(cls))
