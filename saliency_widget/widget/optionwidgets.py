"""The widget side of every setting, generated from its :class:`~saliency_widget.views.spec.Spec`.

One function per thing a setting needs in the widget: its explorer trait (:class:`SettingTrait`),
its control (:func:`option_control`), the map panels' trait it drives in the browser
(:func:`canvas_trait`, :func:`canvas_link`) and the check of a proposed value
(:func:`check_setting`). The explorer, its view and the map panels iterate over
:func:`~saliency_widget.views.options.display_specs` and
:func:`~saliency_widget.views.settings.setting_specs`, so no list of option names is written
out anywhere else.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import ipywidgets as W
import traitlets

from ..views.spec import Spec, check_value

__all__ = ["SettingTrait", "canvas_link", "canvas_trait", "canvas_trait_name", "check_setting", "option_control", "option_trait", "spec_traits", "widen_to"]


class SettingTrait(traitlets.TraitType):  # type: ignore[type-arg]
    """The explorer's trait of one setting: every proposed value goes through its spec's check.

    Values of a wrong type too (None, a string for a number), so they are refused in our error
    family with the valid values named, never with traitlets' TraitError. The owner's
    ``_validate_setting(name, value)``, when it has one, adds what only it knows (run-time choices).
    """

    info_text = "a valid setting"

    def __init__(self, spec: Spec, **kwargs: Any) -> None:
        self.spec = spec
        super().__init__(default_value=spec.default, **kwargs)

    def validate(self, obj: Any, value: Any) -> Any:
        """The checked value (raises InputError or the owner's error)."""
        check = getattr(obj, "_validate_setting", None)
        return check(self.name, value) if check is not None else check_setting(self.spec, value)


def option_trait(spec: Spec) -> traitlets.TraitType:  # type: ignore[type-arg]
    """A plain trait of ``spec``'s kind and default (the map panels' synced copies)."""
    if spec.kind == "choice":
        return traitlets.Unicode(spec.default)
    if spec.kind == "float":
        return traitlets.Float(float(spec.default))
    if spec.kind == "int":
        return traitlets.Int(int(spec.default))
    return traitlets.Bool(bool(spec.default))


def spec_traits(specs: Iterable[Spec], make: Any = SettingTrait) -> dict[str, traitlets.TraitType]:  # type: ignore[type-arg]
    """``{trait name: trait}`` for ``specs`` (default: the explorer's :class:`SettingTrait`), to put into a class body."""
    out = {}
    for spec in specs:
        name = canvas_trait_name(spec) if make is canvas_trait else spec.name
        out[name] = make(spec)
    return out


def check_setting(spec: Spec, value: Any, valid: Sequence[Any] | None = None) -> Any:
    """``value`` checked against ``spec`` (``valid``: choices known at run time), in our error family."""
    if spec.kind == "choice" and value == "" and spec.default == "":  # "": the engine's default (e.g. the CAM layer)
        return value
    return check_value(spec, value, valid)


def option_control(spec: Spec) -> W.ValueWidget:
    """The control of setting ``spec``: a dropdown, a slider or a checkbox, labelled, with its help as tooltip.

    Its CSS class is ``sw-<name>`` (underscores as dashes).
    """
    lay = W.Layout
    if spec.kind == "choice":
        # choices known only at run time (the CAM layer) start with the default alone
        options = list(spec.choices) if spec.choices else [("(the engine's default)", spec.default)]
        ctrl: W.ValueWidget = W.Dropdown(options=options, value=spec.default, description=spec.label,
                                         layout=lay(width="200px"), tooltip=spec.help)
    elif spec.kind == "float" and spec.log:  # decades: the slider moves along log10 of the value
        lo, hi = spec.slider_range()
        ctrl = W.FloatLogSlider(value=float(spec.default), base=10, min=math.log10(lo), max=math.log10(hi), step=spec.step or 0.5,
                                description=spec.label, readout_format=".0e", continuous_update=False, tooltip=spec.help)
    elif spec.kind == "float":
        lo, hi = spec.slider_range()
        digits = max(0, len(f"{spec.step or 0.1:g}".split(".")[-1])) if "." in f"{spec.step or 0.1:g}" else 0
        ctrl = W.FloatSlider(value=float(spec.default), min=lo, max=hi, step=spec.step or (hi - lo) / 100,
                             description=spec.label, readout_format=f".{digits}f", tooltip=spec.help)
    elif spec.kind == "int":
        lo, hi = spec.slider_range()
        ctrl = W.IntSlider(value=int(spec.default), min=int(lo), max=int(hi), step=int(spec.step or 1), description=spec.label,
                           continuous_update=False, tooltip=spec.help)
    else:
        ctrl = W.Checkbox(value=bool(spec.default), description=spec.label, indent=False, layout=lay(width="90px"), tooltip=spec.help)
    ctrl.add_class("sw-" + spec.name.replace("_", "-"))
    return ctrl


def widen_to(ctrl: W.ValueWidget, value: Any) -> None:
    """Widen a slider's range so it can show ``value`` (a valid value outside the range it offers)."""
    if isinstance(ctrl, W.FloatLogSlider):  # its min and max are exponents
        if value > 0:
            ctrl.min = min(ctrl.min, math.floor(math.log10(value)))
            ctrl.max = max(ctrl.max, math.ceil(math.log10(value)))
        return
    if isinstance(ctrl, (W.FloatSlider, W.IntSlider)):
        if value < ctrl.min:
            ctrl.min = value
        if value > ctrl.max:
            ctrl.max = value


def canvas_trait_name(spec: Spec) -> str:
    """The map panel's trait a display option drives: ``<name>_index`` for a choice (selection widgets sync their index), else ``<name>``."""
    return f"{spec.name}_index" if spec.kind == "choice" else spec.name


def canvas_trait(spec: Spec) -> traitlets.TraitType:  # type: ignore[type-arg]
    """The map panel's synced trait of display option ``spec`` (see :func:`canvas_trait_name`)."""
    if spec.kind == "choice":
        return traitlets.Int(list(spec.choices).index(spec.default) if spec.default in spec.choices else 0).tag(sync=True)
    return option_trait(spec).tag(sync=True)


def canvas_link(spec: Spec, control: W.ValueWidget, canvas: W.Widget) -> W.Widget:
    """Tie ``control`` to ``canvas``'s trait of ``spec`` in the browser (``jsdlink``: no kernel round trip)."""
    source = "index" if spec.kind == "choice" else "value"
    return W.jsdlink((control, source), (canvas, canvas_trait_name(spec)))
